"""Reading the feed: ranked pages of stories per community, per platform or global, with cursors.

Timelines are per partition (core/feed/keys.py): a story is indexed in its home partition only. A page of
one partition (most community pages) is one script call: a range of its sorted sets plus the stories' items.
A page over several partitions (platform and global pages, a community with stories at home elsewhere)
reads each partition's next ids and scores (one call each, at once), merges them by (score, id) descending
-- the order every sorted set and the scripts' own merge use -- and loads the chosen stories from their
homes. Cursors are ``<score>~<story id>`` of the last story shown: every partition skips what is at or
above it in that order, so a cursor means the same in one partition and across the merge, and pages stay
stable while new items arrive. ``top`` ranks the stories active in a period by
their summed normalised engagement (the digests use the same ranking for their window).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import redis.asyncio as aioredis

from core import metrics
from core.catalog import PlatformCatalog
from core.decode import as_str
from core.errors import InvalidInput
from core.feed import keys as fk
from core.feed.dedupe import tokens
from core.feed.items import Story, decode
from core.feed.scripts import PAGE, STORIES, WINDOW, run_many
from core.feed.settings import FeedSettings

Order = Literal["hot", "new", "top"]
ORDERS: tuple[Order, ...] = ("hot", "new", "top")
WINDOW_CHUNK = 2000
MAX_LIMIT = 100
PLATFORMS_TTL_S = 5.0
Sources = list[tuple[int, list[str]]]
"""Timelines to merge, grouped by partition: (partition, its timeline keys)."""
_CURSOR = re.compile(r"^(-?[0-9.e+-]+|inf)~([A-Za-z0-9_-]{1,32})$|^o([0-9]{1,7})$")


@dataclass(frozen=True, slots=True)
class Scope:
    """Which part of the feed: everything, one platform or one community, optionally about some words."""

    kind: Literal["all", "platform", "community"] = "all"
    value: str = ""  # platform name, or community key ``<platform>:<community>``
    topics: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        base = {"all": "all", "platform": f"p:{self.value}", "community": f"c:{self.value}"}[self.kind]
        return base + (f"|t:{','.join(self.topics)}" if self.topics else "")

    def label(self, platforms: PlatformCatalog) -> str:
        if self.kind == "community":
            base = "this community"
        elif self.kind == "platform":
            base = platforms.label(self.value)
        else:
            base = "all communities"
        return base + (f" about {', '.join(self.topics)}" if self.topics else "")

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``all``, ``platform:<name>`` or ``community:<platform>:<id>``, each optionally ``?topics``
        given separately (HTTP query parameters)."""
        kind, _, value = text.partition(":")
        if kind == "all" and not value:
            return cls()
        if kind == "platform" and re.fullmatch(r"[a-z0-9_-]{1,32}", value):
            return cls("platform", value)
        if kind == "community" and re.fullmatch(r"[a-z0-9_-]{1,32}:[^\s]{1,128}", value):
            return cls("community", value)
        raise InvalidInput("Scope must be all, platform:<name> or community:<platform>:<id>.")

    def with_topics(self, words: Sequence[str]) -> Scope:
        return Scope(self.kind, self.value, normalise_topics(words))


def normalise_topics(words: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for word in words:
        for tok in tokens(word):
            if tok not in out and len(out) < 8:
                out.append(tok[:40])
    return tuple(out)


def matches(story: Story, topics: Sequence[str]) -> bool:
    if not topics:
        return True
    wanted = set(topics)
    return any(wanted.intersection(tokens(item.text)) for item in story.items)


class Ranking(Sequence[tuple[str, float, float]]):
    """A window's stories best first, as (story id, engagement, latest time); entries are built only
    when read (a digest reads five of the tens of thousands of stories a global window ranks)."""

    __slots__ = ("_order",)

    def __init__(self, order: list[tuple[float, float, bytes]]) -> None:
        self._order = order  # (-engagement, -latest, id)

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, index: int) -> tuple[str, float, float]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, float, float]]: ...
    def __getitem__(self, index: int | slice) -> tuple[str, float, float] | list[tuple[str, float, float]]:
        if isinstance(index, slice):
            return [(sid.decode(), -total, -last) for total, last, sid in self._order[index]]
        total, last, sid = self._order[index]
        return sid.decode(), -total, -last


@dataclass(slots=True)
class Page:
    stories: list[Story]
    cursor: str | None  # pass back for the next page; None at the end


def _records(raw: bytes | str | None) -> list[list[bytes]]:
    """The scripts' flat replies: records separated by GS, fields by FS."""
    data = raw.encode() if isinstance(raw, str) else raw
    return [rec.split(b"\x1c") for rec in data.split(b"\x1d")] if data else []


def _story(fields: list[bytes]) -> Story | None:
    """(story id, score, item id, value, ...) -> Story, or None if its items are gone."""
    items = [decode(i.decode(), v) for i, v in zip(fields[2::2], fields[3::2], strict=True)]
    if not items:
        return None
    return Story(fields[0].decode(), float(fields[1] or 0), items)


class Timelines:
    """The feed's read side."""

    def __init__(self, redis: aioredis.Redis, tau_s: float | None = None) -> None:
        self.redis = redis
        self.tau_s = tau_s if tau_s is not None else FeedSettings().tau_s
        self._platforms: list[str] = []
        self._platforms_at = -PLATFORMS_TTL_S
        self._page = redis.register_script(PAGE)
        self._window = redis.register_script(WINDOW)
        self._stories = redis.register_script(STORIES)

    async def timeline_keys(self, scope: Scope, order: Literal["hot", "new"]) -> Sources:
        if scope.kind == "community":
            return await self.community_keys([scope.value], order)
        if scope.kind == "platform":
            return [(p, [fk.timeline(p, order, "p", scope.value)]) for p in range(fk.PARTITIONS)]
        now = time.monotonic()
        if not self._platforms or now - self._platforms_at > PLATFORMS_TTL_S:  # a new platform is rare
            async with self.redis.pipeline(transaction=False) as pipe:
                for p in range(fk.PARTITIONS):
                    pipe.smembers(fk.platforms(p))
                found = await pipe.execute()
            self._platforms = sorted({as_str(x) for names in found for x in names})
            self._platforms_at = now
        if not self._platforms:
            return []
        # every partition's timeline of every platform seen anywhere: a partition without stories of a
        # platform yet answers an empty range
        return [
            (p, [fk.timeline(p, order, "p", name) for name in self._platforms]) for p in range(fk.PARTITIONS)
        ]

    async def community_keys(self, community_keys: Sequence[str], order: Literal["hot", "new"]) -> Sources:
        """The timelines of some communities: in each one's partition, and where stories it joined live."""
        if not community_keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for ck in community_keys:
                pipe.smembers(fk.foreign(ck))
            elsewhere = await pipe.execute()
        by_part: dict[int, list[str]] = defaultdict(list)
        for ck, parts in zip(community_keys, elsewhere, strict=True):
            for p in sorted({fk.community_part(ck), *(int(as_str(x)) for x in parts)}):
                by_part[p].append(fk.timeline(p, order, "c", ck))
        return sorted(by_part.items())

    async def all_communities(self) -> set[str]:
        """Every community key with stories (each partition's set)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in range(fk.PARTITIONS):
                pipe.smembers(fk.communities(p))
            found = await pipe.execute()
        return {as_str(ck) for members in found for ck in members}

    @metrics.timed(metrics.FEED_PAGE)
    async def page(
        self,
        scope: Scope,
        order: Order = "hot",
        limit: int = 20,
        cursor: str | None = None,
        *,
        period_s: float = 86400.0,
        now: float | None = None,
    ) -> Page:
        limit = max(1, min(limit, MAX_LIMIT))
        if order == "top":
            return await self._top_page(scope, limit, cursor, period_s, time.time() if now is None else now)
        sources = [(p, ks) for p, ks in await self.timeline_keys(scope, order) if ks]
        max_score, last = self._parse_cursor(cursor)
        if not sources:
            return Page([], None)
        found: list[Story] = []
        for _ in range(20):  # topic pages read on until they have enough matching stories
            records = await self._page_records(sources, max_score, last, limit)
            for fields in records:
                max_score, last = fields[1].decode(), fields[0].decode()
                story = _story(fields)
                if story is not None and matches(story, scope.topics):
                    found.append(story)
                    if len(found) == limit:
                        return Page(found, f"{max_score}~{last}")
            if len(records) < limit:
                return Page(found, None)
        return Page(found, f"{max_score}~{last}")

    async def _page_records(
        self, sources: Sources, max_score: str, last: str, limit: int
    ) -> list[list[bytes]]:
        """The next ``limit`` stories after the cursor, as (id, score, item id, value, ...) records."""
        if len(sources) == 1:
            part, keys = sources[0]
            return _records(await self._page(keys=[fk.prefix(part), *keys], args=[max_score, last, limit, 1]))
        heads = await run_many(
            self.redis,
            self._page,
            [([fk.prefix(p), *keys], [max_score, last, limit, 0]) for p, keys in sources],
        )
        entries = [(float(r[1]), r[0], r[1]) for raw in heads for r in _records(raw)]
        entries.sort(reverse=True)  # score, then id, both descending: as each partition's script orders them
        chosen = entries[:limit]
        loaded = await self._story_records([sid.decode() for _, sid, _ in chosen])
        out = []
        for _, sid, score in chosen:
            fields = loaded.get(sid, [sid, b""])
            out.append([sid, score, *fields[2:]])
        return out

    async def _story_records(self, story_ids: Sequence[str]) -> dict[bytes, list[bytes]]:
        """STORIES in each home partition at once: story id -> its record (score field empty)."""
        by_part: dict[int, list[str]] = defaultdict(list)
        for sid in dict.fromkeys(story_ids):
            by_part[fk.part_of(sid)].append(sid)
        replies = await run_many(
            self.redis, self._stories, [([fk.prefix(p)], sids) for p, sids in by_part.items()]
        )
        return {fields[0]: fields for raw in replies for fields in _records(raw)}

    @staticmethod
    def _parse_cursor(cursor: str | None) -> tuple[str, str]:
        if not cursor:
            return "+inf", ""
        m = _CURSOR.match(cursor)
        if not m or m.group(3) is not None or not _is_score(m.group(1)):
            raise InvalidInput("That page cursor is not valid; start again from the first page.")
        return m.group(1), m.group(2)

    async def ranked_window(self, scope: Scope, start: float, end: float) -> Ranking:
        """(story id, engagement, latest time) of every story active in [start, end], best first.
        Topics do not change the ranking (they filter it), so this ignores them."""
        best: dict[bytes, tuple[float, float]] = {}
        new_keys = await self.timeline_keys(scope, "new")
        hot_keys = await self.timeline_keys(scope, "hot")

        async def read(part: int, key: str, hot: str) -> None:
            offset = 0
            while True:
                raw = await self._window(
                    keys=[fk.prefix(part), key, hot], args=[start, end, offset, WINDOW_CHUNK, self.tau_s]
                )
                seen = int(float(as_str(raw[0])))
                if raw[1]:  # a story on two platforms comes back from both with the same figures
                    sums = map(float, raw[2].split())
                    latest = map(float, raw[3].split())
                    best.update(zip(raw[1].split(b"\x1d"), zip(sums, latest, strict=True), strict=True))
                offset += seen
                if seen < WINDOW_CHUNK:
                    return

        await asyncio.gather(
            *(
                read(part, key, hot)
                for (part, keys), (_, hots) in zip(new_keys, hot_keys, strict=True)
                for key, hot in zip(keys, hots, strict=True)
            )
        )
        # most engagement, then most recent, then id: plain tuples sort in C, without a key function
        return Ranking(sorted((-total, -last, sid) for sid, (total, last) in best.items()))

    async def top(
        self,
        scope: Scope,
        start: float,
        end: float,
        limit: int,
        ranked: Sequence[tuple[str, float, float]] | None = None,
    ) -> list[Story]:
        """The best stories of a period: most normalised engagement, then most recent. ``ranked`` is
        the scope's ``ranked_window`` when the caller already has it (topic scopes share one)."""
        if ranked is None:
            ranked = await self.ranked_window(scope, start, end)
        stories, _ = await self._collect(ranked, 0, limit, scope.topics)
        return stories

    async def _top_page(
        self, scope: Scope, limit: int, cursor: str | None, period_s: float, now: float
    ) -> Page:
        offset = 0
        if cursor:
            m = _CURSOR.match(cursor)
            if not m or m.group(3) is None:
                raise InvalidInput("That page cursor is not valid; start again from the first page.")
            offset = int(m.group(3))
        ranked = await self.ranked_window(scope, now - period_s, now)
        stories, end = await self._collect(ranked, offset, limit, scope.topics)
        return Page(stories, f"o{end}" if end < len(ranked) else None)

    async def _collect(
        self, ranked: Sequence[tuple[str, float, float]], offset: int, limit: int, topics: Sequence[str]
    ) -> tuple[list[Story], int]:
        out: list[Story] = []
        position = offset
        while position < len(ranked) and len(out) < limit:
            batch = ranked[position : position + max(limit, 50)]
            loaded = {s.id: s for s in await self.stories([sid for sid, _, _ in batch])}
            for sid, total, _ in batch:
                position += 1
                story = loaded.get(sid)
                if story is None:
                    continue
                story.score = total
                if matches(story, topics):
                    out.append(story)
                    if len(out) == limit:
                        break
        return out, position

    async def stories(self, story_ids: Sequence[str]) -> list[Story]:
        """Stories by id, in the order asked; stories that no longer exist are left out."""
        if not story_ids:
            return []
        loaded = await self._story_records(story_ids)
        out = []
        for sid in story_ids:
            fields = loaded.get(sid.encode())
            if fields is not None and (story := _story(fields)) is not None:
                out.append(story)
        return out


def _is_score(text: str) -> bool:
    """A cursor's score goes to ZREVRANGEBYSCORE: "e", "..", "1e+-" match the pattern but are no number."""
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False
