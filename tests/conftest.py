"""Shared fixtures: one real embedded Redis per test session, flushed between tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from core.app import build_services
from core.redis_server import EmbeddedRedis, connect
from core.services import Services
from core.settings import Settings

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost,::1")
for _var in (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "TELEGRAM_BOT_TOKEN",
    "DISCORD_BOT_TOKEN",
    "X_API_KEY",
    "CHORUS_REDIS_URL",
):
    os.environ.pop(_var, None)

# Property tests (tests/**/test_*_props.py): a few hundred examples each in CI and `make test`;
# `make fuzz` selects the "fuzz" profile (HYPOTHESIS_PROFILE=fuzz): 10,000 examples each, no deadline.
hypothesis_settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile(
    "fuzz", max_examples=10_000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True,
)  # fmt: skip
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-data"))
    server.ensure_running()
    yield server
    server.release()


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def settings(tmp_path: Path, redis_server: EmbeddedRedis) -> Settings:
    return Settings(
        CHORUS_DATA_DIR=tmp_path / "data",
        CHORUS_REDIS_URL=redis_server.url,
        CHORUS_CLAIM_IDLE_MS=600,
    )


@pytest.fixture
async def services(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Services]:
    svc = await build_services(settings, redis)
    yield svc
    await svc.aclose()
