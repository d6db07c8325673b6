"""Usage over time for the dashboard chart: one bar per UTC day, drawn server-side as SVG (no script):
drafts, images, tokens and cost from the assistant's counters, and the requests refused that day (over a
quota, over the money cap, refused by moderation) from ``core.refusals``."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import refusals
from core.refusals import Refusals

if TYPE_CHECKING:
    from core.assistant.quotas import Quotas

DAYS = 14


@dataclass(frozen=True, slots=True)
class Day:
    label: str
    requests: int
    images: int
    tokens: int
    cost_usd: float
    refused: Refusals


async def usage_days(
    quotas: Quotas, community_key: str, days: int = DAYS, now: float | None = None
) -> list[Day]:
    """The last ``days`` days, oldest first."""
    now = time.time() if now is None else now
    stamps = [now - back * 86400 for back in range(days - 1, -1, -1)]
    refused = await refusals.per_day(quotas.redis, community_key, stamps)
    out: list[Day] = []
    for t, no in zip(stamps, refused, strict=True):
        u = await quotas.usage(community_key, days=1, now=t)
        label = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%d %b")
        out.append(Day(label, u.requests, u.images, u.tokens_in + u.tokens_out, u.cost_usd, no))
    return out
