"""Writing the feed: ingest items (with near-duplicate grouping), engagement, edits, deletions, opt-outs.

Ingest is batched: texts are shingled and MinHashed for the whole batch with numpy; the LSH buckets of the
batch are read (one HMGET per partition and window: the index is spread over the partitions by band key),
the candidate stories' texts are checked exactly here, and each item goes to one script call per partition:
to its own partition when it starts a story, to the story's home when it joins one (leaving a stub under its
id in its own partition, core/feed/keys.py). Chunks are prepared while the previous one is written, and
written in order, so an item finds the stories started by earlier chunks.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from core import metrics
from core.contract import Event
from core.decode import as_str
from core.feed import keys as fk
from core.feed.dedupe import (
    MIN_TOKENS,
    MinHasher,
    Shingled,
    content,
    near_duplicates,
    shingle,
    similarity,
    tokens,
)
from core.feed.items import SEP, FeedItem, decode, item_id, prefix_fields, safe
from core.feed.scripts import (
    DELETE,
    EDIT,
    ENGAGE,
    INGEST,
    LEADS,
    LSH_GET,
    LSH_SET,
    PURGE,
    engagement,
    run_many,
)
from core.feed.settings import FeedSettings

CHUNK = 1024  # items per round: each round makes about four calls per partition, so rounds are large
IN_FLIGHT = 3
PURGE_BATCH = 500
BAND = 6  # bytes per LSH band key
LSH_SLACK_S = 3600


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


@dataclass(slots=True)
class _Row:
    """One item of a chunk on its way to a partition."""

    item: FeedItem
    head: list[str]  # the script's head fields (hint and mode filled in before the call)
    pre: bytes
    body: bytes
    bands: list[bytes]
    window: int


_Found = tuple[dict[int, dict[bytes, str]], dict[str, Shingled]]
"""LSH window -> band key -> story id, from Redis; story id -> its text shingled."""


class _Grouping:
    """Near-duplicate lookups of one ``ingest`` call: stories its earlier chunks started, by LSH bucket, so a
    later item finds them before they are written (chunks are written in order, after their lookups)."""

    def __init__(self) -> None:
        self.started: dict[int, dict[bytes, FeedItem]] = {}  # LSH window -> band key -> item
        self._shingled: dict[str, Shingled] = {}

    def shingled(self, item: FeedItem) -> Shingled:
        s = self._shingled.get(item.id)
        if s is None:
            s = self._shingled[item.id] = shingle(item.text)
        return s


class FeedStore:
    """The feed's write side; every change is one atomic script inside one partition."""

    def __init__(
        self, redis: aioredis.Redis, settings: FeedSettings | None = None, hasher: MinHasher | None = None
    ) -> None:
        self.redis = redis
        self.settings = settings or FeedSettings()
        self.hasher = hasher or MinHasher()
        self._ingest = redis.register_script(INGEST)
        self._leads = redis.register_script(LEADS)
        self._lsh_get = redis.register_script(LSH_GET)
        self._lsh_set = redis.register_script(LSH_SET)
        self._engage = redis.register_script(ENGAGE)
        self._edit = redis.register_script(EDIT)
        self._delete = redis.register_script(DELETE)
        self._purge = redis.register_script(PURGE)

    @property
    def _ttl(self) -> int:
        return self.settings.retention_s + 86400

    # -- ingest -------------------------------------------------------------------------------------
    @metrics.timed(metrics.FEED_INGEST)
    async def ingest(self, items: Sequence[FeedItem], *, absolute: bool = False) -> IngestResult:
        """Store items; ``absolute`` = their engagement counts replace stored ones (polled sources)."""
        result = IngestResult()
        grouping = _Grouping()
        pending: list[asyncio.Task[IngestResult]] = []
        previous: asyncio.Task[IngestResult] | None = None
        looked: tuple[list[_Row], asyncio.Task[_Found]] | None = None
        try:
            # chunk k+1 is prepared and its buckets are read while chunk k is decided and written; the
            # decisions stay in order and remember the stories earlier chunks started (``grouping``)
            for start in range(0, len(items) + CHUNK, CHUNK):
                ahead = None
                if start < len(items):
                    rows = self._rows(items[start : start + CHUNK])
                    ahead = (rows, asyncio.create_task(self._lookup(rows)))
                if looked is not None:
                    done_rows, lookup = looked
                    self._decide(done_rows, *(await lookup), grouping)
                    previous = asyncio.create_task(self._write(done_rows, absolute, previous))
                    pending.append(previous)
                    await asyncio.sleep(0)  # let the call go out while the next chunk is prepared
                    while len(pending) >= IN_FLIGHT:
                        result.add(await pending.pop(0))
                looked = ahead
            for task in pending:
                result.add(await task)
        finally:
            for task in pending:
                task.cancel()
            if looked is not None:
                looked[1].cancel()
        metrics.ingested(result)
        return result

    def _rows(self, chunk: Sequence[FeedItem]) -> list[_Row]:
        """Each item's script arguments and LSH band keys."""
        now = time.time()
        toks = [tokens(item.text) for item in chunk]
        words = [content(t) if len(t) >= MIN_TOKENS else [] for t in toks]
        eligible = [i for i, w in enumerate(words) if len(w) >= 2]
        bands: list[bytes] = [b""] * len(chunk)
        if eligible:
            keys = self.hasher.band_keys(self.hasher.signatures([words[i] for i in eligible]))
            for i, k in zip(eligible, keys, strict=True):
                bands[i] = k
        tau, width = self.settings.tau_s, self.settings.dedupe_window_s
        rows = []
        for item, band in zip(chunk, bands, strict=True):
            if not item.created_at:
                item.created_at = now
            created, ck, channel, source = prefix_fields(item)
            counts = (str(item.reactions), str(item.replies), str(item.reposts), str(item.views))
            weight = engagement(item.reactions, item.replies, item.reposts, item.views)
            head = [
                item.id,
                created,
                ck,
                safe(item.platform),
                source or f"{ck}:{channel}",
                repr(weight),
                safe(item.author_key),
                repr(float(created) / tau),
                "",  # story hint
                "w",  # mode
            ]
            pre = SEP.join((created, ck, channel, source, *counts)) + SEP
            split = [band[i : i + BAND] for i in range(0, len(band), BAND)]
            rows.append(
                _Row(item, head, pre.encode(), item.body().encode(), split, int(float(created) // width))
            )
        return rows

    async def _lookup(self, rows: list[_Row]) -> _Found:
        """The stories in the rows' LSH buckets (this window's and the previous one's) and their texts."""
        wanted: dict[int, dict[int, bytearray]] = defaultdict(dict)  # partition -> window -> band keys
        for row in rows:
            for b in row.bands:
                windows = wanted[b[0] % fk.PARTITIONS]
                for w in (row.window, row.window - 1):
                    buf = windows.get(w)
                    if buf is None:
                        buf = windows[w] = bytearray()
                    buf += b
        if not wanted:
            return {}, {}
        asked = list(wanted.items())
        replies = await run_many(
            self.redis,
            self._lsh_get,
            [
                ([fk.prefix(q)], [x for w, buf in windows.items() for x in (w, bytes(buf))])
                for q, windows in asked
            ],
        )
        found: dict[int, dict[bytes, str]] = defaultdict(dict)  # window -> band key -> story id
        for (_, windows), raw in zip(asked, replies, strict=True):
            for (w, buf), sids in zip(windows.items(), as_str(raw).split("\x1d"), strict=True):
                into = found[w]
                for i, sid in enumerate(sids.split(SEP)):
                    if sid:
                        into[bytes(buf[i * BAND : i * BAND + BAND])] = sid
        texts = await self._lead_texts({sid for d in found.values() for sid in d.values()})
        return found, texts

    def _decide(
        self,
        rows: list[_Row],
        found: dict[int, dict[bytes, str]],
        texts: dict[str, Shingled],
        grouping: _Grouping,
    ) -> None:
        """Each item's story, if it joins one: a candidate from the buckets or from an earlier chunk of this
        ingest that passes the exact check. Sets the rows' hints."""
        started = grouping.started
        for row in rows:
            if not row.bands:
                continue
            candidates: dict[str, Shingled] = {}
            for w in (row.window, row.window - 1):
                stored, earlier = found.get(w), started.get(w)
                for b in row.bands:
                    if stored and (hit := stored.get(b)) is not None and hit in texts:
                        candidates.setdefault(hit, texts[hit])
                    if earlier and (it := earlier.get(b)) is not None and it.id != row.item.id:
                        candidates.setdefault(it.id, grouping.shingled(it))
            hint = self._best_match(grouping.shingled(row.item), candidates) if candidates else ""
            row.head[8] = hint
            if not hint:  # it starts a story (unless stored already): later items may join it
                mine = started.setdefault(row.window, {})
                for b in row.bands:
                    mine[b] = row.item

    async def _lead_texts(self, story_ids: set[str]) -> dict[str, Shingled]:
        """The text of each candidate story (its lead item's, or a member's), read in its home partition."""
        by_part: dict[int, list[str]] = defaultdict(list)
        for sid in sorted(story_ids):
            by_part[fk.part_of(sid)].append(sid)
        replies = await run_many(
            self.redis, self._leads, [([fk.prefix(p)], sids) for p, sids in by_part.items()]
        )
        out: dict[str, Shingled] = {}
        for sids, raw in zip(by_part.values(), replies, strict=True):
            data = raw.encode() if isinstance(raw, str) else (raw or b"")
            for sid, value in zip(sids, data.split(b"\x1d"), strict=True):
                if value and not value.startswith(fk.STUB.encode()):
                    out[sid] = shingle(decode(sid, value).text)
        return out

    @staticmethod
    def _best_match(mine: Shingled, candidates: dict[str, Shingled]) -> str:
        """The candidate story most similar to the item among those that pass the exact check."""
        best, best_score = "", 0.0
        for sid, other in candidates.items():
            if near_duplicates(mine, other):
                score = max(similarity(mine, other))
                if score > best_score:
                    best, best_score = sid, score
        return best

    async def _write(
        self, rows: list[_Row], absolute: bool, previous: asyncio.Task[IngestResult] | None
    ) -> IngestResult:
        """Store a chunk: one script call per partition it touches, then its LSH buckets and stubs. A row
        the scripts send elsewhere (its story is gone, or the item is a stub there) is sent once more."""
        if previous is not None:
            await asyncio.wait([previous])  # in order: this chunk's hints may name the previous one's stories
        result = IngestResult()
        common = [self._ttl, self.settings.tau_s, 1 if absolute else 0]
        width = self.settings.dedupe_window_s
        lsh: dict[int, dict[int, tuple[bytearray, list[str]]]] = defaultdict(
            dict
        )  # partition -> window -> ...
        stubs: list[_Row] = []
        todo = rows
        for attempt in range(2):
            retry: list[_Row] = []
            for row, status in await self._run(todo, common):
                item = row.item
                if status == "n":
                    result.new += 1
                    result.stories[item.id] = item.id
                    for b in row.bands:
                        bands, sids = lsh[b[0] % fk.PARTITIONS].setdefault(row.window, (bytearray(), []))
                        bands += b
                        sids.append(item.id)
                elif status == "j":
                    result.joined += 1
                    result.stories[item.id] = row.head[8]
                    if row.head[9] == "f":
                        stubs.append(row)
                elif status == "o":
                    result.dropped += 1
                elif status in ("r", "u") or attempt == 1:
                    result.updated += status != "r"  # 'r' twice: the story vanished twice, the item is lost
                else:  # '@<story id>': the item joined that story earlier; it lives there
                    row.head[8] = status[1:]
                    retry.append(row)
                if status == "r" and attempt == 0:
                    row.head[8] = ""
                    retry.append(row)
            if not retry:
                break
            todo = retry
        writes = [
            self._lsh_set(
                keys=[fk.prefix(q)],
                args=[
                    *(x for w, (bands, sids) in windows.items() for x in (w, bytes(bands), SEP.join(sids))),
                    width,
                    LSH_SLACK_S,
                ],
            )
            for q, windows in lsh.items()
        ]
        if stubs:
            writes.append(self._stubs(stubs))
        await asyncio.gather(*writes)
        return result

    async def _stubs(self, rows: list[_Row]) -> None:
        """Where a joined item's id leads (its community's partition): the story it lives with."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.set(fk.item(row.item.id), fk.STUB + row.head[8], ex=self._ttl)
            await pipe.execute()

    async def _run(self, rows: list[_Row], common: list[Any]) -> list[tuple[_Row, str]]:
        """One INGEST call per partition (at once): a row goes to its hint's home, else to its own."""
        groups: dict[int, list[_Row]] = defaultdict(list)
        foreign: set[tuple[str, int]] = set()
        for row in rows:
            own = fk.part_of(row.item.id)
            hint = row.head[8]
            part = fk.part_of(hint) if hint else own
            row.head[9] = "w" if part == own else "f"
            if part != own:
                foreign.add((row.head[2], part))
            groups[part].append(row)
        if foreign:  # before the write: a community's page must look where its items are going
            async with self.redis.pipeline(transaction=False) as pipe:
                for ck, part in sorted(foreign):
                    pipe.sadd(fk.foreign(ck), part)
                await pipe.execute()

        calls = []
        for part, group in groups.items():
            args = list(common)
            for row in group:
                args += [SEP.join(row.head).encode(), row.pre, row.body]
            calls.append(([fk.prefix(part)], args))
        done = await run_many(self.redis, self._ingest, calls)
        return [
            (row, as_str(status))
            for group, out in zip(groups.values(), done, strict=True)
            for row, status in zip(group, out, strict=True)
        ]

    # -- changes at the source ------------------------------------------------------------------------
    async def _at_item(self, script: Any, item_id_: str, args: list[Any]) -> Any:
        """Run a script taking an item id where the id leads, and again in its story's home for a stub."""
        out = await script(keys=[fk.prefix(fk.part_of(item_id_))], args=args)
        if isinstance(out, bytes | str) and as_str(out).startswith(fk.STUB):
            out = await script(keys=[fk.prefix(fk.part_of(as_str(out)[1:]))], args=args)
        return out

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
        args = [self.settings.tau_s, item_id_, "a" if absolute else "d", reactions, replies, reposts, views]
        return await self._at_item(self._engage, item_id_, args) == 1

    async def edit(self, item_id_: str, text: str, media: tuple[tuple[str, str], ...] | None = None) -> bool:
        """Replace an item's text (edited at the source); digests not yet sent are rebuilt."""
        item = await self.get(item_id_)
        if item is None:
            return False
        item.text = text
        if media is not None:
            item.media = media
        return await self._at_item(self._edit, item_id_, [item_id_, item.body()]) == 1

    async def delete(self, *item_ids: str) -> int:
        """Remove items deleted at the source from the feed, their stories and unsent digests."""
        removed = 0
        todo = list(item_ids)
        while todo:
            by_part: dict[int, list[str]] = defaultdict(list)
            for i in todo:
                by_part[fk.part_of(i)].append(i)
            todo = []
            replies = await asyncio.gather(
                *(
                    self._delete(keys=[fk.prefix(p)], args=[self.settings.tau_s, *ids])
                    for p, ids in by_part.items()
                )
            )
            by_home: dict[int, list[str]] = defaultdict(list)
            for reply in replies:
                removed += int(reply[0])
                for follow in reply[1:]:  # stubs: the item lives in its story's home
                    sid, _, iid = as_str(follow)[1:].partition(SEP)
                    by_home[fk.part_of(sid)].append(iid)
            for p, ids in by_home.items():
                reply = await self._delete(keys=[fk.prefix(p)], args=[self.settings.tau_s, *ids])
                removed += int(reply[0])
        return removed

    async def get(self, item_id_: str) -> FeedItem | None:
        raw = await self.redis.get(fk.item(item_id_))
        if raw is not None and as_str(raw).startswith(fk.STUB):
            raw = await self.redis.get(fk.item_in(fk.part_of(as_str(raw)[1:]), item_id_))
        return decode(item_id_, raw) if raw is not None else None

    # -- opt-out --------------------------------------------------------------------------------------
    async def optout(self, platform: str, author_id: str) -> int:
        """Record the opt-out in every partition (new items are dropped from now on) and purge the
        author's items, which are stored where their stories are."""
        author = f"{platform}:{author_id}"
        removed = 0
        for part in range(fk.PARTITIONS):
            while True:
                n, left = await self._purge(
                    keys=[fk.prefix(part), fk.author(part, platform, author_id)],
                    args=[self.settings.tau_s, author, PURGE_BATCH],
                )
                removed += int(n)
                if int(left) == 0:
                    break
        return removed

    async def optin(self, platform: str, author_id: str) -> bool:
        async with self.redis.pipeline(transaction=False) as pipe:
            for part in range(fk.PARTITIONS):
                pipe.srem(fk.optout(part), f"{platform}:{author_id}")
            return any(await pipe.execute())

    async def opted_out(self, platform: str, author_id: str) -> bool:
        return bool(await self.redis.sismember(fk.optout(0), f"{platform}:{author_id}"))


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
