"""Rate limits, daily quotas and usage counters, per user and per community, separately for text and images.

Limits are fixed windows (a minute, a UTC day) counted in Redis. One Lua script checks every window of a
request and increments them all only if none is over, so concurrent requests can never slip past a limit
(no read-modify-write race: 50 racing requests against a limit of 10 get exactly 10). A request whose model
call fails gives its units back (``release``), so a provider outage does not eat people's quota.

Usage (requests, tokens, images, estimated cost) is counted per community and per user per UTC day; cost is
estimated from the price table in settings (USD per million tokens, per image).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import redis.asyncio as aioredis

from core import keys, metrics
from core.assistant.budget import Budget
from core.decode import as_str
from core.errors import QuotaExceeded
from core.settings import Settings

Kind = Literal["text", "image"]
USAGE_TTL_S = 90 * 86400
MICRO = 1_000_000  # cost is stored as integer micro-dollars so HINCRBY stays exact

# KEYS: window counters. ARGV: cost, then (limit, ttl seconds) per key.
# Returns 0 when every window had room (all incremented), else the 1-based index of the first full one.
_ACQUIRE = """
local cost = tonumber(ARGV[1])
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + cost > limit then return i end
end
for i = 1, #KEYS do
  local n = redis.call('INCRBY', KEYS[i], cost)
  if n == cost then redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 1]) end
end
return 0
"""

# Give units back without going below zero (a window may have rolled over meanwhile).
_RELEASE = """
local cost = tonumber(ARGV[1])
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used > 0 then redis.call('DECRBY', KEYS[i], math.min(cost, used)) end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Window:
    """One limit of one request: who (user/community), which period, the limit and when it resets."""

    key: str
    scope: Literal["user", "community"]
    period: Literal["minute", "day"]
    limit: int
    resets_at: float


@dataclass(frozen=True, slots=True)
class Ticket:
    """What ``acquire`` counted, so ``release`` can give it back."""

    keys: tuple[str, ...]
    cost: int


@dataclass(frozen=True, slots=True)
class WindowState:
    scope: str
    period: str
    used: int
    limit: int
    resets_at: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    images: int = 0
    cost_usd: float = 0.0


class Quotas:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self.budget = Budget(redis, settings)

    # -- limits -------------------------------------------------------------------------------
    def windows(self, community_key: str, user_id: str, kind: Kind, now: float | None = None) -> list[Window]:
        now = time.time() if now is None else now
        s = self.settings
        minute = int(now // 60)
        day = _day(now)
        day_end = (
            datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            + timedelta(days=1)
        ).timestamp()
        limits = {
            ("user", "minute"): s.quota_user_text_per_minute
            if kind == "text"
            else s.quota_user_images_per_minute,
            ("user", "day"): s.quota_user_text_per_day if kind == "text" else s.quota_user_images_per_day,
            ("community", "minute"): (
                s.quota_community_text_per_minute if kind == "text" else s.quota_community_images_per_minute
            ),
            ("community", "day"): (
                s.quota_community_text_per_day if kind == "text" else s.quota_community_images_per_day
            ),
        }
        out = []
        for (scope, period), limit in limits.items():
            who = ("user", user_id) if scope == "user" else ("all",)
            stamp, resets = (str(minute), (minute + 1) * 60.0) if period == "minute" else (day, day_end)
            key = keys.community(community_key, "quota", kind, *who, period, stamp)
            out.append(Window(key, scope, period, limit, resets))  # type: ignore[arg-type]
        return out

    async def acquire(
        self, community_key: str, user_id: str, kind: Kind, cost: int = 1, now: float | None = None
    ) -> Ticket:
        """Count one request against every window, or raise QuotaExceeded saying when to try again
        (BudgetExceeded once the community or the deployment spent its daily money cap)."""
        await self.budget.check(community_key, now)
        windows = self.windows(community_key, user_id, kind, now)
        args: list[int] = [cost]
        for w in windows:
            args += [w.limit, max(1, int(w.resets_at - (now or time.time())) + 5)]
        full = int(await self._acquire(keys=[w.key for w in windows], args=args))
        if full:
            raise _exceeded(windows[full - 1], kind, now)
        return Ticket(tuple(w.key for w in windows), cost)

    async def release(self, ticket: Ticket) -> None:
        await self._release(keys=list(ticket.keys), args=[ticket.cost])

    async def state(
        self, community_key: str, user_id: str, kind: Kind, now: float | None = None
    ) -> list[WindowState]:
        windows = self.windows(community_key, user_id, kind, now)
        values = await self.redis.mget([w.key for w in windows])
        return [
            WindowState(w.scope, w.period, int(v or 0), w.limit, w.resets_at)
            for w, v in zip(windows, values, strict=True)
        ]

    # -- usage --------------------------------------------------------------------------------
    def estimate_cost(self, model: str, *, tokens_in: int = 0, tokens_out: int = 0, images: int = 0) -> float:
        """USD from the price table; unknown models (and the local one) cost nothing."""
        price = self.settings.prices.get(model, {})
        return (
            tokens_in * price.get("input", 0.0) / 1e6
            + tokens_out * price.get("output", 0.0) / 1e6
            + images * price.get("image", 0.0)
        )

    async def record(
        self,
        community_key: str,
        user_id: str,
        *,
        model: str,
        requests: int = 1,
        tokens_in: int = 0,
        tokens_out: int = 0,
        images: int = 0,
        now: float | None = None,
    ) -> str | None:
        """Count usage and its estimated cost against the money caps; returns the moderators' warning
        the first time today the community passes the warning share of its cap."""
        cost = self.estimate_cost(model, tokens_in=tokens_in, tokens_out=tokens_out, images=images)
        metrics.usage(model, tokens_in=tokens_in, tokens_out=tokens_out, images=images, cost_usd=cost)
        day = _day(time.time() if now is None else now)
        fields = {
            "requests": requests,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "images": images,
            "cost_micro": round(cost * MICRO),
        }
        community = keys.community(community_key, "usage", day)
        user = keys.community(community_key, "usage", day, "user", user_id)
        users = keys.community(community_key, "usage", day, "users")
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in (community, user):
                for name, value in fields.items():
                    if value:
                        pipe.hincrby(key, name, value)
                pipe.expire(key, USAGE_TTL_S)
            if requests:
                pipe.zincrby(users, requests, user_id)
                pipe.expire(users, USAGE_TTL_S)
            await pipe.execute()
        return await self.budget.charge(community_key, cost, now)

    async def usage(
        self, community_key: str, *, user_id: str | None = None, days: int = 1, now: float | None = None
    ) -> UsageTotals:
        """Totals over the last ``days`` UTC days (today included), for the community or one user."""
        now = time.time() if now is None else now
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in range(days):
                day = _day(now - i * 86400)
                parts = ("usage", day, "user", user_id) if user_id else ("usage", day)
                pipe.hgetall(keys.community(community_key, *parts))
            rows = await pipe.execute()
        total: dict[str, int] = {}
        for row in rows:
            for name, value in row.items():
                key = as_str(name)
                total[key] = total.get(key, 0) + int(value)
        return UsageTotals(
            requests=total.get("requests", 0),
            tokens_in=total.get("tokens_in", 0),
            tokens_out=total.get("tokens_out", 0),
            images=total.get("images", 0),
            cost_usd=total.get("cost_micro", 0) / MICRO,
        )

    async def top_users(
        self, community_key: str, n: int = 5, now: float | None = None
    ) -> list[tuple[str, int]]:
        day = _day(time.time() if now is None else now)
        rows: Any = await self.redis.zrevrange(
            keys.community(community_key, "usage", day, "users"), 0, n - 1, withscores=True
        )
        return [(as_str(u), int(score)) for u, score in rows]


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")


def _exceeded(window: Window, kind: Kind, now: float | None) -> QuotaExceeded:
    wait = max(1, int(window.resets_at - (time.time() if now is None else now)))
    what = "requests" if kind == "text" else "images"
    who = "You have" if window.scope == "user" else "This community has"
    when = _when(wait, window.resets_at)
    if window.period == "minute":
        msg = f"{who} reached the limit of {window.limit} {what} per minute. Try again in {wait} s."
    else:
        msg = f"{who} used all {window.limit} {what} for today. Try again {when}."
    return QuotaExceeded(msg, retry_at=window.resets_at)


def _when(wait_s: int, at: float) -> str:
    if wait_s < 3600:
        return f"in {max(1, wait_s // 60)} min"
    hours, minutes = divmod(wait_s // 60, 60)
    clock = datetime.fromtimestamp(at, UTC).strftime("%H:%M UTC")
    return f"in {hours} h {minutes} min (at {clock})"
