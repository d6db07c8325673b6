"""Retention: items older than ``CHORUS_FEED_RETENTION_DAYS`` leave the feed, their stories and indexes.

Items also carry a TTL a day longer than retention, as a safety net; the hourly sweep is what keeps the
timelines, story sets and source baselines consistent with what is left.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from core.decode import as_str
from core.feed import keys as fk
from core.feed.scripts import SWEEP
from core.feed.settings import FeedSettings
from core.scheduler import Job, Scheduler

JOB_KIND = "feed-retention"
JOB_ID = "feed-retention"
PERIOD_S = 3600.0
BATCH = 500


class Retention:
    def __init__(self, redis: aioredis.Redis, settings: FeedSettings) -> None:
        self.redis = redis
        self.settings = settings
        self._sweep = redis.register_script(SWEEP)

    async def sweep(self, now: float | None = None) -> int:
        """Remove everything created before the retention cutoff; returns how many stories it visited."""
        cutoff = (time.time() if now is None else now) - self.settings.retention_s
        visited = 0
        for part in range(fk.PARTITIONS):  # each partition's stories, with every item of them, are there
            communities = await self.redis.smembers(fk.communities(part))
            for ck in sorted(as_str(c) for c in communities):
                while True:
                    n = int(
                        await self._sweep(
                            keys=[fk.prefix(part), fk.timeline(part, "new", "c", ck)],
                            args=[self.settings.tau_s, cutoff, BATCH],
                        )
                    )
                    visited += n
                    if n < BATCH:
                        break
        return visited

    async def run(self, job: Job, due_at: float, now: float) -> float:
        await self.sweep(now)
        return now + PERIOD_S

    async def ensure_job(self, scheduler: Scheduler) -> None:
        if await scheduler.next_run(JOB_ID) is None:
            await scheduler.schedule(Job(JOB_ID, JOB_KIND, {}), time.time() + PERIOD_S)
