"""Commands that belong to no feature: help, and choose (pressing a numbered choice without buttons)."""

from __future__ import annotations

import json

from core import keys
from core.commands import Command, Option
from core.contract import Action, Event, EventKind, reply_to_event
from core.errors import InvalidInput
from core.router import Router
from core.services import Services


async def _help(event: Event, svc: Services) -> list[Action]:
    return [reply_to_event(event, svc.commands.help_text(moderator=event.author.is_moderator))]


async def _choose(event: Event, svc: Services) -> list[Action]:
    """Press a numbered choice on platforms without buttons (the degraded form of OfferChoices)."""
    arg = event.args.strip()
    if not arg.isdigit():
        raise InvalidInput("Use /choose <number>, with a number from the last list of choices.")
    raw = await svc.redis.get(keys.choices(event.conversation_key))
    payloads: list[str] = json.loads(raw) if raw else []
    index = int(arg) - 1
    if not 0 <= index < len(payloads):
        raise InvalidInput("There is no such choice here any more. Please ask again.")
    pressed = event.model_copy(update={"kind": EventKind.CHOICE, "choice": payloads[index]})
    return await Router(svc).route(pressed)


def install(svc: Services) -> None:
    svc.commands.register(Command("help", "what I can do", "help", _help))
    svc.commands.register(
        Command(
            "choose",
            "pick one of the numbered choices I offered",
            "choose <number>",
            _choose,
            options=(Option("number", "the number of the choice", required=True),),
        )
    )
