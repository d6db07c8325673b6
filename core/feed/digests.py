"""Digests: the top stories of a window for a scope, summarised, with an intro and links, delivered once.

A digest is built once per (scope, window, feed generation) and shared by every subscriber of that scope
and window; the generation changes when an item is edited, deleted or purged, so subscribers not yet sent
get a rebuilt digest without the removed item. Summaries are cached per story and intros per set of
summaries (``summaries.py``), so model calls grow with distinct stories, never with subscribers.

Scheduled delivery runs one job per schedule slot. For each subscriber the window is claimed with
``SET NX`` (``p`` = pending) before its Actions are enqueued and marked ``s`` after, so racing workers
never send a window twice; a run that died between the two re-enqueues the pending ones with the same
Action ids, which the sender delivers once. A window missed while everything was down is sent once, when
the job next runs: the job always serves the latest due window and then moves to the next future one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from core.bus import DumpedAction
from core.contract import Action, Capabilities, DirectMessage, Post, Reply
from core.feed import keys as fk
from core.feed.items import Story, platform_label
from core.feed.settings import FeedSettings
from core.feed.subscriptions import Schedule, Subscription, SubscriptionStore
from core.feed.summaries import Summaries
from core.feed.timelines import Ranking, Scope, Timelines
from core.platform import measure_for
from core.scheduler import Job, Scheduler
from core.services import Services
from core.text import split_text

log = logging.getLogger(__name__)

JOB_KIND = "feed-digest"
BATCH = 1000
INTRO_CHARS = 280
MAX_SOURCES = 4
CACHE_SIZE = 512
BUILDS_AT_ONCE = 8
KNOWN_LIMITS = {
    "x": Capabilities(max_text=280, weighted_length=True, threads=True),
    "telegram": Capabilities(max_text=4096),
    "discord": Capabilities(max_text=2000),
    "console": Capabilities(max_text=4000),
}
CONSERVATIVE = Capabilities(max_text=1000)


# KEYS[1] fk.SENT. ARGV: ttl, window end, subscription ids joined by US. The markers are fk.sent (built here: one
# argument instead of a key per subscriber). Returns one character per subscriber: 1 = this run sends it
# (claimed now, or left pending by a run that died), 0 = sent already or being sent.
CLAIM = """
local out, i = {}, 1
for id in string.gmatch(ARGV[3], '[^\\31]+') do
  local key = KEYS[1] .. id .. ':' .. ARGV[2]  -- fk.sent
  if redis.call('SET', key, 'p', 'NX', 'EX', ARGV[1]) or redis.call('GET', key) == 'p' then
    out[i] = '1'
  else
    out[i] = '0'
  end
  i = i + 1
end
return table.concat(out)
"""
MARK = """
local n = 0
for id in string.gmatch(ARGV[3], '[^\\31]+') do
  redis.call('SET', KEYS[1] .. id .. ':' .. ARGV[2], 's', 'EX', ARGV[1])  -- fk.sent
  n = n + 1
end
return n
"""

T = TypeVar("T")


def _memo(
    cache: OrderedDict[tuple[str, float, float, int], asyncio.Task[T]],
    key: tuple[str, float, float, int],
    make: Callable[[], Coroutine[Any, Any, T]],
) -> asyncio.Future[T]:
    """A task per key, shared by everyone who asks while it runs and after (failed ones are retried)."""
    task = cache.get(key)
    if task is None or (task.done() and task.exception() is not None):
        task = asyncio.ensure_future(make())
        cache[key] = task
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return asyncio.shield(task)


def period_name(start: float, end: float) -> str:
    length = end - start
    if length <= 2 * 3600:
        return "hourly"
    if length <= 2 * 86400:
        return "daily"
    return "weekly"


def slot_job_id(slot: str) -> str:
    return f"{JOB_KIND}:{slot}"


@dataclass(slots=True)
class Digest:
    scope: Scope
    start: float
    end: float
    stories: list[Story]
    summaries: list[str]
    intro: str
    _packed: dict[Capabilities, list[str]] = field(default_factory=dict, repr=False)
    _shared: dict[tuple[Capabilities, bool], list[str]] = field(default_factory=dict, repr=False)

    def chunks(self, caps: Capabilities) -> list[str]:
        """The digest split for a platform, computed once per platform (X's weighted length is slow)."""
        packed = self._packed.get(caps)
        if packed is None:
            packed = self._packed[caps] = pack(self.sections(), caps)
        return packed

    @property
    def empty(self) -> bool:
        return not self.stories

    def sections(self) -> list[str]:
        """The header with the intro, then one block per story (split points when messages are short)."""
        count = len(self.stories)
        head = (
            f"📰 {period_name(self.start, self.end).title()} digest — {self.scope.label} — "
            f"{count} {'story' if count == 1 else 'stories'}"
        )
        if self.intro:
            head += f"\n{self.intro}"
        blocks = [head]
        for number, (story, summary) in enumerate(zip(self.stories, self.summaries, strict=True), 1):
            blocks.append(f"{number}. {summary}\n   {_sources(story)}")
        return blocks

    @property
    def text(self) -> str:
        return "\n\n".join(self.sections())


def _sources(story: Story) -> str:
    labels: dict[str, int] = {}  # same label twice (no permalink, same author and channel): counted once
    for item in sorted(story.items, key=lambda i: (i.created_at, i.id)):
        by = f" by {item.author_name}" if item.author_name else ""
        label = f"{platform_label(item.platform)}{by}: {item.link or '#' + item.channel}"
        labels[label] = labels.get(label, 0) + 1
    shown = [label + (f" (×{n})" if n > 1 else "") for label, n in list(labels.items())[:MAX_SOURCES]]
    more = len(labels) - len(shown)
    line = "via " + " · ".join(shown) + (f" · and {more} more" if more > 0 else "")
    e = story.engagement
    stats = [f"{v} {k}" for k, v in e.items() if v and k != "views"]
    return line + (f" ({', '.join(stats)})" if stats else "")


_DOMAINISH = re.compile(r"\S*\w\.[A-Za-z]{2,}\S*")


def _chars(text: str) -> int:
    return len(text) if text.isascii() else sum(1 if ord(c) <= 0x10FF else 2 for c in text)


def x_length_bound(text: str) -> int:
    """An upper bound of X's weighted length, a hundred times cheaper than parsing it: code points up to
    U+10FF count 1 and others 2 (X counts some of those 1, and an emoji sequence 2 in all), and anything
    that looks like a link counts at least 23 (X counts every link exactly 23)."""
    total, last = 0, 0
    for m in _DOMAINISH.finditer(text):
        total += _chars(text[last : m.start()]) + max(23, _chars(m.group()))
        last = m.end()
    return total + _chars(text[last:])


def pack(sections: Sequence[str], caps: Capabilities) -> list[str]:
    """Join sections into as few messages as the platform's limit allows, splitting only oversized ones.
    On X it measures with ``x_length_bound``: every message fits X's own count without computing it."""
    measure = x_length_bound if caps.weighted_length else measure_for(caps)
    limit = caps.max_text
    chunks: list[str] = []
    current = ""
    for section in sections:
        pieces = [section] if measure(section) <= limit else split_text(section, limit, measure)
        for piece in pieces:
            candidate = f"{current}\n\n{piece}" if current else piece
            if measure(candidate) <= limit:
                current = candidate
            else:
                chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


class Digests:
    """Builds digests and delivers scheduled ones."""

    def __init__(
        self,
        services: Services,
        timelines: Timelines,
        summaries: Summaries,
        subscriptions: SubscriptionStore,
        settings: FeedSettings,
    ) -> None:
        self.services = services
        self.redis = services.redis
        self.timelines = timelines
        self.summaries = summaries
        self.subscriptions = subscriptions
        self.settings = settings
        self._cache: OrderedDict[tuple[str, float, float, int], asyncio.Task[Digest]] = OrderedDict()
        self._rankings: OrderedDict[tuple[str, float, float, int], asyncio.Task[Ranking]] = OrderedDict()
        self._prototypes: dict[bool, dict[str, Any]] = {}  # DM or not -> an Action as JSON-ready fields
        self._claim = self.redis.register_script(CLAIM)
        self._mark = self.redis.register_script(MARK)
        self._building = asyncio.Semaphore(BUILDS_AT_ONCE)  # bounded: a digest round must not exhaust
        self._ranking = asyncio.Semaphore(BUILDS_AT_ONCE)  # the connection pool or flood the model
        self.sent = 0  # digests enqueued by this process (for stats and the benchmark)

    # -- building ---------------------------------------------------------------------------------------
    async def build(self, scope: Scope, start: float, end: float, ranked: Ranking | None = None) -> Digest:
        async with self._building:
            stories = await self.timelines.top(scope, start, end, self.settings.digest_stories, ranked)
            chars = self.settings.summary_chars
            summaries = list(await asyncio.gather(*(self.summaries.story(s, chars) for s in stories)))
            label = f"{period_name(start, end)} digest of {scope.label}"
            intro = await self.summaries.intro(label, summaries, INTRO_CHARS) if stories else ""
        return Digest(scope, start, end, stories, summaries, intro)

    async def shared(self, scope: Scope, start: float, end: float, gen: int) -> Digest:
        """One build per (scope, window, generation) in this process, however many subscribers ask;
        scopes that differ only by topics share one ranking of the window."""
        key = (scope.key, start, end, gen)
        return await _memo(self._cache, key, lambda: self._build_ranked(scope, start, end, gen))

    async def _build_ranked(self, scope: Scope, start: float, end: float, gen: int) -> Digest:
        base = Scope(scope.kind, scope.value)
        key = (base.key, start, end, gen)
        ranking = await _memo(self._rankings, key, lambda: self._rank(base, start, end))
        return await self.build(scope, start, end, ranking)

    async def _rank(self, scope: Scope, start: float, end: float) -> Ranking:
        async with self._ranking:
            return await self.timelines.ranked_window(scope, start, end)

    async def generation(self) -> int:
        raw = await self.redis.get(fk.GEN)
        return int(raw) if raw else 0

    # -- delivery ---------------------------------------------------------------------------------------
    def capabilities(self, platform: str) -> Capabilities:
        caps = self.services.platforms.get(platform)
        return caps if isinstance(caps, Capabilities) else KNOWN_LIMITS.get(platform, CONSERVATIVE)

    async def shared_texts(self, digest: Digest, caps: Capabilities, thread: bool, ttl_s: int) -> list[str]:
        """The digest's messages for one kind of platform, stored once for every subscriber who gets them
        (``Action.shared``): one id per message, or one for the whole thread."""
        key = (caps, thread)
        ids = digest._shared.get(key)
        if ids is None:
            chunks = digest.chunks(caps)
            bus = self.services.bus
            if thread:
                ids = [await bus.put_shared({"text": chunks[0], "parts": list(chunks)}, ttl_s)]
            else:
                ids = [await bus.put_shared({"text": text}, ttl_s) for text in chunks]
            digest._shared[key] = ids
        return ids

    def dumped_actions_for(self, sub: Subscription, shared: Sequence[str], *, tag: str) -> list[DumpedAction]:
        """The subscriber's messages (their text is ``shared``), ids derived from (subscriber, window),
        serialised as the bus stores them: one validated prototype per kind of message copied with the
        subscriber's fields (a round writes a hundred thousand of these; models would take seconds)."""
        proto = self._prototypes.get(sub.dm)
        if proto is None:
            model = DirectMessage if sub.dm else Post
            extra = {"user": "u"} if sub.dm else {}
            example = model(id="-", platform="-", community="-", channel="-", text="", shared="-", **extra)
            self._prototypes[sub.dm] = proto = example.model_dump(mode="json")
        base = f"digest-{sub.id}-{tag}"
        fields: dict[str, Any] = {
            "platform": sub.platform,
            "community": sub.community,
            "channel": sub.channel,
            "thread": sub.thread,
            "ref": f"digest:{sub.id}:{tag}",
        }
        if sub.dm:
            fields["user"] = sub.user
        return [
            DumpedAction(
                sub.platform,
                sub.community_key,
                orjson.dumps({**proto, **fields, "id": f"{base}-{i}", "shared": blob}),
            )
            for i, blob in enumerate(shared)
        ]

    @staticmethod
    def as_thread(sub: Subscription, digest: Digest, caps: Capabilities) -> bool:
        """Posted as one thread where the platform chains messages (a DM is separate messages)."""
        return not sub.dm and caps.threads and len(digest.chunks(caps)) > 1

    @staticmethod
    def replies_for(event_reply: Reply, digest: Digest, caps: Capabilities) -> list[Action]:
        chunks = digest.chunks(caps)
        return [
            event_reply.model_copy(update={"text": text, "id": f"{event_reply.id}-{i}"})
            for i, text in enumerate(chunks)
        ]

    async def run_slot(self, job: Job, due_at: float, now: float) -> float | None:
        """Scheduler handler: send the latest due window of one slot to its subscribers."""
        schedule = Schedule.from_slot(str(job.data["slot"]))
        end = schedule.latest(now)
        start = schedule.previous(end)
        seen: set[str] = set()
        async for ids in self.subscriptions.slot_members(schedule.slot, BATCH):
            fresh = [i for i in ids if i not in seen]
            seen.update(fresh)
            if fresh:
                await self.deliver(fresh, start, end)
        return schedule.next_after(now)

    async def deliver(self, sub_ids: Sequence[str], start: float, end: float) -> int:
        """Claim the window for each subscriber, enqueue their digests, mark them sent. Returns how many
        digests were enqueued."""
        subs = await self.subscriptions.load(sub_ids)
        if not subs:
            return 0
        ttl = int(end - start) * 2 + 86400
        window = f"{end:.0f}"
        # SET NX of every marker (fk.sent) in one script call; a marker still "p" is a run that died after
        # claiming: its subscribers are sent again with the same Action ids, which the sender delivers once
        states = await self._claim(keys=[fk.SENT], args=[ttl, window, "\x1f".join(s.id for s in subs)])
        flags = states.decode() if isinstance(states, bytes) else str(states)
        todo = [s for s, flag in zip(subs, flags, strict=True) if flag == "1"]
        if not todo:
            return 0
        gen = await self.generation()
        sub_scopes = [sub.feed_scope for sub in todo]
        scopes = {scope.key: scope for scope in sub_scopes}
        # each scope's digest is built once, and all of them at the same time
        built = await asyncio.gather(*(self.shared(scope, start, end, gen) for scope in scopes.values()))
        digests = dict(zip(scopes, built, strict=True))
        actions: list[DumpedAction] = []
        enqueued = 0
        for sub, scope in zip(todo, sub_scopes, strict=True):
            digest = digests[scope.key]
            if digest.empty:
                continue
            caps = self.capabilities(sub.platform)
            shared = await self.shared_texts(digest, caps, self.as_thread(sub, digest, caps), ttl)
            actions.extend(self.dumped_actions_for(sub, shared, tag=window))
            enqueued += 1
        if actions:
            await self.services.bus.enqueue_dumped(actions)
        await self._mark(keys=[fk.SENT], args=[ttl, window, "\x1f".join(sub.id for sub in todo)])
        self.sent += enqueued
        return enqueued

    async def ensure_job(self, schedule: Schedule, now: float | None = None) -> float:
        """Make sure the slot's job is scheduled; returns when the next digest of this slot is due."""
        scheduler: Scheduler = self.services.extras["scheduler"]
        job_id = slot_job_id(schedule.slot)
        current = await scheduler.next_run(job_id)
        if current is not None:
            return current
        next_at = schedule.next_after(time.time() if now is None else now)
        await scheduler.schedule(Job(job_id, JOB_KIND, {"slot": schedule.slot}), next_at)
        return next_at
