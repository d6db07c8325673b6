"""Polled sources: feeds an adapter can read but that do not push events (X accounts, lists, searches).

An adapter registers a ``FeedSource`` with ``register_source(services, source)``. The ``feed-poll``
background task of ``chorus run`` polls each source every ``CHORUS_FEED_POLL_INTERVAL_S`` under a Redis
lock (so two processes never poll the same source at once), keeps the source's cursor (e.g. X's
``since_id``) in Redis across restarts, and ingests what it returns with absolute engagement counts, so
re-polling an item refreshes its likes, replies, reposts and views. A polled post's words count towards
trending (``trending.py``) once, when it first joins the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.decode import as_str
from core.feed import keys as fk
from core.feed.ingest import FeedStore
from core.feed.trending import Trending
from core.ports import FeedSource
from core.services import Services

log = logging.getLogger(__name__)


def register_source(services: Services, source: FeedSource) -> None:
    services.feed_sources[source.name] = source


class Poller:
    def __init__(self, services: Services, store: FeedStore, interval_s: float) -> None:
        self.services = services
        self.store = store
        self.interval_s = interval_s
        self.trending = Trending(store.redis)

    def sources(self) -> dict[str, FeedSource]:
        return dict(self.services.feed_sources)

    async def poll(self, source: FeedSource) -> int:
        """Poll one source once (if no other process is); returns how many items it ingested."""
        redis = self.store.redis
        key = fk.poll(source.name)
        lock = key + ":lock"
        if not await redis.set(lock, "1", nx=True, px=int(max(self.interval_s, 30) * 1000)):
            return 0
        try:
            raw = await redis.get(key)
            cursor = as_str(raw) if raw is not None else None
            items, next_cursor = await source.poll(cursor)
            if items:
                result = await self.store.ingest(list(items), absolute=True)
                # trending counts a post once, when it joins the feed (not at every refresh of its counts)
                await self.trending.record_many([i for i in items if i.id in result.stories])
            if next_cursor is not None and next_cursor != cursor:
                await redis.set(key, next_cursor)
            return len(items)
        finally:
            await redis.delete(lock)

    async def poll_all(self) -> int:
        total = 0
        for name, source in sorted(self.sources().items()):
            try:
                total += await self.poll(source)
            except Exception as exc:  # one broken source must not stop the others
                log.warning("polling feed source %s failed: %r", name, exc)
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll_all()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
