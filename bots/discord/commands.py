"""Slash commands from the core's CommandRegistry, and interactions back to ``(command, args)``.

Commands are declared once in the core; this module turns each into Discord's application command JSON
(names, descriptions, typed options, choices) and reads an invocation back into the text arguments the
core's handlers parse. A command whose first argument is one of fixed words (``/prompt show|set...``,
``/feed add|remove|list``) becomes a command with one subcommand per word. A command that declares no
options but takes arguments gets one optional free-text option, so nothing is unreachable from Discord.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.commands import Command, CommandRegistry, Option

STRING = 3
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
MAX_COMMANDS = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
NOT_ON_DISCORD = frozenset({"choose"})  # numbered choices only exist where buttons do not
FREE_TEXT = "arguments"
# Discord's contexts: 0 = in a server, 1 = in a DM with the bot.
CONTEXTS = [0, 1]

_INVALID = re.compile(r"[^-_\w]")
_WORD = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def command_name(name: str) -> str:
    """A valid Discord command/option name: lowercase, 1-32 of ``-_`` and word characters."""
    cleaned = _INVALID.sub("_", name.lower())[:32]
    return cleaned or "_"


def describe(text: str) -> str:
    """Descriptions must be 1-100 characters."""
    text = " ".join(text.split())
    return (text[:99] + "…" if len(text) > 100 else text) or "-"


def subcommands(cmd: Command) -> tuple[str, ...]:
    """The fixed first words of a command (``/prompt show|set...``, ``/feed add|remove|list``), if any.

    Either the first option is a required choice, or the usage starts with unbracketed alternatives
    (``feed hot|new|top [n] · feed add|remove|list [channel]``).
    """
    if cmd.options and cmd.options[0].required and cmd.options[0].choices:
        return cmd.options[0].choices
    words: list[str] = []
    for form in cmd.usage.split("·"):
        parts = form.split()
        if (
            len(parts) > 1
            and parts[0] == cmd.name
            and "|" in parts[1]
            and not parts[1].startswith(("[", "<"))
        ):
            words += [w for w in parts[1].split("|") if _WORD.match(w) and w not in words]
    return tuple(words)


def _takes_arguments(cmd: Command) -> bool:
    return cmd.usage.strip().split(" ", 1)[0] != cmd.usage.strip()


def _options(cmd_options: Sequence[Option]) -> list[dict[str, Any]]:
    out = []
    for opt in cmd_options:
        item: dict[str, Any] = {
            "type": STRING,
            "name": command_name(opt.name),
            "description": describe(opt.description),
            "required": opt.required,
        }
        if opt.choices:
            item["choices"] = [{"name": c[:100], "value": c[:100]} for c in opt.choices[:MAX_CHOICES]]
        out.append(item)
    # Discord wants required options first; arguments are rebuilt in the core's order anyway.
    out.sort(key=lambda o: not o["required"])
    return out[:MAX_OPTIONS]


def application_command(cmd: Command) -> dict[str, Any]:
    """The JSON Discord expects for one command (``PUT /applications/{id}/commands`` item)."""
    body: dict[str, Any] = {
        "type": 1,
        "name": command_name(cmd.name),
        "description": describe(cmd.summary),
        "contexts": CONTEXTS,
    }
    subs = subcommands(cmd)
    if subs:
        rest = list(cmd.options[1:])
        free = [] if rest or not _takes_arguments(cmd) else [_free_text("more: " + cmd.usage)]
        body["options"] = [
            {
                "type": SUB_COMMAND,
                "name": command_name(sub),
                "description": describe(f"{sub}: {cmd.summary}"),
                "options": _options(rest) + free,
            }
            for sub in subs[:MAX_OPTIONS]
        ]
    elif cmd.options:
        body["options"] = _options(cmd.options)
    elif _takes_arguments(cmd):
        body["options"] = [_free_text(cmd.usage)]
    else:
        body["options"] = []
    return body


def _free_text(description: str) -> dict[str, Any]:
    return {"type": STRING, "name": FREE_TEXT, "description": describe(description), "required": False}


def application_commands(registry: Iterable[Command]) -> list[dict[str, Any]]:
    """Every command Discord should show, in the registry's order (at most 100)."""
    out = [application_command(c) for c in registry if c.name not in NOT_ON_DISCORD]
    return out[:MAX_COMMANDS]


def find_command(registry: CommandRegistry, name: str) -> Command | None:
    """The core command behind a Discord command name."""
    found = registry.get(name)
    if found is not None:
        return found
    return next((c for c in registry if command_name(c.name) == name), None)


def invocation_args(cmd: Command, data: Mapping[str, Any]) -> str:
    """The argument text for the core's handler, rebuilt from an interaction's options."""
    options: list[Mapping[str, Any]] = list(data.get("options") or [])
    words: list[str] = []
    declared = cmd.options
    if options and options[0].get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
        sub = options[0]
        name = str(sub.get("name", ""))
        words.append(next((w for w in subcommands(cmd) if command_name(w) == name), name))
        declared = cmd.options[1:]
        options = list(sub.get("options") or [])
    values = {str(o.get("name")): o.get("value") for o in options}
    if not declared:
        text = values.get(FREE_TEXT)
        if text is not None:
            words.append(str(text))
    for opt in declared:
        value = values.get(command_name(opt.name))
        if value is not None and str(value).strip():
            words.append(str(value).strip())
    return " ".join(words)
