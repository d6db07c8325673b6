"""The rails' decisions and counters on real Redis (the end-to-end holds are in test_adapter.py)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import redis.asyncio as aioredis

from bots.x.api import Me
from bots.x.config import XSettings
from bots.x.normalize import Includes
from bots.x.rails import DAY_S, PostBudget, Rails

ME = Me(id="100", username="chorus_bot")
NOW = 1_750_000_000.0
_ids = itertools.count(1_900_000_000_000_000_000)
NOBODY = Includes.of({"includes": {"users": [{"id": "666", "username": "Spam_Bot"}]}})


def tweet(author: str = "200", *, conversation: str = "1", age_s: float = 0, **extra: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    created = datetime.fromtimestamp(NOW - age_s, UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": str(next(_ids)),
        "author_id": author,
        "conversation_id": conversation,
        "created_at": created,
        **extra,
    }


def rails(redis: aioredis.Redis, clock: list[float] | None = None, **settings: Any) -> Rails:
    now = clock or [NOW]
    return Rails(redis, XSettings(**settings), ME, clock=lambda: now[0])


async def test_static_rails(redis: aioredis.Redis) -> None:
    r = rails(redis, X_BOT_ACCOUNTS="@spam_bot", X_MAX_MENTION_AGE_S=3600)
    assert (await r.admit(tweet("100"), NOBODY)).reason == "own_post"
    assert (
        await r.admit(tweet(referenced_tweets=[{"type": "retweeted", "id": "5"}]), NOBODY)
    ).reason == "retweet"
    assert (await r.admit(tweet("666"), NOBODY)).reason == "bot_account"
    assert (await r.admit(tweet(age_s=3601), NOBODY)).reason == "too_old"
    assert (await r.admit(tweet(age_s=3599), NOBODY)).answer
    assert (
        await rails(redis, X_MAX_MENTION_AGE_S=0).admit(tweet(age_s=10 * DAY_S), NOBODY)
    ).answer  # rail off


async def test_one_decision_per_mention_ever(redis: aioredis.Redis) -> None:
    r = rails(redis)
    t = tweet()
    first = await r.admit(t, NOBODY)
    assert first.answer and first.fresh
    again = await r.admit(t, NOBODY)  # re-polled before its Event was published (a crash): publish again
    assert again.answer and not again.fresh
    await r.published(t["id"])
    assert (await r.admit(t, NOBODY)).reason == "already_answered"


async def test_caps_count_answers_per_author_per_day_and_in_total(redis: aioredis.Redis) -> None:
    clock = [NOW]
    r = rails(redis, clock, X_REPLIES_PER_AUTHOR_PER_DAY=2, X_REPLIES_PER_DAY=3, X_MAX_MENTION_AGE_S=0)
    results = [(await r.admit(tweet("200", conversation=str(i)), NOBODY)).reason for i in range(3)]
    assert results == ["", "", "author_cap"]
    assert (await r.admit(tweet("300"), NOBODY)).answer  # another author: 3 in total
    assert (await r.admit(tweet("400"), NOBODY)).reason == "daily_cap"
    refused = tweet("200")
    await r.admit(refused, NOBODY)
    clock[0] += DAY_S  # the next UTC day: fresh counters, but a refused mention stays refused
    assert (await r.admit(tweet("200"), NOBODY)).answer
    assert (await r.admit(refused, NOBODY)).reason == "author_cap"


async def test_conversation_depth_and_owner_exemptions(redis: aioredis.Redis) -> None:
    r = rails(redis, X_MAX_CONVERSATION_DEPTH=2, X_REPLIES_PER_AUTHOR_PER_DAY=1, X_OWNER_ACCOUNTS="400")
    assert [(await r.admit(tweet(a, conversation="c1"), NOBODY)).reason for a in ("200", "300", "500")] == [
        "",
        "",
        "conversation_depth",
    ]
    owner = [(await r.admit(tweet("400", conversation="c1"), NOBODY)).answer for _ in range(3)]
    assert owner == [True, True, True]  # owners are exempt from the per-author cap and the depth


async def test_numeric_rails_are_off_at_zero(redis: aioredis.Redis) -> None:
    r = rails(redis, X_REPLIES_PER_AUTHOR_PER_DAY=0, X_REPLIES_PER_DAY=0, X_MAX_CONVERSATION_DEPTH=0)
    assert all([(await r.admit(tweet(conversation="c"), NOBODY)).answer for _ in range(30)])


async def test_concurrent_pollers_never_overshoot_a_cap(redis: aioredis.Redis) -> None:
    r1, r2 = rails(redis, X_REPLIES_PER_AUTHOR_PER_DAY=5), rails(redis, X_REPLIES_PER_AUTHOR_PER_DAY=5)
    mentions = [tweet("200", conversation=str(i)) for i in range(20)]
    decisions = await asyncio.gather(*(r.admit(m, NOBODY) for m in mentions for r in (r1, r2)))
    fresh = [d for d in decisions if d.fresh]
    assert len(fresh) == 5  # each mention admitted once, by one of the two, and five in all


async def test_post_budget_rolls_over_24_hours(redis: aioredis.Redis) -> None:
    clock = [NOW]
    budget = PostBudget(redis, ME, 2, clock=lambda: clock[0])
    first, _ = await budget.take()
    clock[0] += 100
    second, _ = await budget.take()
    slot, wait = await budget.take()
    assert first and second and slot == "" and abs(wait - (DAY_S - 100)) < 1
    await budget.give_back(second)  # X did not create it
    third, _ = await budget.take()
    assert third
    clock[0] = NOW + DAY_S + 1  # the first one left the window
    assert (await budget.take())[0]
