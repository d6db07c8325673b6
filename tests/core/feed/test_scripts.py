"""Ranking semantics of the feed's scripts: per-source baselines, time decay, story aggregation."""

from __future__ import annotations

import math
import random
import time

import pytest
import redis.asyncio as aioredis

from core.feed import keys as fk
from core.feed.ingest import FeedStore
from core.feed.scripts import BASELINE_FLOOR, PRIOR_ENGAGEMENT, PRIOR_ITEMS
from core.feed.settings import FeedSettings
from core.feed.timelines import Scope, Timelines
from tests.core.feed.helpers import item

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster


async def test_engagement_is_normalised_against_each_sources_baseline(redis: aioredis.Redis) -> None:
    """100 likes on a busy X list is ordinary there; 3 reactions in a quiet chat is a lot there."""
    store, timelines = FeedStore(redis), Timelines(redis)
    now = time.time() - 60
    x_history = [
        item(
            f"Routine post {n} on the busy list about release {n}.",
            platform="x",
            community="acct",
            created_at=now - 7200,
            reactions=100,
        )
        for n in range(30)
    ]
    chat_history = [
        item(
            f"Quiet chat message {n} about the garden plot {n}.", community="-100quiet", created_at=now - 7200
        )
        for n in range(30)
    ]
    await store.ingest(x_history + chat_history)
    on_x = item(
        "A normal day on the busy list, with the usual hundred likes.",
        platform="x",
        community="acct",
        created_at=now,
        reactions=100,
    )
    in_chat = item(
        "Big news in the quiet chat: we got the community garden permit!",
        community="-100quiet",
        created_at=now,
        reactions=3,
    )
    await store.ingest([on_x, in_chat])
    x_item, chat_item = await store.get(on_x.id), await store.get(in_chat.id)
    assert x_item is not None and chat_item is not None
    x_baseline = (30 * 100 + 100 + PRIOR_ENGAGEMENT) / (31 + PRIOR_ITEMS)
    assert math.isclose(x_item.norm, 100 / x_baseline, rel_tol=1e-4)
    chat_baseline = max((3 + PRIOR_ENGAGEMENT) / (31 + PRIOR_ITEMS), BASELINE_FLOOR)
    assert math.isclose(chat_item.norm, 3 / chat_baseline, rel_tol=1e-4)
    ranked = [s.id for s in (await timelines.page(Scope(), "hot", 100)).stories]
    assert ranked[0] == in_chat.id and ranked.index(in_chat.id) < ranked.index(on_x.id)


async def test_hot_order_is_engagement_with_exponential_time_decay(redis: aioredis.Redis) -> None:
    settings = FeedSettings()
    store, timelines = FeedStore(redis, settings), Timelines(redis)
    rng = random.Random(5)
    now = time.time()
    items = [
        item(
            f"Post {n} with some words about subject {n} for the ranking test.",
            created_at=now - rng.uniform(0, 48 * 3600),
        )
        for n in range(60)
    ]
    await store.ingest(items)
    for it in items:
        await store.engage(it.id, reactions=rng.choice([0, 0, 1, 2, 5, 20]))
    stories = (await timelines.page(Scope(), "hot", 100)).stories
    later = now + 5 * 3600  # the order holds at any moment: no periodic re-scoring needed
    expected = sorted(
        stories, key=lambda s: -(1 + s.norm) * math.exp(-(later - s.created_at) / settings.tau_s)
    )
    assert [s.id for s in stories] == [s.id for s in expected]


async def test_engagement_updates_and_never_goes_negative(redis: aioredis.Redis) -> None:
    store = FeedStore(redis)
    it = item("A message people react to, then some of them change their minds about it.")
    await store.ingest([it])
    assert await store.engage(it.id, reactions=2, replies=1)
    assert await store.engage(it.id, reactions=-5)
    stored = await store.get(it.id)
    assert stored is not None and stored.reactions == 0 and stored.replies == 1
    assert not await store.engage("no-such-item", reactions=1)
    source = await redis.hgetall(fk.source(fk.part_of(it.id), f"{it.community_key}:{it.channel}"))
    assert float(source[b"e"]) == 2.0 and int(source[b"n"]) == 1  # only the reply (weight 2) is left


async def test_a_storys_score_sums_its_sources(redis: aioredis.Redis) -> None:
    store, timelines = FeedStore(redis), Timelines(redis)
    now = time.time()
    text = (
        "Hackathon registrations are open: build something with the Chorus API in 48 hours, prizes included."
    )
    a = item(text, platform="x", community="acct", created_at=now - 50)
    b = item(text + " Sign up now!", platform="discord", community="42", created_at=now - 40)
    lone = item(
        "A different post entirely, about the new moderators of the Discord server.",
        platform="discord",
        community="42",
        created_at=now - 30,
    )
    await store.ingest([a])
    await store.ingest([b, lone])
    await store.engage(a.id, reactions=1)
    await store.engage(b.id, reactions=1)
    await store.engage(lone.id, reactions=1)
    stories = (await timelines.page(Scope(), "hot")).stories
    assert stories[0].id == a.id and len(stories[0].items) == 2
    assert math.isclose(stories[0].norm, sum(i.norm for i in stories[0].items))
