"""A running Chorus for the web tests: real Redis, the real bus, worker and sender, the console bot as the
chat, the fake OpenAI on loopback, the HTTP port with the web app, and Debian's Chromium via Playwright."""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bots.console.adapter import ConsolePlatform
from bots.console.config import ConsoleSettings
from core.contract import Author, Event, EventKind
from core.feed.http import FeedHttp
from core.router import Router
from core.sender import Sender
from core.services import Services
from core.settings import Settings
from core.worker import Worker
from tests.fakes.openai_api import FakeOpenAI
from tests.support import build_services, feed_of

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
COMMUNITY = "local"
MODERATOR = "ada"
_LINK = re.compile(r"(http://127\.0\.0\.1:\d+/signin\?t=[A-Za-z0-9_.=-]+)")


def require_browser() -> None:
    """The browser tests never skip: a missing Chromium is a failure (``make test`` installs it)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium for the browser tests")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Pipe(io.TextIOBase):
    """The console's stdin: lines are written while it runs; ``close`` is end of input."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        self._reader = os.fdopen(self._r, "r", encoding="utf-8")
        self._writer = os.fdopen(self._w, "w", encoding="utf-8")

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return self._reader.readline()

    def isatty(self) -> bool:
        return False

    def send(self, line: str) -> None:
        self._writer.write(line.replace("\n", " ") + "\n")
        self._writer.flush()

    def finish(self) -> None:
        self._writer.close()

    def release(self) -> None:
        self._reader.close()


@dataclass
class Stack:
    services: Services
    api: FakeOpenAI
    base: str
    out: io.StringIO
    stdin: _Pipe
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def redis(self) -> aioredis.Redis:
        return self.services.redis

    def output(self) -> str:
        return self.out.getvalue()

    async def type(self, line: str, timeout: float = 60) -> str:
        """Type a line into the moderator's console; returns what the bot printed for it."""
        before = len(self.output())
        marker = f"[#{self.output().count('] chorus> ') + 1}]"
        self.stdin.send(line)
        await self._wait_for(lambda: marker in self.output()[before:], timeout, line)
        await asyncio.sleep(0.2)  # the rest of the answer (several messages) follows at once
        return self.output()[before:]

    async def say_as(
        self,
        text: str,
        *,
        user: str,
        moderator: bool = False,
        community: str = COMMUNITY,
        timeout: float = 60,
    ) -> str:
        """Another person in a console community, through the same bus (the console shows the answers)."""
        before = len(self.output())
        command = re.match(r"^/([a-z]+)\s*(.*)$", text, re.DOTALL)
        common: dict[str, Any] = {
            "platform": "console",
            "community": community,
            "channel": "console",
            "message_id": f"{user}-{time.monotonic_ns()}",
            "author": Author(id=user, name=user.title(), is_moderator=moderator),
        }
        if command:
            event = Event(
                kind=EventKind.COMMAND, command=command.group(1), args=command.group(2), text=text, **common
            )
        else:
            event = Event(kind=EventKind.MENTION, text=text, **common)
        await self.services.bus.publish(event)
        deadline = time.monotonic() + timeout
        while not await self.services.bus.settled(event.id):
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer to {text!r}")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # delivery by the console's sender
        return self.output()[before:]

    async def _wait_for(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer to {what!r}:\n{self.output()[-3000:]}")
            await asyncio.sleep(0.02)

    async def link(self, *, user: str = MODERATOR, moderator: bool = True, community: str = COMMUNITY) -> str:
        """A sign-in link obtained by sending /dashboard in a console session."""
        if user == MODERATOR and community == COMMUNITY:
            printed = await self.type("/dashboard")
        else:
            printed = await self.say_as("/dashboard", user=user, moderator=moderator, community=community)
        found = _LINK.findall(printed)
        assert found and "(direct message)" in printed, printed
        return str(found[-1])


@asynccontextmanager
async def running(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Stack]:
    port = free_port()
    async with FakeOpenAI() as api:
        configured = api.configure(
            settings,
            http_port=port,
        )
        services = await build_services(configured, redis)
        out, stdin, stop = io.StringIO(), _Pipe(), asyncio.Event()
        console = ConsolePlatform(
            ConsoleSettings(CHORUS_CONSOLE_USER=MODERATOR, CHORUS_CONSOLE_TIMEOUT_S=60),
            services,
            moderator=True,
            shutdown=stop.set,
            stdin=stdin,
            stdout=out,
        )
        server = FeedHttp(feed_of(services), "127.0.0.1", port)
        await server.start()
        worker = Worker(services.bus, Router(services), concurrency=4, claim_idle_ms=60_000)
        sender = Sender(services.bus, console, hooks=services.delivery_hooks, claim_idle_ms=60_000)
        stack = Stack(services, api, f"http://127.0.0.1:{port}", out, stdin)
        stack.tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(sender.run(stop))]
        await console.start(services.bus.publish)
        try:
            yield stack
        finally:
            stdin.finish()
            stop.set()
            await console.stop()
            await asyncio.gather(*stack.tasks)
            await server.stop()
            await services.aclose()
            stdin.release()


@asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
