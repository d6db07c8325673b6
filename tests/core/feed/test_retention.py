from __future__ import annotations

import time

import redis.asyncio as aioredis

from core.feed import keys as fk
from core.feed.ingest import FeedStore
from core.feed.retention import JOB_ID, Retention
from core.feed.settings import FeedSettings
from core.feed.timelines import Scope, Timelines
from core.scheduler import Scheduler
from tests.core.feed.helpers import item


async def test_old_items_leave_every_index(redis: aioredis.Redis) -> None:
    settings = FeedSettings(CHORUS_FEED_RETENTION_DAYS=2, CHORUS_FEED_DEDUPE_WINDOW_HOURS=96)
    store, timelines, retention = FeedStore(redis, settings), Timelines(redis), Retention(redis, settings)
    now = time.time()
    text = "Hackathon registrations are open: build something with the Chorus API in 48 hours."
    old = item(text, platform="x", community="acct", created_at=now - 3 * 86400)
    old_copy = item(text + " Prizes!", platform="telegram", community="-1", created_at=now - 2.5 * 86400)
    fresh = item("Office hours move to Wednesdays at 16:00 CET starting next week.", created_at=now - 3600)
    await store.ingest([old])
    await store.ingest([old_copy, fresh])
    assert len((await timelines.page(Scope(), "new")).stories) == 2
    assert await retention.sweep(now) >= 1
    assert [s.id for s in (await timelines.page(Scope(), "new")).stories] == [fresh.id]
    assert [s.id for s in (await timelines.page(Scope(), "hot")).stories] == [fresh.id]
    assert await store.get(old.id) is None and await store.get(old_copy.id) is None
    assert not await redis.exists(fk.story(old.id))
    home = fk.community_part("x:acct")
    assert await redis.zcard(fk.timeline(home, "hot", "c", "x:acct")) == 0
    assert int(await redis.hget(fk.source(home, "x:acct:news"), "n")) == 0  # baselines forget what left


async def test_the_sweep_is_scheduled_once(redis: aioredis.Redis) -> None:
    retention = Retention(redis, FeedSettings())
    scheduler = Scheduler(redis)
    await retention.ensure_job(scheduler)
    first = await scheduler.next_run(JOB_ID)
    await retention.ensure_job(scheduler)
    assert first is not None and await scheduler.next_run(JOB_ID) == first
