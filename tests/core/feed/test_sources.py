from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from core.feed import keys as fk
from core.feed.items import FeedItem
from core.feed.service import FeedService
from core.feed.sources import FeedSource, register_source
from core.feed.timelines import Scope
from core.services import Services
from tests.support import CATALOG


class FakeXList:
    """Stands in for an X list an adapter polls: since_id cursors and live public metrics."""

    name = "x:list:launches"

    def __init__(self) -> None:
        self.likes = 5
        self.cursors: list[str | None] = []

    async def poll(self, cursor: str | None) -> tuple[Sequence[FeedItem], str | None]:
        self.cursors.append(cursor)
        tweet = FeedItem(
            platform="x",
            community="bot-account",
            channel="list:launches",
            message_id="1800000000000000001",
            author_id="42",
            author_name="Launch news",
            text="Chorus v2.0 is live with faster digests and smarter summaries for every community.",
            created_at=time.time() - 30,
            reactions=self.likes,
            reposts=2,
            views=900,
            source=self.name,
        )
        return [tweet], "1800000000000000001"


class Broken:
    name = "x:search:broken"

    async def poll(self, cursor: str | None) -> tuple[Sequence[FeedItem], str | None]:
        raise ConnectionError("api down")


async def test_polled_sources_keep_cursors_and_refresh_engagement(services: Services) -> None:
    feed = FeedService(services)
    source = FakeXList()
    assert isinstance(source, FeedSource)
    register_source(services, source)
    register_source(services, Broken())
    assert await feed.poller.poll_all() == 1  # the broken source is logged and skipped
    source.likes = 50
    assert await feed.poller.poll_all() == 1
    assert source.cursors == [None, "1800000000000000001"]
    assert await services.redis.get(fk.poll(source.name)) == b"1800000000000000001"
    [story] = (await feed.timelines.page(Scope(), "hot")).stories
    tweet = story.items[0]
    assert tweet.reactions == 50 and tweet.reposts == 2 and tweet.views == 900
    assert tweet.link(CATALOG) == "https://x.com/i/web/status/1800000000000000001" and tweet.source == source.name


async def test_one_poller_at_a_time_and_the_loop_stops(services: Services) -> None:
    feed = FeedService(services)
    source = FakeXList()
    await services.redis.set(fk.poll(source.name) + ":lock", "1")  # another process is polling it
    assert await feed.poller.poll(source) == 0 and source.cursors == []
    await services.redis.delete(fk.poll(source.name) + ":lock")
    register_source(services, source)
    feed.poller.interval_s = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(feed.poller.run(stop))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(source.cursors) >= 2


class FakeXSearch:
    """An X search whose posts suddenly talk about an eclipse; every poll returns them all again."""

    name = "x:search:sky"

    def __init__(self, now: float) -> None:
        self.posts = [
            FeedItem(
                platform="x",
                community="bot-account",
                channel="search:sky",
                message_id=str(1900000000000000000 + n),
                author_id=str(100 + n),
                author_name=f"Watcher {n}",
                text=f"Total eclipse visible from the {place} coast this afternoon, clear skies expected.",
                created_at=now - 60 * n,
                reactions=10 + n,
                source=self.name,
            )
            for n, place in enumerate(["northern", "southern", "eastern", "western"])
        ]

    async def poll(self, cursor: str | None) -> tuple[Sequence[FeedItem], str | None]:
        return list(self.posts), self.posts[0].message_id


async def test_polled_x_posts_count_towards_trending_once(services: Services) -> None:
    feed = FeedService(services)
    now = time.time()
    # words X mentions three times every hour do not trend; "eclipse" will
    await feed.trending.record_many(
        [
            FeedItem(
                platform="x",
                community="bot-account",
                channel="search:sky",
                message_id=str(1800000000000000000 + hours_ago * 10 + n),
                author_id="7",
                text="Afternoon weather: clear skies expected again",
                created_at=now - hours_ago * 3600,
            )
            for hours_ago in range(1, 26)
            for n in range(3)
        ]
    )
    assert await feed.trending.top("x:bot-account", now=now) == []
    search = FakeXSearch(now)
    register_source(services, search)
    assert await feed.poller.poll_all() == 4
    assert "eclipse" in await feed.trending.top("x:bot-account", now=now)
    assert "eclipse" in await feed.trending.top(None, now=now)  # across communities too
    assert "skies" not in await feed.trending.top("x:bot-account", limit=20, now=now)
    hour = int(now // 3600)
    counted = int(await services.redis.hget(fk.community_terms("x:bot-account", hour), "eclipse") or 0)
    assert await feed.poller.poll_all() == 4  # polled again: counts refreshed, words not counted twice
    again = int(await services.redis.hget(fk.community_terms("x:bot-account", hour), "eclipse") or 0)
    assert counted == again >= 3
