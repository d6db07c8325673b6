"""Commands are declared once in the core; adapters map them to slash commands, bot commands or words.

A ``Command`` says what it does, how to call it and who may; features register their commands into the
``CommandRegistry`` held by ``Services``. Adapters read the registry to publish their command lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from core.contract import Action, Event

Ctx = TypeVar("Ctx")
"""What handlers are given besides the Event (``core.services.Services``); generic so this module does
not depend on the services that hold its registries."""


@dataclass(frozen=True, slots=True)
class Option:
    """A command argument, so adapters can declare typed slash-command options."""

    name: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    rest: bool = False  # takes the rest of the text


@dataclass(frozen=True, slots=True)
class Command(Generic[Ctx]):
    name: str
    summary: str
    usage: str
    handler: Callable[[Event, Ctx], Awaitable[list[Action]]]
    moderator_only: bool = False
    options: tuple[Option, ...] = field(default=())
    group: str = "general"


class CommandRegistry(Generic[Ctx]):
    """Name -> Command; registering a name again replaces it (a feature replacing its placeholder)."""

    def __init__(self) -> None:
        self._commands: dict[str, Command[Ctx]] = {}

    def register(self, command: Command[Ctx]) -> None:
        self._commands[command.name] = command

    def get(self, name: str) -> Command[Ctx] | None:
        return self._commands.get(name.lower())

    def __iter__(self) -> Iterator[Command[Ctx]]:
        return iter(sorted(self._commands.values(), key=lambda c: (c.group, c.name)))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._commands

    def help_text(self, *, moderator: bool, prefix: str = "/") -> str:
        lines = ["Mention me with a request to get a draft post, or use a command:"]
        group = None
        for cmd in self:
            if cmd.moderator_only and not moderator:
                continue
            if cmd.group != group:
                group = cmd.group
                lines.append(f"\n{group.title()}:")
            lines.append(f"  {prefix}{cmd.usage} — {cmd.summary}")
        if not moderator:
            lines.append("\nModerators have more commands (prompts, feed channels, stats).")
        return "\n".join(lines)


class ChoiceRegistry(Generic[Ctx]):
    """Button payloads are ``<verb>:<argument>``; the verb picks the handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Event, Ctx, str], Awaitable[list[Action]]]] = {}

    def register(self, verb: str, handler: Callable[[Event, Ctx, str], Awaitable[list[Action]]]) -> None:
        self._handlers[verb] = handler

    def get(self, verb: str) -> Callable[[Event, Ctx, str], Awaitable[list[Action]]] | None:
        return self._handlers.get(verb)
