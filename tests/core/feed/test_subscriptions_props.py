"""``/subscribe`` arguments in any order and any spelling: a valid schedule in a real time zone, or a clear
message; the schedule's instants behave across DST changes in every zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo, available_timezones

from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.feed.subscriptions import FREQUENCIES, Schedule, find_zone, parse_subscribe

ZONES = sorted(available_timezones())
_WORDS = st.sampled_from(
    ["hourly", "daily", "weekly", "DAILY", "08:30", "8h15", "23.59", "24:00", "7:5", "mon", "Friday", "sun",
     "all", "community", "dm", "here", "channel", "topic", "about", "launch", "AI", "in", "at", "every",
     "utc", "Z", "gmt", "europe/berlin", "America/New_York", "Asia/Kolkata", "Mars/Olympus", "+02:00", "12",
     ",", ";", "😀", "日本"]
) | st.sampled_from(ZONES) | st.text(max_size=8)  # fmt: skip
args = st.lists(_WORDS, max_size=10).map(" ".join)


@given(text=args)
def test_any_arguments_give_a_valid_schedule_or_a_clear_message(text: str) -> None:
    try:
        request = parse_subscribe(text)
    except InvalidInput as exc:
        assert "/subscribe" in exc.user_message and len(exc.user_message) < 400
        return
    s = request.schedule
    assert s.frequency in FREQUENCIES and 0 <= s.hour <= 23 and 0 <= s.minute <= 59 and 0 <= s.weekday <= 6
    ZoneInfo(s.tz)  # a real zone
    assert Schedule.from_slot(s.slot).slot == s.slot
    assert s.describe()
    assert len(request.topics) <= 8 and all(0 < len(t) <= 40 for t in request.topics)
    assert request.scope in ("community", "all")


@given(zone=st.sampled_from(ZONES), token_case=st.sampled_from([str.lower, str.upper, str.title]))
def test_time_zones_are_found_in_any_case(zone: str, token_case: object) -> None:
    assert find_zone(token_case(zone)) == zone  # type: ignore[operator]


_PERIOD = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}


@given(
    frequency=st.sampled_from(FREQUENCIES), hour=st.integers(0, 23), minute=st.integers(0, 59),
    weekday=st.integers(0, 6), tz=st.sampled_from(ZONES), t=st.floats(0, 4_102_444_800),
)  # fmt: skip
def test_instants_surround_any_time(
    frequency: str, hour: int, minute: int, weekday: int, tz: str, t: float
) -> None:
    s = Schedule(frequency, hour, minute, weekday, tz)  # type: ignore[arg-type]
    latest, upcoming = s.latest(t), s.next_after(t)
    assert latest <= t < upcoming
    slack = 3 * 3600  # a DST jump moves a local time by up to an hour (two zones by more, historically)
    assert upcoming - latest <= _PERIOD[frequency] + slack
    start, end = s.window(latest)
    assert start < end == latest
