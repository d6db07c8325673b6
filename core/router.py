"""Routes one Event to the handler that answers it and turns user-facing errors into replies."""

from __future__ import annotations

import logging
import re

from core import metrics, refusals
from core.commands import Command
from core.contract import Action, Event, EventKind, reply_to_event
from core.errors import InvalidInput, NotAvailable, PermissionDenied, UserError
from core.services import Services

log = logging.getLogger(__name__)

_WORD = re.compile(r"^\s*/?([A-Za-z][\w-]{0,31})\b\s*(.*)$", re.DOTALL)
MAX_INPUT_CHARS = 8000


class Router:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def route(self, event: Event) -> list[Action]:
        try:
            return await self._route(event)
        except UserError as exc:
            metrics.refused(type(exc).__name__)
            try:
                await refusals.count(self.services.redis, event.community_key, exc)
            except Exception:  # the chart's counter must never cost the person their answer
                log.exception("could not count a refusal")
            return [reply_to_event(event, exc.user_message)]

    async def _route(self, event: Event) -> list[Action]:
        svc = self.services
        if event.kind.observed:
            for observe in svc.observers:
                await observe(event, svc)
            return []
        if len(event.text) > MAX_INPUT_CHARS or len(event.args) > MAX_INPUT_CHARS:
            raise InvalidInput(
                f"That message is too long for me ({max(len(event.text), len(event.args)):,} characters; "
                f"the limit is {MAX_INPUT_CHARS:,}). Please shorten it."
            )
        if event.kind is EventKind.COMMAND:
            return await self._command(event, event.command or "", event.args)
        if event.kind is EventKind.CHOICE:
            verb, _, arg = (event.choice or "").partition(":")
            handler = svc.choices.get(verb)
            if handler is None:
                raise InvalidInput("That button is no longer valid. Please ask again.")
            return await handler(event, svc, arg)
        # A mention: "@bot image a cat" runs a command; anything else is a request for the assistant.
        m = _WORD.match(event.text)
        if m and m.group(1).lower() in svc.commands:
            return await self._command(event, m.group(1), m.group(2))
        if not event.text.strip() and event.reply_to is None:
            return await self._command(event, "help", "")
        if svc.mention is None:
            raise NotAvailable("Writing drafts is not available yet in this version of Chorus. Send /help.")
        return await svc.mention(event, svc)

    async def _command(self, event: Event, name: str, args: str) -> list[Action]:
        cmd = self.services.commands.get(name)
        if cmd is None:
            raise InvalidInput(f"I don't know the command “{name[:32]}”. Send /help to see what I can do.")
        check_allowed(cmd, event)
        if args != event.args or event.command != cmd.name:
            event = event.model_copy(update={"command": cmd.name, "args": args.strip()})
        return await cmd.handler(event, self.services)


def check_allowed(cmd: Command, event: Event) -> None:
    if cmd.moderator_only and not event.author.is_moderator:
        raise PermissionDenied(f"Only moderators of this community can use /{cmd.name}.")
