"""Refused requests per community and UTC day, by reason: over a quota, over the money cap, refused by
moderation. Counted where every refusal is answered (``core.router``), shown in the dashboard's usage chart
beside drafts, images, tokens and cost (the metrics count the same refusals for the whole deployment)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import redis.asyncio as aioredis

from core import keys
from core.decode import as_str
from core.errors import BudgetExceeded, ContentRefused, QuotaExceeded, UserError

Reason = Literal["quota", "budget", "moderation"]
KEEP_S = 90 * 86400


@dataclass(frozen=True, slots=True)
class Refusals:
    quota: int = 0
    budget: int = 0
    moderation: int = 0

    @property
    def total(self) -> int:
        return self.quota + self.budget + self.moderation


def reason_of(error: UserError) -> Reason | None:
    """The chart's reason for a refusal, or None for errors it does not count (a typo, a wrong id)."""
    if isinstance(error, BudgetExceeded):  # a QuotaExceeded too: the narrower class first
        return "budget"
    if isinstance(error, QuotaExceeded):
        return "quota"
    if isinstance(error, ContentRefused):
        return "moderation"
    return None


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")


async def count(
    redis: aioredis.Redis, community_key: str, error: UserError, now: float | None = None
) -> None:
    reason = reason_of(error)
    if reason is None:
        return
    key = keys.refusals(community_key, day_of(time.time() if now is None else now))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, reason, 1)
        pipe.expire(key, KEEP_S)
        await pipe.execute()


async def per_day(redis: aioredis.Redis, community_key: str, days: list[float]) -> list[Refusals]:
    """The refusals of each day (timestamps within those UTC days), in the order given: one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for t in days:
            pipe.hgetall(keys.refusals(community_key, day_of(t)))
        rows = await pipe.execute()
    out = []
    for row in rows:
        counts = {as_str(k): int(v) for k, v in row.items()}
        out.append(Refusals(counts.get("quota", 0), counts.get("budget", 0), counts.get("moderation", 0)))
    return out
