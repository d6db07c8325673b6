"""Digest subscriptions: what ``/subscribe`` means, when each digest is due, and where they are stored.

Schedules are local wall-clock times in an IANA time zone, computed with ``zoneinfo`` so that DST changes
neither skip nor repeat a digest: a daily digest has exactly one instant per local date (a time that does
not exist that day runs at the same instant as the hour after the gap; a time that exists twice runs at
the first). A digest's window is the time from the previous instant to its own, so consecutive digests
neither overlap nor leave gaps, even across a 23- or 25-hour day.

Subscribers with the same schedule share one scheduled job (a "slot"), so the scheduler handles a few
jobs however many subscribers there are. A subscription, its slot membership and its digests' "sent"
markers live in the feed partition of its id (``fk.sub_part``), so a cluster spreads them; a digest round
reads each partition's members of the slot and claims each partition's markers with one call.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from core.catalog import PlatformCatalog
from core.decode import as_str
from core.errors import InvalidInput
from core.feed import keys as fk
from core.feed.timelines import Scope, normalise_topics

Frequency = Literal["hourly", "daily", "weekly"]
FREQUENCIES: tuple[Frequency, ...] = ("hourly", "daily", "weekly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-3])[:h.]([0-5]\d)$")
_NOISE = {"this", "in", "the", "at", "on", "every", "scope", "scope:", "to", "for", "me", "a"}


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def find_zone(token: str) -> str | None:
    name = _zones().get(token.lower())
    if name is None and token.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    return name


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class Schedule:
    frequency: Frequency = "daily"
    hour: int = 9
    minute: int = 0
    weekday: int = 0  # 0 = Monday; weekly digests only
    tz: str = "UTC"

    @property
    def slot(self) -> str:
        """Subscribers with equal slots are due at the same instants."""
        hour = 0 if self.frequency == "hourly" else self.hour
        weekday = self.weekday if self.frequency == "weekly" else 0
        return f"{self.frequency}|{hour:02d}:{self.minute:02d}|{weekday}|{self.tz}"

    @classmethod
    def from_slot(cls, slot: str) -> Schedule:
        frequency, at, weekday, tz = slot.split("|")
        hour, minute = at.split(":")
        if frequency not in FREQUENCIES:
            raise ValueError(f"bad slot {slot!r}")
        return cls(frequency, int(hour), int(minute), int(weekday), tz)

    def describe(self) -> str:
        at = f"{self.hour:02d}:{self.minute:02d}"
        if self.frequency == "hourly":
            return f"hourly at :{self.minute:02d} ({self.tz})"
        if self.frequency == "weekly":
            return f"weekly on {WEEKDAYS[self.weekday].title()} at {at} ({self.tz})"
        return f"daily at {at} ({self.tz})"

    # -- instants ---------------------------------------------------------------------------------------
    def _local(self, day: date) -> float:
        zone = _zone(self.tz)
        return datetime(day.year, day.month, day.day, self.hour, self.minute, tzinfo=zone).timestamp()

    def _around(self, t: float) -> list[float]:
        """Every instant of this schedule within a little more than one period of ``t``, sorted."""
        zone = _zone(self.tz)
        if self.frequency == "hourly":
            base = int(t // 3600) * 3600
            out = []
            for h in range(-3, 4):
                hour_start = base + h * 3600
                offset = zone.utcoffset(datetime.fromtimestamp(hour_start, UTC))
                off = int(offset.total_seconds()) if offset is not None else 0
                out.append(float(hour_start + (self.minute * 60 - off) % 3600))
            return sorted(set(out))
        today = datetime.fromtimestamp(t, zone).date()
        span = 2 if self.frequency == "daily" else 9
        days = [today + timedelta(days=d) for d in range(-span, span + 1)]
        if self.frequency == "weekly":
            days = [d for d in days if d.weekday() == self.weekday]
        return sorted({self._local(d) for d in days})

    def latest(self, now: float) -> float:
        """The last instant at or before ``now`` (the window a late run still owes)."""
        return max(x for x in self._around(now) if x <= now)

    def next_after(self, t: float) -> float:
        return min(x for x in self._around(t) if x > t)

    def previous(self, instant: float) -> float:
        return max(x for x in self._around(instant) if x < instant)

    def window(self, instant: float) -> tuple[float, float]:
        return self.previous(instant), instant


class Subscription(BaseModel):
    """Who gets which digest, when, and where (a channel, or a direct message)."""

    id: str
    platform: str
    community: str
    channel: str
    thread: str | None = None
    user: str
    user_name: str = ""
    dm: bool = False
    frequency: Frequency = "daily"
    hour: int = Field(default=9, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)
    weekday: int = Field(default=0, ge=0, le=6)
    tz: str = "UTC"
    scope: Literal["community", "all"] = "community"
    topics: tuple[str, ...] = ()
    created_at: float = Field(default_factory=time.time)

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.frequency, self.hour, self.minute, self.weekday, self.tz)

    @property
    def community_key(self) -> str:
        return f"{self.platform}:{self.community}"

    @property
    def feed_scope(self) -> Scope:
        return _feed_scope(self.scope == "community", self.community_key, self.topics)

    def describe(self, platforms: PlatformCatalog) -> str:
        where = "by direct message" if self.dm else "in this channel"
        return f"{self.schedule.describe()}, {self.feed_scope.label(platforms)}, {where}"


@functools.lru_cache(maxsize=4096)
def _feed_scope(community: bool, community_key: str, topics: tuple[str, ...]) -> Scope:
    """Scopes are immutable and shared: a digest round asks for one per subscriber."""
    return Scope("community", community_key, topics) if community else Scope("all", "", topics)


SUBSCRIPTION_ID = re.compile(r"^[A-Za-z0-9_-]{12}$")
"""What ``subscription_id`` makes: 9 bytes of BLAKE2b in URL-safe base64 (``/unsubscribe <id>`` takes it)."""


def subscription_id(platform: str, community: str, user: str, target: str) -> str:
    raw = "\x1f".join((platform, community, user, target)).encode()
    return base64.urlsafe_b64encode(hashlib.blake2b(raw, digest_size=9).digest()).decode()


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    schedule: Schedule
    scope: Literal["community", "all"]
    topics: tuple[str, ...]
    dm: bool | None  # None: a DM when asked in private, else the channel


USAGE = (
    "Use /subscribe [hourly|daily|weekly] [HH:MM] [mon..sun] [time zone] [all|community] [dm] "
    "[topic words], e.g. /subscribe daily 08:30 Europe/Berlin all launch."
)


def parse_subscribe(args: str) -> SubscribeRequest:
    """Read ``/subscribe`` arguments in any order; unknown words become topics."""
    frequency: Frequency = "daily"
    hour, minute, weekday, tz = 9, 0, 0, "UTC"
    scope: Literal["community", "all"] = "community"
    dm: bool | None = None
    topics: list[str] = []
    seen_time = False
    for raw in args.split():
        token = raw.strip(",;")
        low = token.lower()
        if not low or low in _NOISE:
            continue
        if low in FREQUENCIES:
            frequency = low
        elif m := _TIME.match(low):
            hour, minute, seen_time = int(m.group(1)), int(m.group(2)), True
        elif low[:3] in WEEKDAYS and low in (low[:3], *_full_weekdays()):
            weekday = WEEKDAYS.index(low[:3])
        elif low == "all":
            scope = "all"
        elif low in ("community", "here-community"):
            scope = "community"
        elif low in ("dm", "private", "direct"):
            dm = True
        elif low in ("here", "channel"):
            dm = False
        elif low in ("topic", "topics", "about", "topic:", "topics:"):
            continue
        elif (zone := find_zone(token)) is not None:
            tz = zone
        elif any(c.isdigit() for c in low) or ":" in low or "/" in low:
            raise InvalidInput(f"I could not read “{token[:40]}” as a time (HH:MM) or a time zone. {USAGE}")
        else:
            topics.append(token)
    if frequency == "hourly" and not seen_time:
        minute = 0
    return SubscribeRequest(
        Schedule(frequency, hour, minute, weekday, tz), scope, normalise_topics(topics), dm
    )


def _full_weekdays() -> tuple[str, ...]:
    return ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def by_partition(subs: Sequence[Subscription]) -> dict[int, list[Subscription]]:
    """Subscriptions grouped by their feed partition, in their order."""
    groups: dict[int, list[Subscription]] = defaultdict(list)
    for sub in subs:
        groups[fk.sub_part(sub.id)].append(sub)
    return groups


# KEYS[1] a partition's prefix of subscriptions. ARGV: subscription ids joined by US (one argument, not a key each). Returns their JSON joined by GS.
_LOAD = """
local out = {}
for id in string.gmatch(ARGV[1], '[^\\31]+') do out[#out + 1] = redis.call('GET', KEYS[1] .. id) or '' end
return table.concat(out, '\\29')
"""


class SubscriptionStore:
    """Subscriptions in Redis, indexed by slot (for the scheduler) and by user (for the commands)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._load = redis.register_script(_LOAD)

    async def save(self, sub: Subscription) -> Subscription | None:
        """Store (or replace) a subscription; returns the one it replaced, if any."""
        old = await self.get(sub.id)
        part = fk.sub_part(sub.id)
        async with self.redis.pipeline(transaction=True) as pipe:  # one partition: one slot
            if old is not None and old.schedule.slot != sub.schedule.slot:
                pipe.srem(fk.slot(part, old.schedule.slot), sub.id)
            pipe.set(fk.subscription(sub.id), sub.model_dump_json())
            pipe.sadd(fk.slot(part, sub.schedule.slot), sub.id)
            await pipe.execute()
        # the person's index is the community's (another slot): written after, so it never names a
        # subscription that does not exist yet
        async with self.redis.pipeline(transaction=True) as pipe:  # both indexes are the community's
            pipe.sadd(fk.user_subscriptions(sub.platform, sub.community, sub.user), sub.id)
            pipe.sadd(fk.community_subscriptions(sub.platform, sub.community), sub.id)
            await pipe.execute()
        return old

    async def remove(self, sub: Subscription) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(fk.subscription(sub.id))
            pipe.srem(fk.slot(fk.sub_part(sub.id), sub.schedule.slot), sub.id)
            await pipe.execute()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(fk.user_subscriptions(sub.platform, sub.community, sub.user), sub.id)
            pipe.srem(fk.community_subscriptions(sub.platform, sub.community), sub.id)
            await pipe.execute()

    async def get(self, sub_id: str) -> Subscription | None:
        raw = await self.redis.get(fk.subscription(sub_id))
        return Subscription.model_validate_json(raw) if raw else None

    async def load(self, sub_ids: Sequence[str]) -> list[Subscription]:
        """Subscriptions by id (missing ones left out): one script call answering one string, which
        parses far faster than a thousand-element MGET reply."""
        if not sub_ids:
            return []
        groups: dict[int, list[str]] = defaultdict(list)
        for sub_id in sub_ids:
            groups[fk.sub_part(sub_id)].append(sub_id)
        replies = await asyncio.gather(
            *(
                self._load(keys=[fk.prefix(part) + fk.SUB_], args=["\x1f".join(ids)])
                for part, ids in groups.items()
            )
        )
        found: dict[str, Subscription] = {}
        for raw in replies:
            data = raw.encode() if isinstance(raw, str) else (raw or b"")
            for r in data.split(b"\x1d"):
                if r:
                    sub = Subscription.model_validate_json(r)
                    found[sub.id] = sub
        return [found[i] for i in sub_ids if i in found]

    async def for_user(self, platform: str, community: str, user: str) -> list[Subscription]:
        ids = await self.redis.smembers(fk.user_subscriptions(platform, community, user))
        subs = await self.load(sorted(as_str(i) for i in ids))
        return sorted(subs, key=lambda s: s.created_at)

    async def for_community(self, platform: str, community: str) -> list[Subscription]:
        """Every subscription of a community (moderators see and cancel them), oldest first."""
        index = fk.community_subscriptions(platform, community)
        ids = {as_str(i) for i in await self.redis.smembers(index)}
        if "" not in ids:  # not complete yet: add what the users' own sets hold, once
            pattern = _glob_literal(fk.user_subscriptions(platform, community, "")) + "*"
            async for key in self.redis.scan_iter(match=pattern, count=1000, _type="set"):
                ids |= {as_str(i) for i in await self.redis.smembers(key)}
            await self.redis.sadd(index, "", *ids)
        ids.discard("")
        subs = [s for s in await self.load(sorted(ids)) if (s.platform, s.community) == (platform, community)]
        return sorted(subs, key=lambda s: (s.created_at, s.id))

    async def slot_members(self, slot: str, batch: int = 1000) -> AsyncIterator[list[str]]:
        """Subscription ids of a slot, in batches (SSCAN: no huge replies, no blocking)."""
        for part in range(fk.PARTITIONS):
            cursor: int = 0
            while True:
                cursor, chunk = await self.redis.sscan(fk.slot(part, slot), cursor, count=batch)
                if chunk:
                    yield [as_str(c) for c in chunk]
                if cursor == 0:
                    break


def _glob_literal(text: str) -> str:
    """``text`` matched literally by a SCAN pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
