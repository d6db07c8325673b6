from __future__ import annotations

import redis.asyncio as aioredis

from core.community import APPROVAL, approval_required, approval_setting, settings_key
from tests.support import CATALOG


async def test_approval_defaults_to_required_for_x_only(redis: aioredis.Redis) -> None:
    assert await approval_setting(redis, "discord:1") is None
    assert await approval_required(redis, "discord:1", CATALOG["x"])
    assert not await approval_required(redis, "discord:1", CATALOG["telegram"])


async def test_a_community_choice_applies_to_every_target(redis: aioredis.Redis) -> None:
    await redis.hset(settings_key("discord:1"), APPROVAL, "on")
    await redis.hset(settings_key("discord:2"), APPROVAL, "off")
    assert await approval_setting(redis, "discord:1") == "on"
    assert await approval_required(redis, "discord:1", CATALOG["telegram"])
    assert not await approval_required(redis, "discord:2", CATALOG["x"])
    assert await approval_required(redis, "discord:3", CATALOG["x"])  # other communities keep the default


async def test_an_unknown_stored_value_counts_as_the_default(redis: aioredis.Redis) -> None:
    await redis.hset(settings_key("discord:1"), APPROVAL, "maybe")
    assert await approval_setting(redis, "discord:1") is None
    assert await approval_required(redis, "discord:1", CATALOG["x"])
    assert settings_key("discord:1") == "chorus:{c:discord:1}:settings"
