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
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from core.bus import DumpedAction
from core.catalog import PlatformCatalog
from core.contract import Action, Capabilities, DirectMessage, OfferChoices, Post, Reply
from core.decode import as_str
from core.feed import keys as fk
from core.feed.feedback import feedback_choices, offers_feedback
from core.feed.items import Story
from core.feed.preferences import Preferences, PreferenceStore, Profile, choose
from core.feed.reasons import ReasonOrder, explain
from core.feed.settings import FeedSettings
from core.feed.subscriptions import Schedule, Subscription, SubscriptionStore, by_partition
from core.feed.summaries import Summaries
from core.feed.timelines import Ranking, Scope, Timelines
from core.feed.trending import Trending
from core.platform import measure_for
from core.scheduler import Job
from core.services import Services
from core.text import split_text
from core.web.reading import VisibleTimelines
from core.web.visibility import public_communities

log = logging.getLogger(__name__)

JOB_KIND = "feed-digest"
BATCH = 1000
DELIVER_BATCH = 5000  # subscribers delivered together (their digests built at the same time)
INTRO_CHARS = 280
MAX_SOURCES = 4
CACHE_SIZE = 512
BUILDS_AT_ONCE = 8
EXTRA_CANDIDATES = 3
TRENDING_AGE_S = 60.0  # a round's digests share a scope's trending terms (one read, not one per digest)
STORES_AT_ONCE = 32  # concurrent stores of new variants' messages (well under the connection pool)
"""A shared digest also ranks this many stories beyond its own, summarised only when someone's preferences
pick one: mutes and "less like this" still leave a full digest, with no digest built per person."""


# KEYS[1] fk.sent_prefix of the subscriptions' partition. ARGV: ttl, window end, subscription ids joined by US. The markers are fk.sent (built here: one
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
    platforms: PlatformCatalog
    reasons: list[str] = field(default_factory=list)  # "why it is here", one per story
    candidates: list[Story] = field(default_factory=list)  # the stories plus the extra ones people may get
    trending: tuple[str, ...] = ()  # the scope's fastest-rising terms
    _packed: dict[Capabilities, list[str]] = field(default_factory=dict, repr=False)
    _shared: dict[tuple[Capabilities, bool, bool], list[str]] = field(default_factory=dict, repr=False)
    _profiles: list[Profile] | None = field(default=None, repr=False)
    _extra: dict[int, asyncio.Future[str]] = field(default_factory=dict, repr=False)  # position -> summary
    _variants: dict[Preferences, Digest] = field(default_factory=dict, repr=False)
    _selections: dict[tuple[object, ...], asyncio.Future[Digest]] = field(default_factory=dict, repr=False)

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
            f"📰 {period_name(self.start, self.end).title()} digest — {self.scope.label(self.platforms)} — "
            f"{count} {'story' if count == 1 else 'stories'}"
        )
        if self.intro:
            head += f"\n{self.intro}"
        if self.trending:
            head += f"\nTrending: {' · '.join(self.trending)}"
        blocks = [head]
        for number, (story, summary) in enumerate(zip(self.stories, self.summaries, strict=True), 1):
            block = f"{number}. {summary}\n   {_sources(story, self.platforms)}"
            if number <= len(self.reasons):
                block += f"\n   why: {self.reasons[number - 1]}"
            blocks.append(block)
        return blocks

    def profiles(self) -> list[Profile]:
        """The candidates as preference matching reads them, computed once per digest."""
        if self._profiles is None:
            self._profiles = [Profile.of(s) for s in self.candidates or self.stories]
        return self._profiles

    @property
    def text(self) -> str:
        return "\n\n".join(self.sections())


def _sources(story: Story, platforms: PlatformCatalog) -> str:
    labels: dict[str, int] = {}  # same label twice (no permalink, same author and channel): counted once
    for item in sorted(story.items, key=lambda i: (i.created_at, i.id)):
        by = f" by {item.author_name}" if item.author_name else ""
        label = f"{platforms.label(item.platform)}{by}: {item.link(platforms) or '#' + item.channel}"
        labels[label] = labels.get(label, 0) + 1
    shown = [label + (f" (×{n})" if n > 1 else "") for label, n in list(labels.items())[:MAX_SOURCES]]
    more = len(labels) - len(shown)
    line = "via " + " · ".join(shown) + (f" · and {more} more" if more > 0 else "")
    e = story.engagement
    stats = [f"{v} {k}" for k, v in e.items() if v and k != "views"]
    return line + (f" ({', '.join(stats)})" if stats else "")


_DOMAINISH = re.compile(r"\S*\w\.[A-Za-z]{2,}\S*")


_WIDE = re.compile("[^\x00-\u10ff]")


def _chars(text: str) -> int:
    """Code points up to U+10FF count 1, others 2 (counted by the regex engine: 20× a Python loop)."""
    return len(text) if text.isascii() else len(text) + len(_WIDE.findall(text))


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
    current: list[str] = []
    size = 0  # the measure of "\n\n".join(current): every measure here adds up over whitespace joins,
    # so each piece is measured once instead of the growing message again (X's bound: no link spans a space)
    for section in sections:
        length = measure(section)
        pieces = [section] if length <= limit else split_text(section, limit, measure)
        for piece in pieces:
            piece_size = length if len(pieces) == 1 else measure(piece)
            joined = size + 2 + piece_size if current else piece_size
            if joined <= limit:
                current.append(piece)
                size = joined
            else:
                chunks.append("\n\n".join(current))
                current, size = [piece], piece_size
    if current:
        chunks.append("\n\n".join(current))
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
        preferences: PreferenceStore | None = None,
    ) -> None:
        self.services = services
        self.preferences = preferences or PreferenceStore(services.redis)
        self.trending = Trending(services.redis)
        self.redis = services.redis
        self.timelines = timelines
        self.summaries = summaries
        self.subscriptions = subscriptions
        self.settings = settings
        self._cache: OrderedDict[tuple[str, float, float, int], asyncio.Task[Digest]] = OrderedDict()
        self._rankings: OrderedDict[tuple[str, float, float, int], asyncio.Task[Ranking]] = OrderedDict()
        self._prototypes: dict[bool, dict[str, Any]] = {}  # DM or not -> an Action as JSON-ready fields
        self._choice_proto: dict[str, Any] | None = None
        self._views: dict[tuple[str, frozenset[str]], Digests] = {}  # see _as_seen_by
        self._claim = self.redis.register_script(CLAIM)
        self._mark = self.redis.register_script(MARK)
        self._building = asyncio.Semaphore(BUILDS_AT_ONCE)  # bounded: a digest round must not exhaust
        self._ranking = asyncio.Semaphore(BUILDS_AT_ONCE)  # the connection pool or flood the model
        self.sent = 0  # digests enqueued by this process (for stats and the benchmark)

    # -- building ---------------------------------------------------------------------------------------
    async def build(self, scope: Scope, start: float, end: float, ranked: Ranking | None = None) -> Digest:
        size = self.settings.digest_stories
        async with self._building:
            candidates = await self.timelines.top(scope, start, end, size + EXTRA_CANDIDATES, ranked)
        # summaries and the intro outside the bound: they are batched per community (summaries.py), so they
        # wait for the round's other builds (and bound their own model and Redis use) instead of holding them
        stories = candidates[:size]
        chars = self.settings.summary_chars
        summaries = list(await asyncio.gather(*(self.summaries.story(s, chars) for s in stories)))
        named = scope.label(self.services.platforms)
        communities = [s.fullest.community_key for s in stories]  # whose texts the summaries were made from
        intro = await self.summaries.intro(
            period_name(start, end), named, summaries, INTRO_CHARS, communities
        )
        platforms = self.services.platforms
        reasons = [explain(s, "top", tau_s=self.settings.tau_s, now=end).text(platforms) for s in stories]
        where = scope.value if scope.kind == "community" else None
        trending = await self.trending.top(where, now=end, max_age_s=TRENDING_AGE_S)
        digest = Digest(scope, start, end, stories, summaries, intro, platforms, reasons, candidates)
        digest.trending = tuple(trending)
        return digest

    async def personal(self, digest: Digest, prefs: Preferences) -> Digest:
        """The shared digest as one person gets it: its candidates filtered by their mutes and re-ordered
        by their weights, newest first with the ``new`` default order (``hot`` is the digest's own ranked
        order). No model call beyond the shared ones: the extra candidates' summaries are made once per
        digest, and the intro of a changed selection is written without the model. People whose
        preferences pick the same stories in the same order share one variant (and its stored messages)."""
        newest = prefs.order == "new"
        if not (prefs.changes_ranking or newest) or digest.empty:
            return digest
        found = digest._variants.get(prefs)
        if found is not None:
            return found
        size = self.settings.digest_stories
        chosen = choose(prefs, digest.profiles(), "top")[:size]
        if newest:  # the same choice, read chronologically
            chosen.sort(key=lambda c: (-c.story.updated_at, c.position))
        default = [(s.id, len(s.items)) for s in digest.stories]
        if [(c.story.id, len(c.story.items)) for c in chosen] == default and not any(
            c.more or c.less for c in chosen
        ):
            variant = digest
        else:
            selection = tuple(
                (c.story.id, tuple(i.id for i in c.story.items), c.more, c.less, newest) for c in chosen
            )
            building = digest._selections.get(selection)
            if building is None:  # the first person with this selection builds it; the others wait for it
                building = asyncio.ensure_future(self._variant(digest, chosen, prefs))
                digest._selections[selection] = building
            variant = await asyncio.shield(building)
        digest._variants[prefs] = variant
        return variant

    async def _variant(self, digest: Digest, chosen: list[Any], prefs: Preferences) -> Digest:
        size = len(digest.stories)
        positions = [c.position for c in chosen]
        summaries = dict(enumerate(digest.summaries))
        for p in positions:  # an extra candidate is summarised once per digest, when someone first needs it
            if p >= size and p not in digest._extra:
                story = digest.candidates[p]
                digest._extra[p] = asyncio.ensure_future(
                    self.summaries.story(story, self.settings.summary_chars)
                )
        extra = [p for p in positions if p >= size]
        for p, text in zip(
            extra, await asyncio.gather(*(asyncio.shield(digest._extra[p]) for p in extra)), strict=True
        ):
            summaries[p] = text
        platforms = self.services.platforms
        stories = [c.story for c in chosen]
        order: ReasonOrder = "new" if prefs.order == "new" else "top"
        reasons = [
            explain(c.story, order, tau_s=self.settings.tau_s, now=digest.end, more=c.more, less=c.less).text(
                platforms
            )
            for c in chosen
        ]
        more = sorted({t for c in chosen for t in c.more})
        same = {s.id for s in stories} == {s.id for s in digest.stories} and not more
        intro = (
            digest.intro  # the same stories, only newest first: the shared intro still says what they are
            if same and all(len(c.story.items) == len(digest.stories[c.position].items) for c in chosen)
            else f"Picked for you from the top {len(digest.candidates)} stories"
            + (f", with more about {', '.join(more)}" if more else "")
            + (", newest first" if order == "new" else "")
            + " (/feed prefs shows why)."
            if stories
            else ""
        )
        variant = Digest(
            digest.scope,
            digest.start,
            digest.end,
            stories,
            [summaries[p] for p in positions],
            intro,
            platforms,
            reasons,
            stories,
            tuple(t for t in digest.trending if t not in prefs.words),
        )
        return variant

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

    def _as_seen_by(self, view: str | None, public: frozenset[str]) -> Digests:
        """These digests as a reader of ``view`` sees the feed (None: its own community, unrestricted);
        one per view and set of public communities, so its builds stay shared by everyone with that view."""
        if view is None:
            return self
        visible = public if view == PUBLIC_VIEW else public | {view}
        found = self._views.get((view, visible))
        if found is None:
            reader = VisibleTimelines(self.timelines, visible)
            found = Digests(
                self.services, reader, self.summaries, self.subscriptions, self.settings, self.preferences
            )
            # one bound for every view (thirty views with their own would exhaust the connection pool),
            # and one trending cache
            found._building, found._ranking, found.trending = self._building, self._ranking, self.trending
            self._views[(view, visible)] = found
        return found

    async def generation(self) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:  # one counter per feed partition
            for part in range(fk.PARTITIONS):
                pipe.get(fk.gen(part))
            return sum(int(raw) for raw in await pipe.execute() if raw)

    # -- delivery ---------------------------------------------------------------------------------------
    def capabilities(self, platform: str) -> Capabilities:
        return self.services.platforms.capabilities(platform)

    async def shared_texts(
        self, digest: Digest, caps: Capabilities, thread: bool, ttl_s: int, feedback: bool = False
    ) -> list[str]:
        """The digest's messages for one kind of platform, stored once for every subscriber who gets them
        (``Action.shared``): one id per message, or one for the whole thread. With ``feedback`` the last
        message carries the "more/less like this" choices."""
        key = (caps, thread, feedback)
        ids = digest._shared.get(key)
        if ids is None:
            bus = self.services.bus
            ids = [
                await bus.put_shared(fields, ttl_s)
                for fields in self.messages(digest, caps, thread, feedback)
            ]
            digest._shared[key] = ids
        return ids

    @staticmethod
    def messages(digest: Digest, caps: Capabilities, thread: bool, feedback: bool) -> list[dict[str, Any]]:
        """The fields of the digest's messages for one kind of platform (stored once as ``Action.shared``
        blobs, or carried by a personal variant's one reader's Actions)."""
        chunks = digest.chunks(caps)
        if thread:
            return [{"text": chunks[0], "parts": list(chunks)}]
        out: list[dict[str, Any]] = [{"text": text} for text in chunks]
        if feedback:
            out[-1]["choices"] = [c.model_dump(mode="json") for c in feedback_choices(digest.stories)]
        return out

    def wants_feedback(self, sub: Subscription, digest: Digest, caps: Capabilities) -> bool:
        """Channel digests end with "more/less like this" (buttons, or numbered choices in chats);
        direct messages and threads stay plain."""
        return not sub.dm and offers_feedback(caps) and not self.as_thread(sub, digest, caps)

    def dumped_actions_for(
        self, sub: Subscription, shared: Sequence[str | dict[str, Any]], *, tag: str, feedback: bool = False
    ) -> list[DumpedAction]:
        """The subscriber's messages (their text is ``shared``: blob ids, or the fields themselves for a
        personal variant only they get), ids derived from (subscriber, window), serialised as the bus stores
        them: one validated prototype per kind of message copied with the subscriber's fields (a round writes
        a hundred thousand of these; models would take seconds)."""
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
        choices = self._choices_prototype() if feedback else proto
        last = len(shared) - 1
        return [
            DumpedAction(
                sub.platform,
                sub.community_key,
                orjson.dumps(
                    {**(choices if i == last else proto), **fields, "id": f"{base}-{i}", "shared": blob}
                    if isinstance(blob, str)
                    else {
                        **(choices if i == last else proto),
                        **fields,
                        **blob,
                        "id": f"{base}-{i}",
                        "shared": None,
                    }
                ),
            )
            for i, blob in enumerate(shared)
        ]

    def _choices_prototype(self) -> dict[str, Any]:
        proto = self._choice_proto
        if proto is None:
            example = OfferChoices(
                id="-", platform="-", community="-", channel="-", text="", choices=(), shared="-"
            )
            self._choice_proto = proto = example.model_dump(mode="json")
        return proto

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
        pending: list[str] = []
        # delivered in batches of at least DELIVER_BATCH (a partition's members come in chunks of a few
        # hundred): a batch's digests are built together, so their summaries and intros are asked for at
        # once and one model request writes those of the same community (summaries.py)
        async for ids in self.subscriptions.slot_members(schedule.slot, BATCH):
            fresh = [i for i in ids if i not in seen]
            seen.update(fresh)
            pending.extend(fresh)
            if len(pending) >= DELIVER_BATCH:
                await self.deliver(pending, start, end)
                pending = []
        if pending:
            await self.deliver(pending, start, end)
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
        todo = await self._claimed(subs, ttl, window)
        if not todo:
            return 0
        gen = await self.generation()
        sub_scopes = [sub.feed_scope for sub in todo]
        # what each subscriber may read: its own community, and beyond it only public communities
        public = await public_communities(self.redis)
        views = [_view(sub, scope, public) for sub, scope in zip(todo, sub_scopes, strict=True)]
        keyed = {(scope.key, view): (scope, view) for scope, view in zip(sub_scopes, views, strict=True)}
        # each (scope, view) digest is built once, and all of them at the same time
        built = await asyncio.gather(
            *(self._as_seen_by(view, public).shared(scope, start, end, gen) for scope, view in keyed.values())
        )
        digests = dict(zip(keyed, built, strict=True))
        actions: list[DumpedAction] = []
        enqueued = 0
        # each person's preferences (one HMGET per community) choose among the shared digest's candidates
        people = await self.preferences.many([(sub.community_key, sub.user) for sub in todo])
        mine: dict[str, Digest] = {}  # subscription id -> its personal variant, all built concurrently
        if people:
            steered = [
                (sub.id, digests[scope.key, view], prefs)
                for sub, scope, view in zip(todo, sub_scopes, views, strict=True)
                if (prefs := people.get((sub.community_key, sub.user))) is not None
            ]
            built_for = await asyncio.gather(*(self.personal(d, p) for _, d, p in steered))
            mine = {sid: variant for (sid, _, _), variant in zip(steered, built_for, strict=True)}
        plans: list[tuple[Subscription, Digest, Capabilities, bool, bool]] = []
        for sub, scope, view in zip(todo, sub_scopes, views, strict=True):
            digest = mine.get(sub.id) or digests[scope.key, view]
            if digest.empty:
                continue
            caps = self.capabilities(sub.platform)
            thread = self.as_thread(sub, digest, caps)
            plans.append((sub, digest, caps, thread, self.wants_feedback(sub, digest, caps)))
        # a personal variant only one subscriber gets travels inside their Actions (no blob to store and
        # resolve); messages more people share are stored once, a few at a time, not one by one
        common = {id(d) for d in built}
        readers = Counter((id(d), c, t, f) for _, d, c, t, f in plans if (c, t, f) not in d._shared)
        alone = {k for k, n in readers.items() if n == 1 and k[0] not in common}
        missing = {(id(d), c, t, f): (d, c, t, f) for _, d, c, t, f in plans if (id(d), c, t, f) in readers}
        todo_texts = [v for k, v in missing.items() if k not in alone]
        for i in range(0, len(todo_texts), STORES_AT_ONCE):
            await asyncio.gather(
                *(self.shared_texts(d, c, t, ttl, f) for d, c, t, f in todo_texts[i : i + STORES_AT_ONCE])
            )
        for sub, digest, caps, thread, feedback in plans:
            messages: Sequence[str | dict[str, Any]] = (
                self.messages(digest, caps, thread, feedback)
                if (id(digest), caps, thread, feedback) in alone
                else await self.shared_texts(digest, caps, thread, ttl, feedback)
            )
            actions.extend(self.dumped_actions_for(sub, messages, tag=window, feedback=feedback))
            enqueued += 1
        if actions:
            await self.services.bus.enqueue_dumped(actions)
        await asyncio.gather(
            *(
                self._mark(keys=[fk.sent_prefix(part)], args=[ttl, window, "\x1f".join(s.id for s in group)])
                for part, group in by_partition(todo).items()
            )
        )
        self.sent += enqueued
        return enqueued

    async def _claimed(self, subs: Sequence[Subscription], ttl: int, window: str) -> list[Subscription]:
        """The subscribers this run sends to: one CLAIM per partition (markers live with the subscription)."""
        groups = by_partition(subs)
        states = await asyncio.gather(
            *(
                self._claim(keys=[fk.sent_prefix(part)], args=[ttl, window, "\x1f".join(s.id for s in group)])
                for part, group in groups.items()
            )
        )
        claimed = {
            s.id for group, flags in zip(groups.values(), states, strict=True)
            for s, flag in zip(group, as_str(flags), strict=True) if flag == "1"
        }  # fmt: skip
        return [s for s in subs if s.id in claimed]

    async def ensure_job(self, schedule: Schedule, now: float | None = None) -> float:
        """Make sure the slot's job is scheduled; returns when the next digest of this slot is due."""
        scheduler = self.services.scheduler
        job_id = slot_job_id(schedule.slot)
        current = await scheduler.next_run(job_id)
        if current is not None:
            return current
        next_at = schedule.next_after(time.time() if now is None else now)
        await scheduler.schedule(Job(job_id, JOB_KIND, {"slot": schedule.slot}), next_at)
        return next_at


PUBLIC_VIEW = "public"


def _view(sub: Subscription, scope: Scope, public: frozenset[str]) -> str | None:
    """Which view of the feed a subscriber's digest is built from: None for its own community's digest
    (it may read all of it); "public" for a wider scope asked from a public community (public feeds only);
    else its own community's key (public feeds and its own)."""
    if scope.kind == "community" and scope.value == sub.community_key:
        return None
    return PUBLIC_VIEW if sub.community_key in public else sub.community_key
