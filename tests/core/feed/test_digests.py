from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from core import keys
from core.bus import Bus, load_action
from core.contract import Action, Capabilities, DirectMessage, Post
from core.feed import keys as fk
from core.feed.digests import Digests, pack, x_length_bound
from core.feed.service import FeedService
from core.feed.settings import FeedSettings
from core.feed.subscriptions import Schedule, Subscription
from core.feed.timelines import Scope
from core.platform import measure_for
from core.scheduler import Job, Scheduler
from core.sender import Sender
from core.services import Services
from core.text import split_text, x_weighted_length
from core.web.visibility import set_visibility
from tests.core.feed.helpers import CountingSummarizer, item
from tests.support import CATALOG, RecordingPlatform, declare


@pytest.fixture(autouse=True)
def _summarise_every_story(monkeypatch: pytest.MonkeyPatch) -> None:
    """These stories are a sentence each, which a digest shows as written by default; here each is summarised,
    so the model calls a round makes can be counted (tests/core/feed/test_summaries.py covers as-written)."""
    monkeypatch.setenv("CHORUS_FEED_AS_WRITTEN_CHARS", "0")


pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

LAUNCH = "Chorus v2.0 is live! Faster digests, smarter summaries and a brand-new console for everyone."
LAUNCH_X = "🚀 Chorus v2.0 is live: faster digests, smarter summaries and a brand-new console! #launch"
TOPICS = [
    "The community call moved to Thursday at 18:00 UTC so more people in the Americas can join.",
    "New blog post about how the ranking normalises engagement per source and decays with time.",
    "Translation volunteers wanted for Portuguese, Japanese and Turkish bot replies, DM a moderator.",
    "The Lisbon pizza night is on Friday, reply here so we can book enough tables for everyone.",
]


def _ts(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


async def _outbox(redis: aioredis.Redis, platform: str) -> list[Action]:
    """The outbox's Actions as the sender sees them (shared digest texts filled in)."""
    bus = Bus(redis)
    return [await bus.resolve_shared(load_action(a)) for a in await bus.outbox(platform)]


def _sub(n: int, **kw: object) -> Subscription:
    base: dict[str, object] = {
        "id": f"s{n}",
        "platform": "console",
        "community": "c0",
        "channel": "general",
        "user": f"u{n}",
    }
    base.update(kw)
    return Subscription(**base)  # type: ignore[arg-type]


def _feed(services: Services, summarizer: CountingSummarizer | None = None) -> FeedService:
    if summarizer is not None:
        services.summarizer.provide(summarizer)
    return FeedService(services)


async def test_digest_groups_summarises_and_model_calls_do_not_grow_with_subscribers(
    services: Services,
) -> None:
    summarizer = CountingSummarizer()
    feed = _feed(services, summarizer)
    now = time.time()
    await feed.store.ingest([item(LAUNCH, platform="console", community="c0", created_at=now - 900)])
    await feed.store.ingest([item(LAUNCH_X, platform="x", community="c0", created_at=now - 600)])
    await set_visibility(
        services.redis, "x:c0", "public"
    )  # an 'all' digest shows other communities' public items
    await feed.store.ingest(
        [item(t, platform="console", community="c0", created_at=now - 300) for t in TOPICS]
    )
    for n in range(10):
        await feed.subscriptions.save(_sub(n, scope="all"))
    assert await feed.digests.deliver([f"s{n}" for n in range(10)], now - 86400, now) == 10
    calls_for_ten = summarizer.calls
    assert calls_for_ten == 5 + 1  # five stories, one intro
    for n in range(10, 300):
        await feed.subscriptions.save(_sub(n, scope="all"))
    assert await feed.digests.deliver([f"s{n}" for n in range(10, 300)], now - 86400, now) == 290
    other_worker = _feed(services)  # a second process: nothing cached in memory, everything in Redis
    await feed.subscriptions.save(_sub(300, scope="all"))
    assert await other_worker.digests.deliver(["s300"], now - 86400, now) == 1
    assert summarizer.calls == calls_for_ten
    actions = await _outbox(services.redis, "console")
    assert len(actions) == 301 and len({a.id for a in actions}) == 301
    text = actions[0].text  # type: ignore[union-attr]
    lines = text.split("\n")
    assert lines[1].startswith("Summary:")  # the intro
    assert len(re.findall(r"^\d\. Summary: ", text, re.MULTILINE)) == 5  # five summarised stories
    assert "Console by Ada: #news · X by Ada: https://x.com/i/web/status/" in text  # grouped, with links
    assert text.index("Chorus v2.0") < text.index("X by Ada")
    assert {a.text for a in actions} == {text}  # type: ignore[union-attr]
    # the text is stored once and the 301 outbox entries refer to it
    raw = [load_action(a) for a in await services.bus.outbox("console")]
    assert {a.text for a in raw} == {""} and len({a.shared for a in raw}) == 1  # type: ignore[union-attr]
    assert len([k async for k in services.redis.scan_iter(match=keys.blob("*"))]) == 1  # every shard


async def test_without_a_summarizer_summaries_are_extractive(services: Services) -> None:
    services.summarizer.clear()
    feed = FeedService(services)
    now = time.time()
    await feed.store.ingest([item(TOPICS[0] + " More details will follow soon.", created_at=now - 60)])
    digest = await feed.digests.build(Scope(), now - 3600, now)
    assert digest.summaries == [TOPICS[0]]
    assert digest.intro == "1 story from hourly digest of all communities."
    assert feed.summaries.calls == 0


async def test_summarizer_failure_falls_back(services: Services) -> None:
    class Broken(CountingSummarizer):
        async def many(self, texts: Sequence[str], **kw: Any) -> list[str]:
            self.requests += 1
            raise RuntimeError("model down")

    broken = Broken()
    services.summarizer.provide(broken)
    feed = FeedService(services)
    now = time.time()
    await feed.store.ingest([item(TOPICS[1], created_at=now - 60)])
    digest = await feed.digests.build(Scope(), now - 3600, now)
    assert digest.summaries == [TOPICS[1]] and feed.summaries.calls == 2 == broken.requests  # story, intro
    assert digest.intro == "1 story from hourly digest."


async def test_edits_and_deletions_reach_digests_not_yet_sent(services: Services) -> None:
    feed = _feed(services, CountingSummarizer())
    now = time.time()
    keep, drop = item(TOPICS[2], created_at=now - 120), item(TOPICS[3], created_at=now - 60)
    await feed.store.ingest([keep, drop])
    for n in range(2):
        await feed.subscriptions.save(_sub(n, community="-1001", platform="telegram"))
    scope_window = (now - 86400, now)
    assert await feed.digests.deliver(["s0"], *scope_window) == 1
    await feed.store.delete(drop.id)
    await feed.store.edit(keep.id, TOPICS[2].replace("Turkish", "Greek"))
    assert await feed.digests.deliver(["s1"], *scope_window) == 1
    first, second = await _outbox(services.redis, "telegram")
    assert "pizza" in first.text and "pizza" not in second.text  # type: ignore[union-attr]
    assert "Greek" in second.text and "Turkish" not in second.text  # type: ignore[union-attr]


async def test_digests_fit_each_platforms_limits(services: Services) -> None:
    feed = _feed(services, CountingSummarizer())
    now = time.time()
    await feed.store.ingest([item(t, platform="x", community="acct", created_at=now - 60) for t in TOPICS])
    dm = _sub(1, platform="x", community="acct", dm=True, scope="all")
    timeline = _sub(2, platform="x", community="acct", scope="all")
    await feed.subscriptions.save(dm)
    await feed.subscriptions.save(timeline)
    await feed.digests.deliver(["s1", "s2"], now - 86400, now)
    actions = await _outbox(services.redis, "x")
    dms = [a for a in actions if isinstance(a, DirectMessage)]
    posts = [a for a in actions if isinstance(a, Post)]
    assert len(dms) > 1 and all(x_weighted_length(a.text) <= 280 for a in dms)
    assert all(a.user == "u1" for a in dms)
    [thread] = posts  # X has threads: one Post whose parts are the chunks
    assert len(thread.parts) == len(dms) and all(x_weighted_length(p) <= 280 for p in thread.parts)
    chunks = pack(["a" * 150, "b" * 150, "c" * 600], Capabilities(max_text=320))
    assert [len(c) for c in chunks] == [150, 150, 320, 280] or all(len(c) <= 320 for c in chunks)
    assert "".join(chunks).replace("\n", "") == "a" * 150 + "b" * 150 + "c" * 600


async def test_a_slots_digests_share_few_model_requests_and_none_mixes_communities(
    services: Services,
) -> None:
    """One slot, three communities (two private, one public): every digest's summaries and intros are
    written by one request per community (batched), and no request holds another community's text."""
    summarizer = CountingSummarizer()
    services.summarizer.provide(summarizer)
    settings = FeedSettings(CHORUS_FEED_SUMMARY_BATCH_WAIT_MS=500)  # generous: the test machine is shared
    feed = FeedService(services, settings)
    await set_visibility(services.redis, "console:pub", "public")
    now = _ts("2024-10-26 09:00:30")
    news = {
        "c1": ["garden beds", "seed swap", "compost bins"],
        "c2": ["chess final", "rapid ladder", "opening lecture"],
        "pub": ["harbour ferry", "bridge repairs", "bus timetable"],
    }
    await feed.store.ingest(
        [
            item(
                f"{c} news {i}: the {topic} story. {TOPICS[i]} Ask about the {topic} in the pinned message of "
                f"this channel; the {topic} team answers every question there before the end of the week.",
                platform="console",
                community=c,
                created_at=now - 600 * (i + 1),
            )
            for c, topics in news.items()
            for i, topic in enumerate(topics)
        ]
    )
    subs = [
        _sub(n, community=("c1", "c2", "pub")[n % 3], scope="all" if n % 2 else "community")
        for n in range(60)
    ]
    for sub in subs:
        await feed.subscriptions.save(sub)
    slot = subs[0].schedule.slot
    await feed.digests.run_slot(Job(f"feed-digest:{slot}", "feed-digest", {"slot": slot}), now, now)
    assert feed.digests.sent == 60
    for key, texts in summarizer.batches:
        seen = {c for t in texts for c in ("c1", "c2", "pub") if f"{c} news" in t}
        own = key.removeprefix("console:") if key else "pub"
        assert seen <= {own, "pub"} and own in seen, (key, seen)  # a private one: its own (and public)
        if not key:
            assert seen == {"pub"}  # a public request: public texts only
    stories = [
        key for (key, _), kind in zip(summarizer.batches, summarizer.kinds, strict=True) if kind == "stories"
    ]
    assert sorted(stories) == ["", "console:c1", "console:c2"]  # one request per visibility, not per digest
    assert summarizer.requests == 6  # and one intro request each (a private community's two intros in one)


async def test_thousand_subscribers_five_zones_across_dst_two_workers(services: Services) -> None:
    """Simulated time across Europe's DST end: every subscriber gets every window exactly once."""
    summarizer = CountingSummarizer()
    services.summarizer.provide(summarizer)
    workers = [FeedService(services) for _ in range(2)]
    schedulers = [Scheduler(services.redis) for _ in range(2)]
    for scheduler, feed in zip(schedulers, workers, strict=True):
        scheduler.register("feed-digest", feed.digests.run_slot)
    feed = workers[0]
    start, stop = _ts("2024-10-26 12:00"), _ts("2024-10-28 12:00")  # Europe leaves DST on the 27th
    communities = ["c0", "c1", "c2"]
    items = []
    t = start - 86400
    n = 0
    while t < stop:  # a post every 20 minutes in every community
        for c in communities:
            items.append(item(f"{TOPICS[n % 4]} Update {n}.", platform="console", community=c, created_at=t))
            n += 1
        t += 1200
    await feed.store.ingest(items)
    zones = ["Europe/Berlin", "Europe/London", "America/New_York", "Asia/Kolkata", "UTC"]
    rng = random.Random(11)
    subs = []
    for s in range(1000):
        hourly = s % 25 == 0
        sub = _sub(
            s,
            community=communities[s % 3],
            tz=zones[s % 5],
            frequency="hourly" if hourly else "daily",
            hour=rng.choice([1, 2, 7, 9, 18]),
            minute=rng.choice([0, 30]),
            scope="all" if s % 4 == 0 else "community",
            dm=s % 7 == 0,
        )
        subs.append(sub)
        await feed.subscriptions.save(sub)
    for slot in {sub.schedule.slot for sub in subs}:
        await feed.digests.ensure_job(Schedule.from_slot(slot), now=start)
    now = start
    while now <= stop:
        await asyncio.gather(*(s.tick(now) for s in schedulers))
        now += 300
    actions = await _outbox(services.redis, "console")
    assert len({a.id for a in actions}) == len(actions)  # no Action enqueued twice
    per_window = Counter((a.ref or "") for a in actions)
    expected = set()
    for sub in subs:
        s = sub.schedule
        t = s.next_after(start)
        while t <= stop:
            expected.add(f"digest:{sub.id}:{t:.0f}")
            t = s.next_after(t)
    assert set(per_window) == expected
    assert max(per_window.values()) == 1  # each digest is one message on the console
    berlin = next(sub for sub in subs if sub.tz == "Europe/Berlin" and sub.frequency == "daily")
    local = sorted(
        datetime.fromtimestamp(int(ref.rsplit(":", 1)[1]), ZoneInfo("Europe/Berlin"))
        for ref in per_window
        if ref.startswith(f"digest:{berlin.id}:")
    )
    assert [d.day for d in local] == ([27, 28] if berlin.hour < 12 else [26, 27]) and {
        (d.hour, d.minute) for d in local
    } == {(berlin.hour, berlin.minute)}
    # every story and every intro was summarised once, however many subscribers and workers shared it
    assert len(summarizer.texts) == len(set(summarizer.texts))


async def test_missed_window_is_sent_once_on_recovery(services: Services) -> None:
    feed = _feed(services, CountingSummarizer())
    scheduler = Scheduler(services.redis)
    scheduler.register("feed-digest", feed.digests.run_slot)
    t0 = _ts("2024-03-01 12:00")
    await feed.store.ingest(
        [item(TOPICS[0], platform="console", community="c0", created_at=_ts("2024-03-04 08:00"))]
    )
    sub = _sub(1, hour=9, tz="Europe/Berlin")
    await feed.subscriptions.save(sub)
    await feed.digests.ensure_job(sub.schedule, now=t0)
    # everything is down from 1 to 4 March; it comes back at 10:00 Berlin on the 4th
    back = _ts("2024-03-04 10:00", "Europe/Berlin")
    assert await scheduler.tick(back) == 1
    assert await scheduler.tick(back + 60) == 0
    actions = await _outbox(services.redis, "console")
    assert [a.ref for a in actions] == [f"digest:s1:{_ts('2024-03-04 09:00', 'Europe/Berlin'):.0f}"]
    assert await scheduler.next_run("feed-digest:" + sub.schedule.slot) == _ts(
        "2024-03-05 09:00", "Europe/Berlin"
    )


async def test_a_run_that_died_after_claiming_is_resent_and_delivered_once(services: Services) -> None:
    feed = _feed(services, CountingSummarizer())
    platform = RecordingPlatform("test", Capabilities(max_text=4000))
    declare(services.platforms, "test", platform.capabilities)
    now = time.time()
    await feed.store.ingest([item(TOPICS[1], platform="test", community="c1", created_at=now - 60)])
    sub = _sub(1, platform="test", community="c1")
    await feed.subscriptions.save(sub)
    start, end = now - 86400, now
    # the first run claimed the window and enqueued, then died before marking it sent
    await feed.digests.deliver(["s1"], start, end)
    await services.redis.set(fk.sent("s1", end), "p")
    # the rerun re-enqueues with the same Action ids; a second claim by someone else sends nothing
    assert await feed.digests.deliver(["s1"], start, end) == 1
    assert await feed.digests.deliver(["s1"], start, end) == 0
    sender = Sender(services.bus, platform)
    deliveries = await services.bus.read_actions("test", "t", 10, 10)
    assert len(deliveries) == 2  # enqueued twice...
    for delivery in deliveries:
        await sender.handle(delivery)
    assert len(platform.sent) == 1 and "ranking" in platform.sent[0].text  # type: ignore[union-attr]


def test_replies_for_on_demand_digests_split_on_story_boundaries() -> None:
    from core.feed.digests import Digest
    from core.feed.items import Story

    stories = [Story(f"s{n}", 0.0, [item(TOPICS[n % 4])]) for n in range(4)]
    digest = Digest(Scope(), 0.0, 86400.0, stories, [t for t in TOPICS], "Four stories today.", CATALOG)
    from core.contract import Reply

    base = Reply(platform="discord", community="1", channel="2", text="", id="e1")
    replies = Digests.replies_for(base, digest, Capabilities(max_text=200))
    assert len(replies) == 5 and all(len(r.text) <= 200 for r in replies)  # type: ignore[union-attr]
    assert [r.id for r in replies] == [f"e1-{i}" for i in range(5)]


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii text",
        "see chorus.dev and https://example.com/a/very/long/path/that/is/longer/than/twenty-three",
        "日本語の文章です。絵文字もあります 👩‍👩‍👧‍👦🚀 and café",
        "short x.co link and a.b.c mail@example.org",
    ],
)
def test_x_length_bound_never_undercounts(text: str) -> None:
    from core.feed.digests import x_length_bound

    assert x_length_bound(text) >= x_weighted_length(text)


def test_pack_measures_each_piece_once_with_the_same_result() -> None:
    """``pack`` adds measures up instead of re-measuring the growing message: same chunks as doing so."""

    def reference(sections: list[str], caps: Capabilities) -> list[str]:
        measure = x_length_bound if caps.weighted_length else measure_for(caps)
        chunks: list[str] = []
        current = ""
        for section in sections:
            pieces = (
                [section]
                if measure(section) <= caps.max_text
                else split_text(section, caps.max_text, measure)
            )
            for piece in pieces:
                candidate = f"{current}\n\n{piece}" if current else piece
                if measure(candidate) <= caps.max_text:
                    current = candidate
                else:
                    chunks.append(current)
                    current = piece
        return [*chunks, current] if current else chunks

    rng = random.Random(3)
    words = ["news", "😀", "naïve", "https://example.com/a", "x.com", "·", "×", "release", "日本語", "ok."]
    for caps in (
        Capabilities(max_text=280, weighted_length=True),
        Capabilities(max_text=300, utf16_length=True),
        Capabilities(max_text=250),
    ):
        for _ in range(200):
            sections = [
                " ".join(rng.choice(words) for _ in range(rng.randint(1, 60)))
                for _ in range(rng.randint(1, 8))
            ]
            assert pack(sections, caps) == reference(sections, caps)


async def test_scheduled_all_digests_hold_only_what_each_subscriber_may_read(services: Services) -> None:
    """A scheduled 'all' digest carries public communities and the subscriber's own, never another private one."""
    feed = _feed(services, CountingSummarizer())
    now = time.time()
    posts = (
        ("c0", "Our own garden opens Saturday."),
        ("c1", "PRIVATE roof plans of c1."),
        ("c2", "The public bake sale is on Sunday."),
    )
    for community, text in posts:
        await feed.store.ingest([item(text, platform="console", community=community, created_at=now - 300)])
    await set_visibility(services.redis, "console:c2", "public")
    await feed.subscriptions.save(_sub(1, scope="all"))  # in c0 (private)
    await feed.subscriptions.save(_sub(2, scope="all", community="c2"))  # in the public c2
    assert await feed.digests.deliver(["s1", "s2"], now - 86400, now) == 2
    texts: dict[str, str] = {}
    for action in await _outbox(services.redis, "console"):
        texts[action.community] = texts.get(action.community, "") + " " + getattr(action, "text", "")
    assert "garden" in texts["c0"] and "bake sale" in texts["c0"] and "PRIVATE" not in texts["c0"]
    assert "bake sale" in texts["c2"] and "garden" not in texts["c2"] and "PRIVATE" not in texts["c2"]
