"""Commands every deployment has (help, choose) and the placeholders of features not built yet.

A placeholder answers with a clear "not available yet" and is replaced when its feature registers the
real command under the same name.
"""

from __future__ import annotations

import json

from core import keys
from core.commands import Command, Option
from core.contract import Action, Event, EventKind, reply_to_event
from core.errors import InvalidInput, NotAvailable
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


PLANNED: dict[str, tuple[str, str, bool, str]] = {
    # name: (usage, summary, moderator_only, group)
    "post": ("post <request>", "draft a post", False, "assistant"),
    "thread": ("thread <request>", "draft a thread", False, "assistant"),
    "image": ("image <description>", "make an image", False, "assistant"),
    "share": ("share <draft> <platform> [channel]", "share a draft to another platform", False, "assistant"),
    "approve": ("approve <draft>", "approve a draft for publishing", True, "assistant"),
    "quota": ("quota", "your remaining requests today", False, "assistant"),
    "stats": ("stats", "usage of this community", True, "assistant"),
    "subscribe": ("subscribe [hourly|daily|weekly] [HH:MM] [tz] [scope]", "get digests", False, "feed"),
    "unsubscribe": ("unsubscribe", "stop digests", False, "feed"),
    "digest": ("digest", "a digest of the feed now", False, "feed"),
    "subscriptions": ("subscriptions", "your digest subscriptions", False, "feed"),
    "feed": ("feed add|remove|list", "opt channels into the feed", True, "feed"),
    "optout": ("optout", "keep your messages out of the feed", False, "feed"),
    "optin": ("optin", "allow your messages in the feed again", False, "feed"),
    "prompt": (
        "prompt show|set|history|diff|rollback|reset|preview ...",
        "community prompts",
        True,
        "prompts",
    ),
}


def _placeholder(name: str) -> Command:
    usage, summary, moderator_only, group = PLANNED[name]

    async def handler(event: Event, svc: Services) -> list[Action]:
        raise NotAvailable(f"/{name} is not available yet in this version of Chorus.")

    return Command(name, summary, usage, handler, moderator_only=moderator_only, group=group)


def install(svc: Services) -> None:
    for name in PLANNED:
        if name not in svc.commands:
            svc.commands.register(_placeholder(name))
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
