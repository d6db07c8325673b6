from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest

from bots.console.adapter import ConsolePlatform
from bots.console.config import ConsoleSettings
from core.contract import EventKind, Reply
from core.router import Router
from core.sender import Sender
from core.services import Services
from core.worker import Worker
from tests.bots.contract import Harness, PlatformContract


def _console(
    services: Services, stdin: str = "", moderator: bool = False
) -> tuple[ConsolePlatform, io.StringIO]:
    out = io.StringIO()
    platform = ConsolePlatform(
        ConsoleSettings(), services, moderator=moderator, stdin=io.StringIO(stdin), stdout=out
    )
    return platform, out


class TestConsoleContract(PlatformContract):
    @pytest.fixture
    async def harness(self, services: Services) -> AsyncIterator[Harness]:
        platform, out = _console(services)

        async def seen() -> list[str]:
            return [m.split("chorus> ", 1)[-1] for m in out.getvalue().split("\n[#") if m]

        yield Harness(platform, seen, {"platform": "console", "community": "local", "channel": "console"})


def test_lines_become_events(services: Services) -> None:
    console, _ = _console(services, moderator=True)
    mention = console.to_event("hey @chorus write about our launch")
    assert mention and mention.kind is EventKind.MENTION and mention.text == "hey  write about our launch"
    assert mention.author.is_moderator and mention.community_key == "console:local"
    command = console.to_event("/prompt show persona")
    assert command and command.kind is EventKind.COMMAND and command.command == "prompt"
    assert command.args == "show persona"
    seen = console.to_event("just chatting")
    assert seen and seen.kind is EventKind.MESSAGE
    assert console.to_event("   ") is None
    assert console.to_event("#3 shorter") is None  # nothing shown yet to reply to
    ids = {console.to_event(f"line {i}").message_id for i in range(5)}  # type: ignore[union-attr]
    assert len(ids) == 5


async def test_piped_session_runs_through_worker_and_sender(services: Services) -> None:
    console, out = _console(services, stdin="/help\n@chorus\n/choose 1\n")
    stop = asyncio.Event()
    console.shutdown = stop.set
    worker = Worker(services.bus, Router(services))
    sender = Sender(services.bus, console)
    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(sender.run(stop))]
    await console.start(services.bus.publish)
    await asyncio.wait_for(stop.wait(), timeout=30)
    await asyncio.gather(*tasks)
    text = out.getvalue()
    assert text.count("chorus>") == 3
    assert "[#1] chorus> Mention me" in text  # /help
    assert "[#2] chorus> Mention me" in text  # an empty mention shows help too
    assert "no such choice" in text


async def test_reply_to_a_bot_message_carries_context(services: Services) -> None:
    console, _ = _console(services)

    async def blob(_: str) -> bytes:
        return b""

    from core.contract import Reply

    await console.deliver(
        Reply(platform="console", community="local", channel="console", text="Draft v1"), blob
    )
    ev = console.to_event("^ shorter")
    assert ev and ev.reply_to and ev.reply_to.from_bot and ev.reply_to.text == "Draft v1"
    assert ev.text == "shorter"


async def _no_blobs(blob: str) -> bytes:
    raise KeyError(blob)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_console_prints_a_draft_as_it_is_written_then_the_finished_message(services: Services) -> None:
    from core.live import LiveUpdate

    out = io.StringIO()
    console = ConsolePlatform(ConsoleSettings(), services, stdin=_Terminal(""), stdout=out)
    assert console.capabilities.live_drafts  # a person at a terminal watches drafts being written
    piped = ConsolePlatform(ConsoleSettings(), services, stdin=io.StringIO(""), stdout=io.StringIO())
    assert not piped.capabilities.live_drafts  # a piped script gets a clean transcript
    base = {"event_id": "e1", "platform": "console", "community": "local", "channel": "console"}
    for seq, text in enumerate(["Our garden …", "Our garden opens …", "Our garden opens Saturday …"], 1):
        assert await console.show_live(LiveUpdate(**base, text=text, seq=seq))
    await console.deliver(Reply(platform="console", community="local", channel="console", event_id="e1",
                                text="Our garden opens Saturday!"), _no_blobs)  # fmt: skip
    printed = out.getvalue()
    assert printed.startswith("chorus (writing)> Our garden opens Saturday\n")  # one growing line
    assert printed.endswith("[#1] chorus> Our garden opens Saturday!\n")
