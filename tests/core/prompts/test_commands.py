"""The /prompt command through the real router (and, at the end, through the console bot and the bus)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bots.console.adapter import ConsolePlatform
from bots.console.config import ConsoleSettings
from core import builtin
from core.bus import Bus
from core.community import approval_required
from core.contract import Author, Event, EventKind, Reply
from core.prompts import commands as prompt_commands
from core.prompts.commands import diff_text, handle
from core.prompts.slots import default
from core.router import Router
from core.sender import Sender
from core.services import Services
from core.settings import Settings
from core.worker import Worker
from tests.support import CATALOG, event


@pytest.fixture
async def svc(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Services]:
    """Only this feature and the built-ins: these tests do not depend on the assistant being installed."""
    services = Services(settings=settings, redis=redis, bus=Bus(redis), platforms=CATALOG)
    await prompt_commands.install(services)
    await builtin.install(services)
    yield services
    await services.aclose()


def command(args: str, *, moderator: bool = True, community: str = "c1", user: str = "u1") -> Event:
    author = Author(id=user, name=user.upper(), is_moderator=moderator)
    return event(
        EventKind.COMMAND,
        text=f"/prompt {args}",
        command="prompt",
        args=args,
        author=author,
        community=community,
    )


async def say(svc: Services, args: str, **kw: object) -> str:
    actions = await Router(svc).route(command(args, **kw))  # type: ignore[arg-type]
    assert actions and all(isinstance(a, Reply) for a in actions)
    return "\n".join(a.text for a in actions if isinstance(a, Reply))


async def snapshot(redis: aioredis.Redis) -> dict[bytes, bytes | None]:
    return {key: await redis.dump(key) for key in sorted(await redis.keys("*"))}


async def test_set_show_history_diff_rollback_reset(svc: Services) -> None:
    assert "persona  default" in await say(svc, "show")
    out = await say(svc, 'set persona -m "more fun" You are Pirate Pete, poet of {community}.')
    assert out == "The persona prompt is now v1."
    shown = await say(svc, "show persona")
    assert "You are Pirate Pete, poet of {community}." in shown
    assert "persona v1, by U1 (test)" in shown and "“more fun”" in shown
    assert "Variables: {bot_name} {community} {platform} {date}" in shown
    await say(svc, "set persona You are Pirate Pete, sailor of {community}.")
    history = await say(svc, "history persona")
    assert re.search(r"v2 ← in force · .* · U1 \(test\) · set", history)
    assert re.search(r"v1 · .* · set — “more fun”", history)
    diff = await say(svc, "diff persona 1 2")
    assert "[-poet-] {+sailor+}" in diff
    assert "Changes in persona from v1 to v2" in diff
    assert "the default" in await say(svc, "diff persona default current")
    assert "v3" in await say(svc, "rollback persona v1 sailor was wrong")
    assert "poet of {community}" in await say(svc, "show persona")
    assert "rollback to v1 — “sailor was wrong”" in await say(svc, "history persona")
    assert "back to the default (recorded as v4)" in await say(svc, "reset persona")
    assert default("persona").text in await say(svc, "show persona")
    assert "already the default; nothing changed" in await say(svc, "reset persona")
    assert "same text" in await say(svc, "diff persona 4 default")


async def test_platform_override_from_chat(svc: Services) -> None:
    out = await say(svc, "set style@x Very short. At most {max_chars} characters.")
    assert "used for texts published to x" in out
    overview = await say(svc, "show")
    assert "style    default" in overview and "style@x  v1" in overview
    assert "No text of its own for telegram" in await say(svc, "show style@telegram")


async def test_hostile_text_is_refused_with_the_allowed_variables(
    svc: Services, redis: aioredis.Redis
) -> None:
    before = await snapshot(redis)
    out = await say(svc, "set post {request.__class__.__mro__}")
    assert "attribute access" in out and "Allowed variables for post:" in out and "{request}" in out
    assert "Jinja" in await say(svc, "set rules {% if true %}x{% endif %}")
    assert "no prompt slot" in await say(svc, "set secrets hello")
    assert await snapshot(redis) == before


async def test_non_moderators_are_refused_and_nothing_changes(svc: Services, redis: aioredis.Redis) -> None:
    await say(svc, "set persona You are Ada's bot.")
    before = await snapshot(redis)
    for args in (
        "set persona You are hacked.",
        "reset persona",
        "rollback persona 1",
        "show",
        "preview persona You are hacked.",
        "approval off",
    ):
        out = await say(svc, args, moderator=False, user="mallory")
        assert out == "Only moderators of this community can use /prompt.", args
    assert await snapshot(redis) == before
    # The handler refuses on its own too, whatever route reaches it.
    with pytest.raises(Exception, match="Only moderators"):
        await handle(command("set persona x", moderator=False), svc)


async def test_one_community_cannot_see_or_touch_another(svc: Services, redis: aioredis.Redis) -> None:
    await say(svc, "set persona You are A's bot.", community="A")
    b_before = {k: v for k, v in (await snapshot(redis)).items() if b"{c:test:B}" in k}
    assert "never been changed" in await say(svc, "history persona", community="B")
    assert "You are A's bot." not in await say(svc, "show persona", community="B")
    assert "No prompt or setting has been changed" in await say(svc, "audit", community="B")
    # A moderator of B has no way to name A: slot names are checked against a fixed list.
    for args in ("set persona}:x hi", "set persona@x}:{c:test:A hi", "show ../A/persona"):
        out = await say(svc, args, community="B")
        assert "no prompt slot" in out or "not a platform" in out
    await say(svc, "set persona You are B's bot.", community="B")
    assert "You are A's bot." in await say(svc, "show persona", community="A")
    keys = {k.decode() for k in await redis.keys("*")}
    assert all(k.startswith(("chorus:{c:test:A}:", "chorus:{c:test:B}:")) for k in keys)
    assert b_before == {}


async def test_preview_without_the_assistant_shows_the_prompt_and_saves_nothing(
    svc: Services, redis: aioredis.Redis
) -> None:
    before = await snapshot(redis)
    out = await say(svc, "preview post Write for {platform}: {request}")
    assert "Preview of post (not saved), on a sample request" in out
    assert "Write for test: our community meetup on Friday at 6 pm" in out
    assert await snapshot(redis) == before
    assert "unknown variable" in await say(svc, "preview post {nope}")


async def test_preview_runs_recent_requests_through_the_composer(
    svc: Services, redis: aioredis.Redis
) -> None:
    calls: list[tuple[str, dict[str, str], str]] = []

    async def composer(ev: Event, overrides: dict[str, str], request: str) -> str:
        calls.append((ev.community_key, overrides, request))
        return f"[{overrides.get('persona', '?')}] wrote about {request}"

    svc.previewer.provide(composer)
    prompts = svc.prompts
    for text in ("the launch", "the meetup", "the poll", "the AMA"):
        await prompts.remember_request("test:c1", text)
    await prompts.remember_request("test:other", "someone else's request")
    before = await snapshot(redis)
    out = await say(svc, "preview persona You are Captain Zorblax.")
    assert "on 3 recent requests" in out
    assert "[You are Captain Zorblax.] wrote about the AMA" in out
    assert [c[2] for c in calls] == ["the AMA", "the poll", "the meetup"]
    assert all(c[0] == "test:c1" for c in calls)
    assert await snapshot(redis) == before
    assert "persona  default" in await say(svc, "show")


async def test_approval_setting(svc: Services, redis: aioredis.Redis) -> None:
    assert "default (required for posts to X" in await say(svc, "approval")
    assert await approval_required(redis, "test:c1", CATALOG["x"])
    assert not await approval_required(redis, "test:c1", CATALOG["telegram"])
    assert "on (a moderator approves" in await say(svc, "approval on")
    assert await approval_required(redis, "test:c1", CATALOG["telegram"])
    assert "off" in await say(svc, "approval off")
    assert not await approval_required(redis, "test:c1", CATALOG["x"])
    assert not await approval_required(redis, "test:c2", CATALOG["telegram"]) and await approval_required(
        redis, "test:c2", CATALOG["x"]
    )
    assert "Use /prompt approval on, off or default" in await say(svc, "approval maybe")
    audit = await say(svc, "audit")
    assert "setting setting:approval = off" in audit and "setting setting:approval = on" in audit


async def test_usage_and_bad_arguments(svc: Services) -> None:
    assert "/prompt set <slot>" in await say(svc, "")
    assert "Unknown prompt action" in await say(svc, "frobnicate")
    assert "Which prompt?" in await say(svc, "history")
    assert "Give the new text" in await say(svc, "set persona")
    assert "not a version number" in await say(svc, "rollback persona latest")
    assert "has no version 1" in await say(svc, "diff persona 1 3")
    long_reason = "x" * 300
    assert "at most 200 characters" in await say(svc, f"reset persona {long_reason}")


async def test_reason_accepts_smart_quotes(svc: Services) -> None:
    await say(svc, "set persona -m “typed on a phone” You are kind.")
    assert "“typed on a phone”" in await say(svc, "history persona")
    assert "You are kind." in await say(svc, "show persona")


def test_diff_text_uses_lines_for_long_prompts() -> None:
    a = "\n".join(f"line {i}" for i in range(8))
    b = a.replace("line 4", "line four")
    out = diff_text(a, b, "v1", "v2")
    assert "-line 4" in out and "+line four" in out and out.startswith("--- v1")


async def test_console_moderator_session_through_the_bus(svc: Services) -> None:
    """Set, history, diff, rollback, reset and preview, typed into the console bot, through the real bus."""
    script = "\n".join(
        [
            '/prompt set persona -m "launch week" You are Captain Zorblax, the {community} crew\'s poet.',
            "/prompt set persona You are Captain Zorblax, the {community} crew's sailor.",
            "/prompt history persona",
            "/prompt diff persona 1 2",
            "/prompt rollback persona 1",
            "/prompt preview persona You are a calm librarian.",
            "/prompt reset persona",
            "/prompt show persona",
        ]
    )
    out = io.StringIO()
    stop = asyncio.Event()
    console = ConsolePlatform(
        ConsoleSettings(),
        svc,
        moderator=True,
        shutdown=stop.set,
        stdin=io.StringIO(script + "\n"),
        stdout=out,
    )
    worker = Worker(svc.bus, Router(svc), concurrency=4)
    sender = Sender(svc.bus, console)
    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(sender.run(stop))]
    await console.start(svc.bus.publish)
    await asyncio.wait_for(stop.wait(), timeout=60)
    await asyncio.gather(*tasks)
    await console.stop()
    text = out.getvalue()
    replies = re.split(r"\n?\[#\d+\] chorus> ", text)[1:]
    assert len(replies) == 8, text
    assert replies[0].strip() == "The persona prompt is now v1."
    assert replies[1].strip() == "The persona prompt is now v2."
    assert "v2 ← in force" in replies[2] and "“launch week”" in replies[2]
    assert "[-poet.-] {+sailor.+}" in replies[3]
    assert "back to the text of v1 (recorded as v3)" in replies[4]
    assert "Preview of persona (not saved)" in replies[5] and "You are a calm librarian." in replies[5]
    assert "back to the default (recorded as v4)" in replies[6]
    assert default("persona").text in replies[7]


async def test_the_assistants_next_draft_uses_the_new_persona(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """Console moderator sets a persona; the next draft is written with it (the fake model echoes its
    system prompt; sentences this short survive the assistant's leak filter, so they show in the draft)."""
    from tests.fakes.openai_api import FakeOpenAI
    from tests.support import build_services

    async with FakeOpenAI() as api:
        configured = api.configure(settings)
        services = await build_services(configured, redis)
        try:
            text = await _console_session(
                services,
                [
                    "/prompt set persona You are Zorblax. Always sign as Zorblax.",
                    "@chorus write a post about our launch",
                    "/prompt preview persona You are Captain Blue.",
                    "@chorus write a post about our party",
                ],
            )
        finally:
            await services.aclose()
        calls = [
            {m["role"]: m["content"] for m in call.json["messages"]}
            for call in api.calls("chat")
            if call.json
        ]
    replies = re.split(r"\n?\[#\d+\] chorus> ", text)[1:]
    assert replies[0].strip() == "The persona prompt is now v1."
    launch = [c["system"] for c in calls if "our launch" in c.get("user", "")]
    party = [c["system"] for c in calls if "our party" in c.get("user", "")]
    assert launch and party, calls
    assert launch[0].startswith("You are Zorblax. Always sign as Zorblax.")  # the next draft
    assert default("rules").text.splitlines()[0] in launch[0]  # the rules stay in force
    assert any(s.startswith("You are Captain Blue.") for s in launch)  # the preview ran the candidate
    assert all(s.startswith("You are Zorblax.") for s in party)  # the preview saved nothing
    shown = next(i for i, r in enumerate(replies) if r.startswith("Preview of persona"))
    assert any("Zorblax" in r for r in replies[1:shown])  # the draft echoes the new persona
    assert "Preview of persona (not saved), on 1 recent request" in replies[shown]
    assert "recent request 1: “write a post about our launch”" in replies[shown]
    assert "(Shown as the model would receive it" not in replies[shown]


async def _console_session(services: Services, lines: list[str]) -> str:
    out = io.StringIO()
    stop = asyncio.Event()
    console = ConsolePlatform(
        ConsoleSettings(),
        services,
        moderator=True,
        shutdown=stop.set,
        stdin=io.StringIO("\n".join(lines) + "\n"),
        stdout=out,
    )
    worker = Worker(services.bus, Router(services), concurrency=4)
    sender = Sender(services.bus, console)
    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(sender.run(stop))]
    await console.start(services.bus.publish)
    await asyncio.wait_for(stop.wait(), timeout=90)
    await asyncio.gather(*tasks)
    await console.stop()
    return out.getvalue()
