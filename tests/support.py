"""Test helpers shared across the suite: a recording platform and event builders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from core.contract import Action, Author, Capabilities, Event, EventKind, Receipt
from core.errors import PlatformError
from core.platform import BlobReader, EventSink, Platform


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
