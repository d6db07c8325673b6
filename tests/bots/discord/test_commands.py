from __future__ import annotations

from typing import Any

from bots.discord.commands import (
    FREE_TEXT,
    application_command,
    application_commands,
    command_name,
    describe,
    find_command,
    invocation_args,
    subcommands,
)
from core.commands import Command, CommandRegistry, Option
from core.contract import Action, Event
from core.services import Services
from tests.fakes.discord_api import _validate_command


async def _noop(event: Event, svc: Services) -> list[Action]:
    return []


def _registry(*commands: Command) -> CommandRegistry:
    registry = CommandRegistry()
    for cmd in commands:
        registry.register(cmd)
    return registry


def test_every_installed_command_is_a_valid_discord_command(services: Services) -> None:
    payload = application_commands(services.commands)
    for index, body in enumerate(payload):
        _validate_command(body, str(index))  # Discord's documented limits, as the fake enforces them
    names = [c["name"] for c in payload]
    assert len(names) == len(set(names)) and "choose" not in names
    assert {"post", "thread", "image", "share", "approve", "subscribe", "unsubscribe", "digest"} <= set(names)
    assert {"subscriptions", "quota", "stats", "optout", "optin", "feed", "prompt", "help"} <= set(names)


def test_a_required_choice_becomes_subcommands() -> None:
    cmd = Command(
        "prompt",
        "community prompts",
        "prompt show|set ...",
        _noop,
        options=(
            Option("action", "what", required=True, choices=("show", "set")),
            Option("slot", "which"),
            Option("text", "the text", rest=True),
        ),
    )
    body = application_command(cmd)
    assert [(o["type"], o["name"]) for o in body["options"]] == [(1, "show"), (1, "set")]
    assert [o["name"] for o in body["options"][1]["options"]] == ["slot", "text"]
    data = {"name": "prompt", "options": [{"type": 1, "name": "set", "options": [
        {"type": 3, "name": "text", "value": "You are kind."},
        {"type": 3, "name": "slot", "value": "persona"},
    ]}]}  # fmt: skip
    assert invocation_args(cmd, data) == "set persona You are kind."


def test_alternatives_in_the_usage_become_subcommands() -> None:
    cmd = Command(
        "feed",
        "the feed",
        "feed hot|new|top [n] · feed add|remove|list [channel]",
        _noop,
        options=(Option("action", "what"), Option("args", "more", rest=True)),
    )
    assert subcommands(cmd) == ("hot", "new", "top", "add", "remove", "list")
    data = {
        "name": "feed",
        "options": [{"type": 1, "name": "add", "options": [{"name": "args", "value": "#news"}]}],
    }
    assert invocation_args(cmd, data) == "add #news"
    subscribe = Command("subscribe", "digests", "subscribe [hourly|daily] [HH:MM]", _noop)
    assert subcommands(subscribe) == ()  # bracketed: optional words, not subcommands


def test_required_options_come_first_but_arguments_keep_the_core_order() -> None:
    cmd = Command(
        "share",
        "share a draft",
        "share <draft> [channel] <platform>",
        _noop,
        options=(Option("draft", "id", True), Option("channel", "where"), Option("platform", "to", True)),
    )
    body = application_command(cmd)
    assert [o["name"] for o in body["options"]] == ["draft", "platform", "channel"]
    _validate_command(body, "0")
    data: dict[str, Any] = {
        "name": "share",
        "options": [{"name": "platform", "value": "x"}, {"name": "draft", "value": "abc"}],
    }
    assert invocation_args(cmd, data) == "abc x"


def test_commands_without_options_still_take_their_arguments() -> None:
    free = Command("unsubscribe", "stop", "unsubscribe [number|all]", _noop)
    body = application_command(free)
    assert body["options"] == [
        {"type": 3, "name": FREE_TEXT, "description": "unsubscribe [number|all]", "required": False}
    ]
    assert (
        invocation_args(free, {"name": "unsubscribe", "options": [{"name": FREE_TEXT, "value": "2"}]}) == "2"
    )
    bare = Command("help", "what I can do", "help", _noop)
    assert application_command(bare)["options"] == [] and invocation_args(bare, {"name": "help"}) == ""


def test_names_and_descriptions_fit_discord() -> None:
    assert command_name("Opt Out!") == "opt_out_" and len(command_name("x" * 40)) == 32
    assert len(describe("word " * 50)) == 100 and describe("") == "-"
    registry = _registry(Command("Mixed-Case", "s", "Mixed-Case", _noop))
    found = find_command(registry, "mixed-case")
    assert found is not None and found.name == "Mixed-Case"
    assert find_command(registry, "nope") is None
