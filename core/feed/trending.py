"""Trending terms by velocity, per community and across communities.

Every message that joins the feed counts its content words once in an hourly hash of its community and in
the all-communities one (``fk.community_terms`` / ``fk.all_terms``, kept ``KEEP_HOURS``). A term trends when
it is mentioned much more in the last ``RECENT_HOURS`` than its hourly average over the day before:
velocity = (recent per hour + 1) / (baseline per hour + 1), at least ``MIN_MENTIONS`` recent mentions, so a
word everyone always uses ("today") never trends and a sudden one ("outage") does. Digests show the
trending terms under their intro (without a person's muted words); the web pages can read ``top``. Messages
are counted by the feed's observer, polled posts (X accounts, lists, searches) by the poller
(``sources.py``), each once, when it first joins the feed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from core.decode import as_str
from core.feed import keys as fk
from core.feed.dedupe import STOPWORDS, tokens
from core.feed.items import FeedItem

HOUR = 3600
RECENT_HOURS = 2
BASELINE_HOURS = 24
KEEP_HOURS = RECENT_HOURS + BASELINE_HOURS + 1
MIN_MENTIONS = 3
MIN_VELOCITY = 1.5
MAX_TERMS_PER_ITEM = 40


def terms_of(text: str) -> set[str]:
    return {t[:40] for t in tokens(text) if t not in STOPWORDS and len(t) >= 3 and not t.isdigit()}


class Trending:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._recent: dict[tuple[str | None, int, int], tuple[float, list[str]]] = {}

    async def record(self, item: FeedItem) -> None:
        """Count an item's words in its community's hour and in everyone's (one round trip)."""
        await self.record_many([item])

    async def record_many(self, items: Sequence[FeedItem]) -> None:
        """``record`` for a batch (a poll of an X list or search): one round trip for all of them. Callers
        pass only items new to the feed, so a re-polled post is not counted again."""
        ttl = KEEP_HOURS * HOUR
        counts: dict[str, dict[str, int]] = {}
        for item in items:
            terms = sorted(terms_of(item.text))[:MAX_TERMS_PER_ITEM]
            hour = int((item.created_at or time.time()) // HOUR)
            for key in (fk.community_terms(item.community_key, hour), fk.all_terms(hour)):
                into = counts.setdefault(key, {})
                for term in terms:
                    into[term] = into.get(term, 0) + 1
        counts = {key: per_term for key, per_term in counts.items() if per_term}
        if not counts:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, per_term in counts.items():
                for term, n in per_term.items():
                    pipe.hincrby(key, term, n)
                pipe.expire(key, ttl)
            await pipe.execute()

    async def top(
        self, community_key: str | None, limit: int = 5, now: float | None = None, max_age_s: float = 0.0
    ) -> list[str]:
        """The fastest-rising terms of a community (None: of all communities), best first. With
        ``max_age_s`` an answer up to that old will do: a digest round's thousands of digests read the same
        few (26 hashes each)."""
        current = int((time.time() if now is None else now) // HOUR)
        key = (community_key, current, limit)
        cached = self._recent.get(key)
        if cached is not None and cached[0] + max_age_s > time.monotonic():
            return list(cached[1])
        found = await self._top(community_key, limit, current)
        if len(self._recent) > 4096:
            self._recent.clear()
        self._recent[key] = (time.monotonic(), found)
        return list(found)

    async def _top(self, community_key: str | None, limit: int, current: int) -> list[str]:
        hours = list(range(current - RECENT_HOURS - BASELINE_HOURS + 1, current + 1))

        def key(hour: int) -> str:
            return fk.all_terms(hour) if community_key is None else fk.community_terms(community_key, hour)

        async with self.redis.pipeline(transaction=False) as pipe:
            for hour in hours:
                pipe.hgetall(key(hour))
            counts = await pipe.execute()
        recent: dict[str, int] = {}
        before: dict[str, int] = {}
        for n, raw in enumerate(counts):
            into = recent if n >= BASELINE_HOURS else before
            for term, count in raw.items():
                name = as_str(term)
                into[name] = into.get(name, 0) + int(count)
        scored = [
            ((n / RECENT_HOURS + 1) / (before.get(term, 0) / BASELINE_HOURS + 1), n, term)
            for term, n in recent.items()
            if n >= MIN_MENTIONS
        ]
        scored = [s for s in scored if s[0] >= MIN_VELOCITY]
        scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
        return [term for _, _, term in scored[:limit]]
