from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from core.scheduler import Job, Scheduler

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster


async def test_due_jobs_run_once_even_with_racing_schedulers(redis: aioredis.Redis) -> None:
    runs: list[tuple[str, float]] = []

    async def handler(job: Job, due_at: float, now: float) -> float | None:
        runs.append((job.id, due_at))
        await asyncio.sleep(0)
        return due_at + 3600

    schedulers = [Scheduler(redis) for _ in range(3)]
    for s in schedulers:
        s.register("digest", handler)
    for i in range(200):
        await schedulers[0].schedule(Job(f"j{i}", "digest", {"n": i}), run_at=1000.0 + i)
    await asyncio.gather(*(s.tick(now=1100.0) for s in schedulers))
    assert sorted(j for j, _ in runs) == sorted(f"j{i}" for i in range(101))  # each due job exactly once
    assert await schedulers[0].next_run("j0") == 1000.0 + 3600


async def test_missed_windows_run_once_on_recovery(redis: aioredis.Redis) -> None:
    seen: list[tuple[float, float]] = []

    async def handler(job: Job, due_at: float, now: float) -> float | None:
        seen.append((due_at, now))
        period = 3600.0
        return due_at + period * (1 + (now - due_at) // period)  # skip to the next future window

    s = Scheduler(redis)
    s.register("digest", handler)
    await s.schedule(Job("j", "digest", {}), run_at=0.0)
    await s.tick(now=10 * 3600.0 + 5)  # down for ten hours
    await s.tick(now=10 * 3600.0 + 6)
    assert seen == [(0.0, 36005.0)]
    assert await s.next_run("j") == 11 * 3600.0


async def test_a_crashed_run_is_retried_after_the_lease(redis: aioredis.Redis) -> None:
    attempts = 0

    async def flaky(job: Job, due_at: float, now: float) -> float | None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("worker died mid-job")
        return None  # one-shot job: drop after success

    s = Scheduler(redis, lease_s=60)
    s.register("once", flaky)
    await s.schedule(Job("x", "once", {}), run_at=100.0)
    await s.tick(now=100.0)
    await s.tick(now=130.0)  # still leased
    assert attempts == 1
    await s.tick(now=161.0)
    assert attempts == 2 and await s.next_run("x") is None
