"""Test helpers shared across the suite: a recording platform and event builders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from bots import registry
from core.app import Chorus, build
from core.assistant.commands import Assistant
from core.catalog import PlatformCatalog, PlatformFacts
from core.contract import Action, Author, Capabilities, Event, EventKind, Receipt
from core.errors import PlatformError
from core.feed.service import FeedService
from core.platform import BlobReader, EventSink, Platform
from core.services import Services
from core.settings import Settings

CATALOG = registry.catalog()
"""The real platforms' facts, as every process has them."""

_BUILT: dict[int, Chorus] = {}


async def build_services(settings: Settings, redis: aioredis.Redis) -> Services:
    """``core.app.build`` for tests: the Services, with the features' objects reachable below."""
    built = await build(settings, redis)
    _BUILT[id(built.services)] = built
    return built.services


def feed_of(services: Services) -> FeedService:
    return _BUILT[id(services)].feed


def assistant_of(services: Services) -> Assistant:
    return _BUILT[id(services)].assistant


def declare(catalog: PlatformCatalog, name: str, capabilities: Capabilities, **facts: Any) -> PlatformFacts:
    """Declare a test-only platform in ``catalog`` (e.g. ``services.platforms``), as an adapter would."""
    declared = PlatformFacts(name=name, label=facts.pop("label", name.title()), capabilities=capabilities, **facts)
    catalog.register(declared)
    return declared


class RecordingPlatform(Platform):
    """A platform whose far side is a list: what would have been sent, in order."""

    def __init__(self, name: str = "test", capabilities: Capabilities | None = None) -> None:
        self.name = name
        self.capabilities = capabilities or Capabilities(max_text=200, buttons=True, edits=True)
        self.sent: list[Action] = []
        self.failures: list[PlatformError] = []  # raised, in order, before succeeding
        self.publish: EventSink | None = None

    async def start(self, publish: EventSink) -> None:
        self.publish = publish

    async def stop(self) -> None:
        self.publish = None

    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(action)
        return Receipt(message_ids=(f"m{len(self.sent)}",))


def event(kind: EventKind = EventKind.MENTION, text: str = "hello", **kw: Any) -> Event:
    defaults: dict[str, Any] = {
        "platform": "test",
        "community": "c1",
        "channel": "general",
        "message_id": f"msg-{time.monotonic_ns()}",
        "author": Author(id="u1", name="Ada"),
    }
    defaults.update(kw)
    return Event(kind=kind, text=text, **defaults)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
