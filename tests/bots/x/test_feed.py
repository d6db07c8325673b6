"""X feed sources against the fake X API, ingested into the real feed store on real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bots.x.adapter import XPlatform
from bots.x.api import Me, XApi
from bots.x.feed import Source, XFeedSource, sources_of
from core.feed import keys as fk
from core.feed.ingest import FeedStore
from core.feed.items import FeedItem, item_id
from core.feed.sources import Poller
from core.services import Services
from tests.bots.x.xkit import x_settings
from tests.fakes.x_api import FakeX

ME = Me(id="100", username="chorus_bot")


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX(me_id="100", me_username="chorus_bot") as fake:
        fake.add_user("200", "alice")
        fake.add_user("300", "bob")
        fake.add_user("400", "carol")
        yield fake


def make(
    x: FakeX, redis: aioredis.Redis, source: Source, **settings: Any
) -> tuple[XFeedSource, XApi, FeedStore]:
    s = x_settings(x, **{"X_FEED_POLL_INTERVAL_S": 0.001, **settings})
    api = XApi(s)
    store = FeedStore(redis)
    return XFeedSource(source, api, redis, s, ME, store), api, store


async def item(store: FeedStore, username: str, tweet_id: str) -> FeedItem | None:
    return await store.get(item_id("x", "100", f"@{username}", tweet_id))


def test_sources_from_settings(x: FakeX) -> None:
    s = x_settings(
        x, X_FEED_ACCOUNTS="@Alice,200", X_FEED_LISTS="42", X_FEED_SEARCHES="launch OR release; #chorus"
    )
    assert [src.name for src in sources_of(s)] == [
        "x:account:alice",
        "x:account:200",
        "x:list:42",
        "x:search:launch OR release",
        "x:search:#chorus",
    ]


async def test_the_feeds_poller_polls_accounts_lists_and_searches_with_metrics(
    x: FakeX, services: Services
) -> None:
    """The adapter registers its sources; the feed's own poller (``chorus run``'s feed-poll) runs them."""
    a = x.post_as("200", "Alice ships the launch today", like_count=12, retweet_count=3, impression_count=900)
    b = x.post_as("300", "Bob on the list")
    c = x.post_as("400", "Carol talks about #chorus")
    mine = x.post_as("100", "the bot's own post #chorus")
    x.add_list("42", ["300"])
    settings = x_settings(
        x,
        X_FEED_ACCOUNTS="@alice",
        X_FEED_LISTS="42",
        X_FEED_SEARCHES="#chorus",
        X_FEED_POLL_INTERVAL_S=0.001,
    )
    platform = XPlatform(settings, services)
    store = FeedStore(services.redis)
    poller = Poller(services, store, interval_s=1)
    try:
        await platform.start(services.bus.publish)
        assert sorted(poller.sources()) == ["x:account:alice", "x:list:42", "x:search:#chorus"]
        assert await poller.poll_all() == 3
        first = await item(store, "alice", a.id)
        assert first is not None and (first.reactions, first.reposts, first.views) == (12, 3, 900)
        assert first.url == f"https://x.com/alice/status/{a.id}" and first.author_name == "alice"
        assert await item(store, "bob", b.id) and await item(store, "carol", c.id)
        assert await item(store, "chorus_bot", mine.id) is None  # the bot's posts come in as deliveries
        newer = x.post_as("200", "Alice again")
        assert await poller.poll_all() == 1 + 3  # what is new since each cursor, and refreshed metrics
        assert await item(store, "alice", newer.id)
    finally:
        await platform.stop()
    timeline = x.requests_to("GET /2/users/:id/tweets")
    assert "since_id" not in timeline[0].query and timeline[1].query["since_id"] == a.id
    assert len(x.requests_to("GET /2/users/by")) == 1  # the account's id is looked up once
    assert await services.redis.get(fk.poll("x:account:alice")) == newer.id.encode()


async def test_metrics_are_refreshed_and_deleted_posts_leave_the_feed(
    x: FakeX, redis: aioredis.Redis
) -> None:
    keep = x.post_as("200", "A post that does well", like_count=1)
    gone = x.post_as("200", "A post that will be deleted", like_count=5)
    source, api, store = make(x, redis, Source("account", "alice"))
    try:
        items, cursor = await source.poll(None)
        await store.ingest(items, absolute=True)
        x.set_metrics(keep.id, like_count=40, reply_count=6)
        x.delete(gone.id)
        items, again = await source.poll(cursor)
        await store.ingest(items, absolute=True)
    finally:
        api.close()
    assert cursor == gone.id and again is None  # nothing newer: the cursor stays
    refreshed = await item(store, "alice", keep.id)
    assert refreshed is not None and (refreshed.reactions, refreshed.replies) == (40, 6)
    assert refreshed.source == "x:account:alice"
    assert await item(store, "alice", gone.id) is None
    lookup = x.requests_to("GET /2/tweets")[-1]
    assert set(lookup.query["ids"].split(",")) == {keep.id, gone.id}


async def test_a_source_is_not_read_more_often_than_the_tier_allows(x: FakeX, redis: aioredis.Redis) -> None:
    x.post_as("200", "hello")
    clock = [1000.0]
    source, api, _ = make(x, redis, Source("account", "alice"), X_FEED_POLL_INTERVAL_S=300)
    source.clock = lambda: clock[0]
    try:
        items, cursor = await source.poll(None)
        assert len(items) == 1 and cursor
        clock[0] += 100
        assert await source.poll(cursor) == ([], None)  # too soon: X is not called
        clock[0] += 201
        await source.poll(cursor)
    finally:
        api.close()
    assert len(x.requests_to("GET /2/users/:id/tweets")) == 2
