"""Writing the feed: ingest items (with near-duplicate grouping), engagement, edits, deletions, opt-outs.

Ingest is batched: texts are shingled and MinHashed for the whole batch with numpy, then one script call
per chunk stores items, indexes and LSH buckets. An item whose LSH buckets point at existing stories comes
back with those stories' text; it is checked exactly here and written in a second call, joining the best
matching story. Several chunks are in flight at once so Python prepares the next while Redis stores one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from core import metrics
from core.contract import Event
from core.decode import as_str
from core.feed import keys as fk
from core.feed.dedupe import MIN_TOKENS, MinHasher, content, near_duplicates, shingle, similarity, tokens
from core.feed.items import SEP, FeedItem, decode, item_id, prefix_fields, safe
from core.feed.scripts import DELETE, EDIT, ENGAGE, INGEST, PURGE, engagement
from core.feed.settings import FeedSettings

CHUNK = 256
IN_FLIGHT = 3
PURGE_BATCH = 500


@dataclass
class IngestResult:
    new: int = 0  # items that started a story
    joined: int = 0  # items grouped into an existing story
    updated: int = 0  # items seen before (engagement or text refreshed)
    dropped: int = 0  # items of opted-out authors
    stories: dict[str, str] = field(default_factory=dict)  # item id -> story id, for new and joined items

    def add(self, other: IngestResult) -> None:
        self.new += other.new
        self.joined += other.joined
        self.updated += other.updated
        self.dropped += other.dropped
        self.stories.update(other.stories)


class FeedStore:
    """The feed's write side; every change is one atomic script inside the ``{feed}`` hash tag."""

    def __init__(
        self, redis: aioredis.Redis, settings: FeedSettings | None = None, hasher: MinHasher | None = None
    ) -> None:
        self.redis = redis
        self.settings = settings or FeedSettings()
        self.hasher = hasher or MinHasher()
        self._ingest = redis.register_script(INGEST)
        self._engage = redis.register_script(ENGAGE)
        self._edit = redis.register_script(EDIT)
        self._delete = redis.register_script(DELETE)
        self._purge = redis.register_script(PURGE)

    # -- ingest -------------------------------------------------------------------------------------
    @metrics.timed(metrics.FEED_INGEST)
    async def ingest(self, items: Sequence[FeedItem], *, absolute: bool = False) -> IngestResult:
        """Store items; ``absolute`` = their engagement counts replace stored ones (polled sources)."""
        result = IngestResult()
        pending: list[asyncio.Task[IngestResult]] = []
        try:
            for start in range(0, len(items), CHUNK):
                chunk = items[start : start + CHUNK]
                args = self._chunk_args(chunk, absolute)
                pending.append(asyncio.create_task(self._store(chunk, args, absolute)))
                await asyncio.sleep(0)  # let the call go out while the next chunk is prepared
                while len(pending) >= IN_FLIGHT:
                    result.add(await pending.pop(0))
            for task in pending:
                result.add(await task)
        finally:
            for task in pending:
                task.cancel()
        metrics.ingested(result)
        return result

    def _common_args(self, absolute: bool) -> list[Any]:
        s = self.settings
        width = s.dedupe_window_s
        return [s.retention_s + 86400, s.tau_s, width, 3600, 1 if absolute else 0]

    def _chunk_args(self, chunk: Sequence[FeedItem], absolute: bool) -> list[Any]:
        """The script's arguments: common ones, then (head, stored prefix, json, band keys) per item."""
        now = time.time()
        toks = [tokens(item.text) for item in chunk]
        words = [content(t) if len(t) >= MIN_TOKENS else [] for t in toks]
        eligible = [i for i, w in enumerate(words) if len(w) >= 2]
        bands: list[bytes] = [b""] * len(chunk)
        if eligible:
            keys = self.hasher.band_keys(self.hasher.signatures([words[i] for i in eligible]))
            for i, k in zip(eligible, keys, strict=True):
                bands[i] = k
        args = self._common_args(absolute)
        tau = self.settings.tau_s
        for item, band in zip(chunk, bands, strict=True):
            if not item.created_at:
                item.created_at = now
            created, ck, channel, source = prefix_fields(item)
            counts = (str(item.reactions), str(item.replies), str(item.reposts), str(item.views))
            weight = engagement(item.reactions, item.replies, item.reposts, item.views)
            head = SEP.join(
                (
                    item.id,
                    created,
                    ck,
                    safe(item.platform),
                    source or f"{ck}:{channel}",
                    repr(weight),
                    safe(item.author_key),
                    repr(float(created) / tau),
                    "",
                    "l",
                )
            )
            pre = SEP.join((created, ck, channel, source, *counts)) + SEP
            args += [head.encode(), pre.encode(), item.body().encode(), band]
        return args

    async def _store(self, chunk: Sequence[FeedItem], args: list[Any], absolute: bool) -> IngestResult:
        out = await self._ingest(keys=[fk.FEED], args=args)
        result = IngestResult()
        retry: list[tuple[int, str]] = []
        for index, status in enumerate(out):
            if isinstance(status, list):
                retry.append((index, self._best_match(chunk[index], status[1:])))
            else:
                self._count(result, chunk[index], as_str(status), "")
        if retry:
            args2 = self._common_args(absolute)
            for index, hint in retry:
                base = 5 + 4 * index
                head = args[base].decode().split(SEP)
                head[8], head[9] = hint, "w"
                args2 += [SEP.join(head).encode(), *args[base + 1 : base + 4]]
            out2 = await self._ingest(keys=[fk.FEED], args=args2)
            for (index, hint), status in zip(retry, out2, strict=True):
                self._count(result, chunk[index], as_str(status), hint)
        return result

    @staticmethod
    def _count(result: IngestResult, item: FeedItem, status: str, hint: str) -> None:
        if status == "n":
            result.new += 1
            result.stories[item.id] = item.id
        elif status == "j":
            result.joined += 1
            result.stories[item.id] = hint
        elif status == "u":
            result.updated += 1
        else:
            result.dropped += 1

    @staticmethod
    def _best_match(item: FeedItem, candidates: list[Any]) -> str:
        """The candidate story most similar to the item among those that pass the exact check."""
        mine = shingle(item.text)
        best, best_score = "", 0.0
        for sid_raw, value in zip(candidates[::2], candidates[1::2], strict=True):
            sid = as_str(sid_raw)
            other = shingle(decode(sid, value).text)
            if near_duplicates(mine, other):
                score = max(similarity(mine, other))
                if score > best_score:
                    best, best_score = sid, score
        return best

    # -- changes at the source ------------------------------------------------------------------------
    async def engage(
        self,
        item_id_: str,
        *,
        reactions: int = 0,
        replies: int = 0,
        reposts: int = 0,
        views: int = 0,
        absolute: bool = False,
    ) -> bool:
        """Add (or, with ``absolute``, set) engagement counts; re-ranks the item's story everywhere."""
        done = await self._engage(
            keys=[fk.FEED],
            args=[
                self.settings.tau_s,
                item_id_,
                "a" if absolute else "d",
                reactions,
                replies,
                reposts,
                views,
            ],
        )
        return bool(done)

    async def edit(self, item_id_: str, text: str, media: tuple[tuple[str, str], ...] | None = None) -> bool:
        """Replace an item's text (edited at the source); digests not yet sent are rebuilt."""
        raw = await self.redis.get(fk.item(item_id_))
        if raw is None:
            return False
        item = decode(item_id_, raw)
        item.text = text
        if media is not None:
            item.media = media
        return bool(await self._edit(keys=[fk.FEED], args=[item_id_, item.body()]))

    async def delete(self, *item_ids: str) -> int:
        """Remove items deleted at the source from the feed, their stories and unsent digests."""
        if not item_ids:
            return 0
        return int(await self._delete(keys=[fk.FEED], args=[self.settings.tau_s, *item_ids]))

    async def get(self, item_id_: str) -> FeedItem | None:
        raw = await self.redis.get(fk.item(item_id_))
        return decode(item_id_, raw) if raw is not None else None

    # -- opt-out --------------------------------------------------------------------------------------
    async def optout(self, platform: str, author_id: str) -> int:
        """Record the opt-out (new items are dropped from now on) and purge the author's items."""
        author = f"{platform}:{author_id}"
        removed = 0
        while True:
            n, left = await self._purge(
                keys=[fk.FEED, fk.author(platform, author_id)],
                args=[self.settings.tau_s, author, PURGE_BATCH],
            )
            removed += int(n)
            if int(left) == 0:
                return removed

    async def optin(self, platform: str, author_id: str) -> bool:
        return bool(await self.redis.srem(fk.OPTOUT, f"{platform}:{author_id}"))

    async def opted_out(self, platform: str, author_id: str) -> bool:
        return bool(await self.redis.sismember(fk.OPTOUT, f"{platform}:{author_id}"))


# -- from chat events -----------------------------------------------------------------------------------


def item_from_event(event: Event) -> FeedItem:
    """A message seen in an opted-in channel, as a feed item."""
    return FeedItem(
        platform=event.platform,
        community=event.community,
        channel=event.channel,
        message_id=event.message_id or event.id,
        author_id=event.author.id,
        author_name=event.author.name,
        text=event.text,
        created_at=event.created_at,
        media=tuple((a.kind, a.url) for a in event.attachments if a.url),
    )


def event_item_id(event: Event, message_id: str | None = None) -> str:
    """The feed item an edit, deletion or reaction refers to."""
    return item_id(event.platform, event.community, event.channel, message_id or event.message_id or "")
