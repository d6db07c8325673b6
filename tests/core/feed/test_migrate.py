"""``chorus feed migrate``: a feed stored before partitions (under ``{feed}``) moved into them."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from core.feed import keys as fk
from core.feed.ingest import FeedStore
from core.feed.items import FeedItem
from core.feed.migrate import OLD, migrate
from core.feed.settings import FeedSettings
from core.feed.subscriptions import Subscription, SubscriptionStore, subscription_id
from core.feed.timelines import Scope, Timelines
from tests.core.feed.helpers import item

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

LAUNCH = "Chorus v2.0 is live! Faster digests, smarter summaries and a brand-new console. Try it today."
LAUNCH_TG = (
    "🚀 Chorus v2.0 is live: faster digests, smarter summaries and a brand-new console! https://chorus.dev/v2"
)


async def _store_old(redis: aioredis.Redis, it: FeedItem, old_id: str, story: str = "") -> None:
    """An item as the feed wrote it before partitions: one key under ``{feed}``, the old 11-character id."""
    head = "\x1f".join(
        (
            f"{it.created_at:.3f}",
            it.community_key,
            it.channel,
            "",
            str(it.reactions),
            "0",
            "0",
            "0",
            "0",
            story,
        )
    )
    await redis.set(f"{OLD}{fk.ITEM_}{old_id}", head + "\x1e" + it.body(), ex=86400)


async def test_an_old_feed_moves_into_partitions_and_keeps_its_stories_optouts_and_sent_digests(
    redis: aioredis.Redis,
) -> None:
    now = time.time()
    lead = item(LAUNCH, platform="x", community="acct", created_at=now - 600, reactions=4)
    copy = item(LAUNCH_TG, platform="telegram", community="-1001", created_at=now - 60)
    gone = item("Minutes of the meeting, shared by someone who opted out later on.", author_id="u9")
    await _store_old(redis, lead, "AAAAAAAAAAA")
    await _store_old(redis, copy, "BBBBBBBBBBB", story="AAAAAAAAAAA")
    await _store_old(redis, gone, "CCCCCCCCCCC")
    await redis.sadd(OLD + fk.OPTOUT_, gone.author_key)
    sub = Subscription(
        id=subscription_id("telegram", "-1001", "u1", "news"), platform="telegram", community="-1001",
        channel="news", user="u1",
    )  # fmt: skip
    await redis.set(f"{OLD}{fk.SUB_}{sub.id}", sub.model_dump_json())
    await redis.set(f"{OLD}{fk.SENT_}{sub.id}:1800000000", "s", ex=3600)

    done = await migrate(redis, FeedSettings(), delete=True)

    assert (done.items, done.optouts, done.subscriptions, done.markers) == (2, 1, 1, 1)
    [story] = (await timelines(redis).page(Scope(), "new")).stories
    assert story.id == lead.id and sorted(i.id for i in story.items) == sorted([lead.id, copy.id])
    stored = await FeedStore(redis).get(copy.id)  # found by the id new events compute
    assert stored is not None and stored.text == LAUNCH_TG
    assert (await FeedStore(redis).get(lead.id)).reactions == 4  # type: ignore[union-attr]
    assert await FeedStore(redis).opted_out("telegram", "u9")
    assert await SubscriptionStore(redis).get(sub.id) == sub
    assert await redis.get(fk.sent(sub.id, 1800000000)) == b"s"  # that digest is not sent again
    assert [k async for k in redis.scan_iter(match=OLD + "*")] == []


def timelines(redis: aioredis.Redis) -> Timelines:
    return Timelines(redis)
