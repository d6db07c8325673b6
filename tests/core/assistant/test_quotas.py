from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from core.assistant.quotas import Quotas
from core.errors import QuotaExceeded
from core.settings import Settings

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster


def _settings(settings: Settings, **limits: int) -> Settings:
    return settings.model_copy(update=limits)


async def test_fifty_concurrent_requests_against_a_quota_of_ten_accept_exactly_ten(
    redis: aioredis.Redis, settings: Settings
) -> None:
    quotas = Quotas(redis, _settings(settings, quota_user_text_per_minute=10, quota_user_text_per_day=1000))

    async def one() -> bool:
        try:
            await quotas.acquire("test:c1", "u1", "text")
        except QuotaExceeded:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(50)))
    assert sum(results) == 10
    [user_minute] = [
        s for s in await quotas.state("test:c1", "u1", "text") if s.scope == "user" and s.period == "minute"
    ]
    assert user_minute.used == 10 and user_minute.remaining == 0


async def test_concurrent_users_share_the_community_daily_quota(
    redis: aioredis.Redis, settings: Settings
) -> None:
    quotas = Quotas(
        redis, _settings(settings, quota_community_text_per_day=10, quota_community_text_per_minute=100)
    )
    results = await asyncio.gather(
        *(quotas.acquire("test:c1", f"user{i}", "text") for i in range(50)), return_exceptions=True
    )
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(accepted) == 10 and len(refused) == 40
    assert "This community has used all 10 requests for today" in refused[0].user_message


async def test_over_limit_message_says_when_to_try_again(redis: aioredis.Redis, settings: Settings) -> None:
    quotas = Quotas(redis, _settings(settings, quota_user_images_per_minute=1))
    now = 1_700_000_030.0  # 30 s into a minute
    await quotas.acquire("test:c1", "u1", "image", now=now)
    with pytest.raises(QuotaExceeded) as info:
        await quotas.acquire("test:c1", "u1", "image", now=now)
    assert info.value.retry_at == 1_700_000_040.0  # the next minute boundary (1_700_000_040 % 60 == 0)
    assert "1 images per minute" in info.value.user_message and "Try again in 10 s" in info.value.user_message


async def test_daily_quota_resets_at_utc_midnight(redis: aioredis.Redis, settings: Settings) -> None:
    quotas = Quotas(redis, _settings(settings, quota_user_text_per_day=1))
    noon = 1_700_049_600.0  # 2023-11-15 12:00 UTC
    await quotas.acquire("test:c1", "u1", "text", now=noon)
    with pytest.raises(QuotaExceeded) as info:
        await quotas.acquire("test:c1", "u1", "text", now=noon)
    assert info.value.retry_at == 1_700_092_800.0  # 2023-11-16 00:00 UTC
    assert "at 00:00 UTC" in info.value.user_message
    await quotas.acquire("test:c1", "u1", "text", now=1_700_092_801.0)  # next day: allowed again


async def test_text_and_image_quotas_and_communities_are_separate(
    redis: aioredis.Redis, settings: Settings
) -> None:
    quotas = Quotas(redis, _settings(settings, quota_user_text_per_minute=1, quota_user_images_per_minute=1))
    await quotas.acquire("test:c1", "u1", "text")
    await quotas.acquire("test:c1", "u1", "image")
    await quotas.acquire("test:c2", "u1", "text")  # same user id, another community
    with pytest.raises(QuotaExceeded):
        await quotas.acquire("test:c1", "u1", "text")


async def test_a_refused_request_counts_nothing_and_a_release_gives_units_back(
    redis: aioredis.Redis, settings: Settings
) -> None:
    quotas = Quotas(redis, _settings(settings, quota_user_text_per_minute=2, quota_community_text_per_day=2))
    ticket = await quotas.acquire("test:c1", "u1", "text")
    await quotas.acquire("test:c1", "u1", "text")
    with pytest.raises(QuotaExceeded):
        await quotas.acquire("test:c1", "u2", "text")  # community full: u2's own windows stay untouched
    states = {(s.scope, s.period): s.used for s in await quotas.state("test:c1", "u2", "text")}
    assert states[("user", "minute")] == 0 and states[("user", "day")] == 0
    await quotas.release(ticket)
    await quotas.acquire("test:c1", "u2", "text")


async def test_usage_counters_and_estimated_cost(redis: aioredis.Redis, settings: Settings) -> None:
    quotas = Quotas(redis, settings)
    now = time.time()
    await quotas.record("test:c1", "u1", model="gpt-4.1-mini", tokens_in=1000, tokens_out=500, now=now)
    await quotas.record("test:c1", "u2", model="gpt-4.1-mini", tokens_in=1000, tokens_out=500, now=now)
    await quotas.record("test:c1", "u1", model="gpt-image-1", requests=0, images=2, now=now)
    await quotas.record("test:c1", "u1", model="local", tokens_in=10, tokens_out=10, now=now - 3 * 86400)
    today = await quotas.usage("test:c1", now=now)
    assert (today.requests, today.tokens_in, today.tokens_out, today.images) == (2, 2000, 1000, 2)
    expected = 2 * (1000 * 0.40 + 500 * 1.60) / 1e6 + 2 * 0.042
    assert today.cost_usd == pytest.approx(expected, abs=1e-6)
    week = await quotas.usage("test:c1", days=7, now=now)
    assert week.requests == 3 and week.tokens_in == 2010
    mine = await quotas.usage("test:c1", user_id="u2", now=now)
    assert mine.requests == 1 and mine.images == 0
    assert await quotas.top_users("test:c1", now=now) == [("u2", 1), ("u1", 1)] or (
        await quotas.top_users("test:c1", now=now)
    ) == [("u1", 1), ("u2", 1)]
    assert (await quotas.usage("test:c2", now=now)).requests == 0
