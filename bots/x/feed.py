"""X as a feed source: configured accounts, lists and searches, polled into the aggregated feed.

Each configured source is an ``XFeedSource`` registered with the feed (``core.feed.sources``), whose
poller calls it under a Redis lock and keeps its cursor (the newest tweet id) across restarts. A source
is polled at most every ``X_FEED_POLL_INTERVAL_S`` (the tier's read limits are small), returns new posts
with their public metrics (absolute engagement), and looks its posts of the last
``X_FEED_METRICS_HOURS`` up again (100 per request) so their metrics stay current; a post X no longer
returns (deleted, or its account gone private) is removed from the feed when seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bots.x.api import MAX_PAGES, Me, XApi
from bots.x.config import XSettings
from bots.x.normalize import Includes, feed_item, referenced
from bots.x.rails import x_key
from core.decode import as_str
from core.feed.ingest import FeedStore
from core.feed.items import FeedItem, item_id

log = logging.getLogger(__name__)

LOOKUP_BATCH = 100
USER_ID_TTL_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # account | list | search
    value: str

    @property
    def name(self) -> str:
        """The source's name in the feed (its baseline bucket and cursor)."""
        return f"x:{self.kind}:{self.value.lower() if self.kind == 'account' else self.value}"


def sources_of(settings: XSettings) -> list[Source]:
    return [
        *(Source("account", a.strip().lstrip("@")) for a in settings.feed_accounts if a.strip()),
        *(Source("list", entry.strip()) for entry in settings.feed_lists if entry.strip()),
        *(Source("search", q.strip()) for q in settings.feed_searches if q.strip()),
    ]


class XFeedSource:
    """One X source as a ``core.feed.sources.FeedSource``: ``poll(cursor) -> (items, next cursor)``."""

    def __init__(
        self,
        source: Source,
        api: XApi,
        redis: aioredis.Redis,
        settings: XSettings,
        me: Me,
        store: FeedStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.name = source.name
        self.api = api
        self.redis = redis
        self.settings = settings
        self.me = me
        self.store = store
        self.clock = clock
        self.recent_key = x_key(me, "feed", "recent", source.name)  # sorted set of _member()s by time
        self._last_poll = float("-inf")

    async def poll(self, cursor: str | None) -> tuple[list[FeedItem], str | None]:
        now = self.clock()
        if now - self._last_poll < self.settings.effective_feed_poll_interval_s:
            return [], None  # the feed polls more often than this tier allows X to be read
        self._last_poll = now
        tweets, includes = await self._fetch(cursor)
        items = [
            feed_item(t, includes, community=self.me.id, source=self.name)
            for t in tweets
            if str(t.get("author_id")) != self.me.id and referenced(t, "retweeted") is None
        ]
        refreshed = await self.refresh(exclude={i.message_id for i in items})
        if items:
            await self.redis.zadd(self.recent_key, {_member(i): i.created_at for i in items})
        newest = max((str(t["id"]) for t in tweets), key=int, default=None)
        if newest is not None and cursor is not None and int(newest) <= int(cursor):
            newest = None
        return items + refreshed, newest

    async def _fetch(self, cursor: str | None) -> tuple[list[dict[str, Any]], Includes]:
        """Posts newer than ``cursor`` (the first poll takes one page, not the history)."""
        kind, value = self.source.kind, self.source.value
        user_id = await self._user_id(value) if kind == "account" else ""
        tweets: list[dict[str, Any]] = []
        includes: dict[str, list[Any]] = {}
        token: str | None = None
        for _ in range(MAX_PAGES if cursor else 1):
            if kind == "account":
                if not user_id:
                    break
                payload = await self.api.user_tweets(user_id, since_id=cursor, token=token)
            elif kind == "list":
                payload = await self.api.list_tweets(value, token=token)
            else:
                payload = await self.api.search(value, since_id=cursor, token=token)
            page = payload.get("data") or []
            fresh = [t for t in page if cursor is None or int(t["id"]) > int(cursor)]
            tweets.extend(fresh)
            for name, values in (payload.get("includes") or {}).items():
                includes.setdefault(name, []).extend(values)
            token = (payload.get("meta") or {}).get("next_token")
            if not token or len(fresh) < len(page):  # lists have no since_id: stop at the cursor
                break
        return tweets, Includes.of({"includes": includes})

    async def _user_id(self, account: str) -> str:
        if account.isdigit():
            return account
        key = x_key(self.me, "feed", "user", account.lower())
        cached = await self.redis.get(key)
        if cached:
            return as_str(cached)
        found = (await self.api.users_by_username([account])).get("data") or []
        if not found:
            log.warning("x feed: no account @%s; check X_FEED_ACCOUNTS", account)
            return ""
        user_id = str(found[0]["id"])
        await self.redis.set(key, user_id, ex=USER_ID_TTL_S)
        return user_id

    async def refresh(self, exclude: set[str] | None = None) -> list[FeedItem]:
        """This source's recent posts with fresh metrics; posts X no longer has are removed from the feed."""
        horizon = self.clock() - self.settings.feed_metrics_hours * 3600
        await self.redis.zremrangebyscore(self.recent_key, "-inf", horizon)
        raw: list[Any] = await self.redis.zrange(self.recent_key, 0, -1)
        known = {m[0]: m for m in (_parse(r) for r in raw) if m[0] not in (exclude or set())}
        ids = list(known)
        out: list[FeedItem] = []
        for start in range(0, len(ids), LOOKUP_BATCH):
            payload = await self.api.tweets(ids[start : start + LOOKUP_BATCH])
            includes = Includes.of(payload)
            out.extend(self._refreshed(t, includes, known) for t in payload.get("data") or [])
            gone = [
                known[g]
                for g in (str(e.get("resource_id") or e.get("value")) for e in payload.get("errors") or [])
                if g in known
            ]
            if gone:
                await self.store.delete(*(item_id("x", self.me.id, channel, tid) for tid, channel, _ in gone))
                await self.redis.zrem(self.recent_key, *("\x1f".join(m) for m in gone))
                log.info("x feed: %d deleted posts removed from %s", len(gone), self.name)
        return out

    def _refreshed(
        self, tweet: dict[str, Any], includes: Includes, known: dict[str, tuple[str, str, str]]
    ) -> FeedItem:
        """The post with fresh metrics, filed where it was first filed (authors may rename)."""
        _, channel, source = known[str(tweet["id"])]
        item = feed_item(tweet, includes, community=self.me.id, source=source)
        if item.channel != channel:
            item.channel = channel
            item.id = item_id("x", self.me.id, channel, item.message_id)
        return item


def _member(item: FeedItem) -> str:
    return "\x1f".join((item.message_id, item.channel, item.source))


def _parse(raw: bytes | str) -> tuple[str, str, str]:
    tweet_id, channel, source = as_str(raw).split("\x1f", 2)
    return tweet_id, channel, source
