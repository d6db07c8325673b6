"""The registry as Telegram's command lists: valid names, members vs moderators, help first."""

from __future__ import annotations

from bots.telegram.commands import command_lists, command_map, telegram_name
from core.commands import Command, CommandRegistry
from core.contract import Action, Event
from core.services import Services


async def _noop(event: Event, svc: Services) -> list[Action]:
    return []


def test_names_and_lists() -> None:
    registry = CommandRegistry()
    for name, moderator in (("post", False), ("prompt", True), ("help", False), ("my-cmd", False)):
        registry.register(
            Command(name, "x" * 300 if name == "post" else f"{name} it", name, _noop, moderator)
        )
    registry.register(Command("Bad Name!", "nope", "bad", _noop))
    assert telegram_name("my-cmd") == "my_cmd" and telegram_name("Bad Name!") is None
    assert command_map(registry) == {"help": "help", "my_cmd": "my-cmd", "post": "post", "prompt": "prompt"}
    everyone, moderators = command_lists(registry)
    assert [c.command for c in everyone] == ["help", "my_cmd", "post"]
    assert [c.command for c in moderators] == ["help", "my_cmd", "post", "prompt"]
    assert all(1 <= len(c.description) <= 256 for c in moderators)


def test_every_installed_command_fits_telegram(services: Services) -> None:
    everyone, moderators = command_lists(services.commands)
    assert len(moderators) == len(list(services.commands)) <= 100  # nothing the core offers is lost
    assert {c.command for c in everyone} < {c.command for c in moderators}
