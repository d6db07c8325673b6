"""Commands that belong to no feature: help, and choose (pressing a numbered choice without buttons)."""

from __future__ import annotations

from core.choices import NumberedChoices
from core.commands import Command, Option
from core.contract import Action, Event, EventKind, reply_to_event
from core.errors import InvalidInput
from core.features import Feature
from core.router import Router
from core.services import Services


async def _help(event: Event, svc: Services) -> list[Action]:
    return [reply_to_event(event, svc.commands.help_text(moderator=event.author.is_moderator))]


async def _choose(event: Event, svc: Services) -> list[Action]:
    """Press a numbered choice on platforms without buttons (the degraded form of OfferChoices)."""
    arg = event.args.strip()
    if not arg.isdigit():
        raise InvalidInput("Use /choose <number>, with a number from the last list of choices.")
    payload = await NumberedChoices(svc.redis).pick(event, int(arg))
    if payload is None:
        raise InvalidInput("There is no such choice here any more. Please ask again.")
    pressed = event.model_copy(update={"kind": EventKind.CHOICE, "choice": payload})
    return await Router(svc).route(pressed)


async def install(svc: Services) -> None:
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


FEATURE = Feature("builtin", install)
