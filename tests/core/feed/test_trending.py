"""Trending terms by velocity: a word that suddenly rises trends, a word always used does not."""

from __future__ import annotations

import time

from core.contract import Author, EventKind, Reply
from core.feed.preferences import EMPTY
from core.feed.service import FeedService
from core.feed.subscriptions import Subscription
from core.feed.timelines import Scope
from core.feed.trending import Trending
from core.router import Router
from core.services import Services
from tests.core.feed.helpers import CountingSummarizer, item
from tests.support import event, feed_of

MOD = Author(id="m1", name="Mo", is_moderator=True)


async def _history(trending: Trending, now: float) -> None:
    for hours_ago in range(26):  # "weather" every hour of the day: common, never trending
        await trending.record(item("Weather update for the harbour", created_at=now - hours_ago * 3600))
    for n in range(5):  # "outage" five times in the last hour, in one community only
        await trending.record(item(f"Power outage in district {n}", community="-1001", created_at=now - n))
    for n in range(4):
        await trending.record(item("Street festival tonight", community="-2002", created_at=now - n))


async def test_velocity_per_community_and_across(services: Services) -> None:
    trending = Trending(services.redis)
    now = time.time()
    await _history(trending, now)
    assert await trending.top("telegram:-1001", now=now) == ["district", "outage", "power"]  # ties: a-z
    assert await trending.top("telegram:-2002", now=now) == ["festival", "street", "tonight"]
    everywhere = await trending.top(None, limit=10, now=now)
    assert set(everywhere) == {"outage", "district", "power", "festival", "street", "tonight"}
    assert "weather" not in everywhere and "harbour" not in everywhere


async def test_messages_feed_trending_and_digests_show_it_without_muted_words(services: Services) -> None:
    services.summarizer.provide(CountingSummarizer())
    feed: FeedService = feed_of(services)
    router = Router(services)
    await router.route(event(EventKind.COMMAND, "feed add", command="feed", args="add", author=MOD))
    for n in range(3):
        await router.route(event(EventKind.MESSAGE, f"Server outage number {n}: logins fail again"))
    actions = await router.route(event(EventKind.COMMAND, "feed trending", command="feed", args="trending"))
    [reply] = [a for a in actions if isinstance(a, Reply)]
    assert reply.text.startswith("Trending in this community: ") and "outage" in reply.text
    now = time.time()
    for user in ("u1", "u2"):
        await feed.subscriptions.save(
            Subscription(id=f"s-{user}", platform="test", community="c1", channel="d", user=user)
        )
    await feed.preferences.save("test:c1", "u1", EMPTY.muted("author", ["nobody"]).learned(more=["logins"]))
    await feed.preferences.save("test:c1", "u2", EMPTY.muted("word", ["outage"]))
    digest = await feed.digests.build(Scope("community", "test:c1"), now - 3600, now)
    assert "outage" in digest.trending and "\nTrending: " in digest.text
    mine = await feed.digests.personal(digest, await feed.preferences.get("test:c1", "u1"))
    assert "outage" in mine.trending and "you asked for more about logins" in mine.text
    muted = await feed.digests.personal(digest, await feed.preferences.get("test:c1", "u2"))
    assert muted.empty  # every story mentions the muted word


async def test_digests_may_read_a_recent_answer_others_read_fresh(services: Services) -> None:
    trending = Trending(services.redis)
    now = time.time()
    await _history(trending, now)
    first = await trending.top("telegram:-1001", now=now, max_age_s=60)
    for n in range(9):
        await trending.record(item("Ferry strike announced", community="-1001", created_at=now - n))
    assert await trending.top("telegram:-1001", now=now, max_age_s=60) == first  # one read per round
    fresh = await trending.top("telegram:-1001", now=now)
    assert fresh != first and "ferry" in fresh
    assert "ferry" in await trending.top("telegram:-1001", now=now, max_age_s=60)  # the fresh one is kept
