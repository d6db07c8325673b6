"""Scheduled jobs (digests and other periodic work) in a Redis sorted set scored by next run time.

Claiming a due job moves its score forward by a lease in one atomic step, so of several schedulers racing
only one runs it; if that one dies the lease expires and the job is due again. Handlers get the time they
were due at and the clock time, so a job that was missed while the process was down runs once, not once per
missed tick; handlers must be idempotent per window (digests record the window they sent).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from core import keys, metrics
from core.decode import as_str
from core.logs import Outage
from core.redis_server import REDIS_DOWN, pause

log = logging.getLogger(__name__)

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
local out = {}
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], due[i])
  table.insert(out, due[i]); table.insert(out, due[i + 1])
end
return out
"""


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    data: dict[str, Any]


JobHandler = Callable[[Job, float, float], Awaitable[float | None]]
"""(job, due_at, now) -> next run time, or None to drop the job."""


class Scheduler:
    def __init__(self, redis: aioredis.Redis, *, lease_s: float = 300.0, batch: int = 500) -> None:
        self.redis = redis
        self.lease_s = lease_s
        self.batch = batch
        self.handlers: dict[str, JobHandler] = {}
        self._claim = redis.register_script(_CLAIM)
        self.outage = Outage(log, "Redis (scheduler)", waiting="scheduled jobs wait for it")

    def register(self, kind: str, handler: JobHandler) -> None:
        self.handlers[kind] = handler

    async def schedule(self, job: Job, run_at: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.sched_job(job.id), json.dumps({"kind": job.kind, "data": job.data}))
            pipe.zadd(keys.SCHED_DUE, {job.id: run_at})
            await pipe.execute()

    async def cancel(self, job_id: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.SCHED_DUE, job_id)
            pipe.delete(keys.sched_job(job_id))
            removed, _ = await pipe.execute()
        return bool(removed)

    async def next_run(self, job_id: str) -> float | None:
        score = await self.redis.zscore(keys.SCHED_DUE, job_id)
        return float(score) if score is not None else None

    async def tick(self, now: float | None = None) -> int:
        """Run every job due at ``now``; returns how many ran. Tests pass simulated time."""
        now = time.time() if now is None else now
        ran = 0
        while True:
            raw = await self._claim(keys=[keys.SCHED_DUE], args=[now, now + self.lease_s, self.batch])
            if not raw:
                return ran
            pairs = list(zip(raw[::2], raw[1::2], strict=True))
            await asyncio.gather(*(self._run(as_str(jid), float(score), now) for jid, score in pairs))
            ran += len(pairs)
            if len(pairs) < self.batch:
                return ran

    async def _run(self, job_id: str, due_at: float, now: float) -> None:
        raw = await self.redis.get(keys.sched_job(job_id))
        if raw is None:
            await self.redis.zrem(keys.SCHED_DUE, job_id)
            return
        spec = json.loads(raw)
        handler = self.handlers.get(spec["kind"])
        if handler is None:
            log.warning("no handler for scheduled job kind %r; retrying after the lease", spec["kind"])
            return
        metrics.SCHEDULER_LAG.observe(max(0.0, now - due_at))
        try:
            next_at = await handler(Job(job_id, spec["kind"], spec["data"]), due_at, now)
        except Exception:
            log.exception("scheduled job %s failed; it runs again after the lease", job_id)
            return
        if next_at is None:
            await self.cancel(job_id)
        else:
            await self.redis.zadd(keys.SCHED_DUE, {job_id: next_at}, xx=True)

    async def run(self, stop: asyncio.Event, period_s: float = 1.0) -> None:
        """Tick every ``period_s``; while Redis is away, one warning and a summary a minute, not a traceback
        per tick (a job claimed when Redis went away runs again after its lease)."""
        while not stop.is_set():
            try:
                await self.tick()
                self.outage.recovered()
            except REDIS_DOWN as exc:
                self.outage.failed(exc)
            except Exception:
                log.exception("scheduler tick failed")
            await pause(stop, period_s)
