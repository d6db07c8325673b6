"""Shared pieces of the X adapter's tests: settings for the loopback fake and a running bot.

``running_bot`` wires what ``chorus run --platform x`` wires (the adapter with its pollers, a Worker with
the Router, a Sender for the X outbox) against real Redis and the fake X API over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from bots.x.adapter import XPlatform
from bots.x.config import XSettings
from core.router import Router
from core.sender import Sender
from core.services import Services
from core.worker import Worker
from tests.fakes.x_api import CreatedTweet, FakeX

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def x_settings(x: FakeX, **overrides: Any) -> XSettings:
    """Settings that point the adapter at the fake, poll fast and leave the caps out of the way."""
    c = x.credentials
    values: dict[str, Any] = {
        "X_API_KEY": c["consumer_key"],
        "X_API_SECRET": c["consumer_secret"],
        "X_ACCESS_TOKEN": c["access_token"],
        "X_ACCESS_TOKEN_SECRET": c["access_token_secret"],
        "X_BEARER_TOKEN": c["bearer_token"],
        "X_API_BASE_URL": x.base_url,
        "X_POLL_INTERVAL_S": 0.05,
        "X_FEED_POLL_INTERVAL_S": 0.05,
        "X_POSTS_PER_DAY": 1000,
        "X_REPLIES_PER_DAY": 1000,
        "X_REPLIES_PER_AUTHOR_PER_DAY": 100,
        "X_MAX_CONVERSATION_DEPTH": 100,
    }
    values.update(overrides)
    return XSettings(**values)


@dataclass
class Bot:
    platform: XPlatform
    services: Services
    x: FakeX
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def replies_to(self, tweet_id: str) -> list[CreatedTweet]:
        return [t for t in self.x.created_tweets if t.reply_to == tweet_id]

    def thread_under(self, tweet_id: str) -> list[CreatedTweet]:
        """The bot's tweets chained under ``tweet_id`` (each replying to the previous), in order."""
        out: list[CreatedTweet] = []
        current = tweet_id
        while True:
            nxt = [t for t in self.x.created_tweets if t.reply_to == current]
            if not nxt:
                return out
            out.append(nxt[0])
            current = nxt[0].id

    async def until(
        self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.02)
        return value


@contextlib.asynccontextmanager
async def running_bot(services: Services, x: FakeX, settings: XSettings) -> AsyncIterator[Bot]:
    """The X adapter, a worker and the X sender, as ``chorus run --platform x`` starts them."""
    platform = XPlatform(settings, services)
    bot = Bot(platform, services, x)
    worker = Worker(services.bus, Router(services), concurrency=8, claim_idle_ms=60_000)
    sender = Sender(services.bus, platform, hooks=services.delivery_hooks, claim_idle_ms=60_000)
    tasks = [
        asyncio.create_task(worker.run(bot.stop), name="worker"),
        asyncio.create_task(sender.run(bot.stop), name="sender-x"),
    ]
    try:
        await platform.start(services.bus.publish)
        yield bot
    finally:
        bot.stop.set()
        await platform.stop()
        await asyncio.gather(*tasks)
