from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from core.errors import InvalidInput
from core.feed import keys as fk
from core.feed.subscriptions import Schedule, Subscription, SubscriptionStore, parse_subscribe

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster


def _ts(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def _local(t: float, tz: str) -> str:
    return datetime.fromtimestamp(t, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def test_parse_in_any_order() -> None:
    r = parse_subscribe("weekly fri 18:30 europe/berlin all launch, Rust")
    assert r.schedule == Schedule("weekly", 18, 30, 4, "Europe/Berlin")
    assert r.scope == "all" and r.topics == ("launch", "rust") and r.dm is None
    r = parse_subscribe("")
    assert r.schedule == Schedule("daily", 9, 0, 0, "UTC") and r.scope == "community" and r.topics == ()
    r = parse_subscribe("hourly dm")
    assert r.schedule.frequency == "hourly" and r.schedule.minute == 0 and r.dm is True
    r = parse_subscribe("daily 7:05 America/New_York this community")
    assert r.schedule == Schedule("daily", 7, 5, 0, "America/New_York") and r.scope == "community"


@pytest.mark.parametrize("bad", ["daily 25:00", "daily 9:5", "Mars/Olympus", "at 12:00pm"])
def test_parse_errors_say_what_was_wrong(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_subscribe(bad)
    assert "HH:MM" in err.value.user_message


def test_daily_across_spring_forward_and_fall_back() -> None:
    tz = "Europe/Berlin"
    s = Schedule("daily", 2, 30, 0, tz)  # 02:30 does not exist on 31 March and exists twice on 27 October
    t = _ts("2024-03-29 12:00", tz)
    runs = []
    for _ in range(4):
        t = s.next_after(t)
        runs.append(_local(t, tz))
    assert runs == [
        "2024-03-30 02:30 CET",
        "2024-03-31 03:30 CEST",
        "2024-04-01 02:30 CEST",
        "2024-04-02 02:30 CEST",
    ]
    t = _ts("2024-10-26 12:00", tz)
    runs = [_local(t := s.next_after(t), tz) for _ in range(2)]
    assert runs == ["2024-10-27 02:30 CEST", "2024-10-28 02:30 CET"]  # once, at the first 02:30
    start, end = s.window(_ts("2024-10-28 02:30", tz))
    assert end - start == 25 * 3600  # the window is the whole (long) local day


def test_hourly_with_a_half_hour_zone_and_weekly() -> None:
    s = Schedule("hourly", 0, 15, 0, "Asia/Kolkata")  # UTC+05:30
    t = s.next_after(_ts("2024-01-01 00:00"))
    assert datetime.fromtimestamp(t, ZoneInfo("Asia/Kolkata")).minute == 15
    assert s.next_after(t) - t == 3600 and s.latest(t + 10) == t and s.previous(t) == t - 3600
    w = Schedule("weekly", 8, 0, 0, "America/New_York")
    t = w.next_after(_ts("2024-11-01 12:00", "America/New_York"))  # DST ends 3 November
    assert _local(t, "America/New_York") == "2024-11-04 08:00 EST"
    assert w.window(t)[1] - w.window(t)[0] == 7 * 86400 + 3600


def test_slots_group_equal_schedules() -> None:
    assert Schedule("hourly", 7, 15).slot == Schedule("hourly", 9, 15).slot
    assert Schedule("daily", 9, 0, 3).slot == Schedule("daily", 9, 0, 5).slot
    assert Schedule.from_slot(Schedule("weekly", 8, 0, 2, "Asia/Tokyo").slot) == Schedule(
        "weekly", 8, 0, 2, "Asia/Tokyo"
    )
    assert "08:00" in Schedule("weekly", 8, 0, 2, "Asia/Tokyo").describe()


async def test_store_indexes_by_slot_and_user(redis: aioredis.Redis) -> None:
    store = SubscriptionStore(redis)
    sub = Subscription(id="s1", platform="telegram", community="-1", channel="c", user="u")
    assert await store.save(sub) is None
    moved = sub.model_copy(update={"hour": 18})
    assert await store.save(moved) == sub
    members = [m async for chunk in store.slot_members(moved.schedule.slot) for m in chunk]
    assert members == ["s1"]
    assert [m async for chunk in store.slot_members(sub.schedule.slot) for m in chunk] == []
    assert [s.id for s in await store.for_user("telegram", "-1", "u")] == ["s1"]
    assert await store.for_user("telegram", "-2", "u") == []  # another community sees nothing
    await store.remove(moved)
    assert await store.get("s1") is None and await store.for_user("telegram", "-1", "u") == []


async def test_a_communitys_subscriptions_are_listed_including_those_made_before_the_index(
    redis: aioredis.Redis,
) -> None:
    store = SubscriptionStore(redis)
    old = Subscription(
        id="s-old", platform="telegram", community="-1", channel="c", user="u1", created_at=1.0
    )
    other = Subscription(id="s-other", platform="telegram", community="-1:x", channel="c", user="u9")
    for sub in (old, other):
        await store.save(sub)
    await redis.delete(fk.community_subscriptions("telegram", "-1"))  # as before the community index existed
    await redis.delete(fk.community_subscriptions("telegram", "-1:x"))
    new = Subscription(
        id="s-new", platform="telegram", community="-1", channel="c", user="u2", created_at=2.0
    )
    await store.save(new)
    assert [s.id for s in await store.for_community("telegram", "-1")] == ["s-old", "s-new"]
    assert [s.id for s in await store.for_community("telegram", "-1:x")] == ["s-other"]  # no prefix mix-up
    await store.remove(old)
    assert [s.id for s in await store.for_community("telegram", "-1")] == ["s-new"]
    assert await redis.sismember(fk.community_subscriptions("telegram", "-1"), "")  # complete: no scan again
