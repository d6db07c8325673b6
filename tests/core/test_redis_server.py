from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from core.errors import StorageError
from core.redis_cluster import LocalCluster
from core.redis_server import EmbeddedRedis, connect, describe, open_redis, redis_server_binary
from core.settings import Settings

REUSE = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from core.redis_server import EmbeddedRedis
server = EmbeddedRedis(Path({data!r}))
print("started" if server.ensure_running() else "reused")
"""


def _client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket))


def test_acknowledged_data_survives_a_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    assert server.ensure_running() is True
    with _client(server) as r:
        r.xadd("chorus:{bus}:events", {"e": "payload"})
        r.set("kept", "yes")
    server.release()
    assert not server.ping()
    assert list((tmp_path / "redis").glob("appendonly*"))
    again = EmbeddedRedis(tmp_path)
    assert again.ensure_running() is True
    with _client(again) as r:
        assert r.get("kept") == b"yes"
        assert r.xlen("chorus:{bus}:events") == 1
    again.release()


def test_second_process_reuses_the_running_server(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.ensure_running()
    try:
        code = REUSE.format(root=str(Path(__file__).resolve().parents[2]), data=str(tmp_path))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "reused", out.stderr
        assert server.ping()
    finally:
        server.release()


def test_release_leaves_the_server_up_while_another_chorus_process_uses_it(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.ensure_running()
    other = redis.Redis(unix_socket_path=str(server.socket), client_name="chorus-999999")
    other.ping()
    server.release()
    assert server.ping()  # still serving the other process
    other.close()
    server.release()
    assert not server.ping()


def test_long_data_dirs_get_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    server = EmbeddedRedis(deep)
    assert len(str(server.socket)) < 108
    assert server.ensure_running()
    server.release()


def test_unreachable_configured_redis_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(CHORUS_REDIS_URL=f"unix://{tmp_path}/nothing.sock", CHORUS_DATA_DIR=tmp_path)

    async def go() -> None:
        async with open_redis(settings):
            pass

    with pytest.raises(StorageError, match="cannot reach Redis"):
        asyncio.run(go())


async def test_pooled_connections_survive_a_redis_restart(tmp_path: Path) -> None:
    """After a restart every pooled connection is dead; with the client policy no command fails."""
    server = EmbeddedRedis(tmp_path)
    server.ensure_running()
    client = connect(server.url)
    try:
        await asyncio.gather(*(client.blpop([f"k{i}"], timeout=0.2) for i in range(8)))  # 8 pooled
        assert len(client.connection_pool._available_connections) >= 8
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        server.ensure_running()
        results = await asyncio.gather(*(client.incr(f"n{i}") for i in range(8)), return_exceptions=True)
        assert results == [1] * 8
    finally:
        await client.aclose()
        server.release()


async def test_open_redis_waits_for_a_redis_that_is_not_up_yet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedRedis(tmp_path / "later")
    settings = Settings(CHORUS_REDIS_URL=server.url, CHORUS_DATA_DIR=tmp_path)
    stop = asyncio.Event()

    async def start_later() -> None:
        await asyncio.sleep(2.0)
        await asyncio.to_thread(server.ensure_running)

    starting = asyncio.create_task(start_later())
    try:
        with caplog.at_level(logging.WARNING):
            async with open_redis(settings, stop) as client:
                assert await client.ping()
        said = [r.getMessage() for r in caplog.records if r.name == "core.redis_server"]
        assert len(said) == 2, said  # one warning while waiting, one when it answered
        assert "unavailable" in said[0] and "is back" in said[1]
    finally:
        await starting
        server.release()


async def test_open_redis_stops_waiting_when_asked(tmp_path: Path) -> None:
    settings = Settings(CHORUS_REDIS_URL=f"unix://{tmp_path}/nothing.sock", CHORUS_DATA_DIR=tmp_path)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.0, stop.set)
    with pytest.raises(StorageError, match="stopped while waiting"):
        async with open_redis(settings, stop):
            pass


async def test_a_cluster_url_gets_the_cluster_client(redis_cluster: LocalCluster, tmp_path: Path) -> None:
    settings = Settings(CHORUS_REDIS_URL=redis_cluster.url, CHORUS_DATA_DIR=tmp_path)
    async with open_redis(settings) as client:
        assert isinstance(client, aioredis.RedisCluster)
        await client.set("{a}x", "1")  # slots on different masters: the client follows them
        await client.set("{b}x", "2")
        assert [await client.get("{a}x"), await client.get("{b}x")] == [b"1", b"2"]
    assert describe(settings) == "Redis Cluster (CHORUS_REDIS_URL, redis+cluster://); 12 bus partitions"


async def test_a_plain_url_to_a_cluster_node_says_how_to_write_it(
    redis_cluster: LocalCluster, tmp_path: Path
) -> None:
    plain = redis_cluster.url.replace("redis+cluster://", "redis://")
    with pytest.raises(StorageError, match=r"redis\+cluster://"):
        async with open_redis(Settings(CHORUS_REDIS_URL=plain, CHORUS_DATA_DIR=tmp_path)):
            pass


def test_config_check_names_the_mode_and_partitions(tmp_path: Path) -> None:
    embedded = Settings(CHORUS_DATA_DIR=tmp_path)
    assert describe(embedded) == "embedded (private redis-server under the data dir); 12 bus partitions"
    valkey = embedded.model_copy(update={"redis_server": Path("/usr/bin/valkey-server")})
    assert describe(valkey).startswith("embedded (private valkey-server under the data dir)")
    moving = Settings(
        CHORUS_REDIS_URL="redis://localhost:6379",
        CHORUS_BUS_PARTITIONS=24,
        CHORUS_BUS_PARTITIONS_PREVIOUS=12,
        CHORUS_REDIS_WAIT_REPLICAS=1,
    )
    assert describe(moving) == (
        "one server (CHORUS_REDIS_URL); 24 bus partitions (still draining the previous 12), "
        "each Event on 1 replica(s) before it is accepted (WAIT)"
    )


def test_the_operator_chooses_the_server_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``CHORUS_REDIS_SERVER`` (e.g. a valkey-server) is the binary the embedded server runs."""
    chosen = tmp_path / "bin" / "my-redis-server"
    chosen.parent.mkdir()
    chosen.symlink_to(redis_server_binary())
    monkeypatch.setenv("CHORUS_REDIS_SERVER", str(chosen))
    settings = Settings(CHORUS_DATA_DIR=tmp_path / "data")
    assert settings.redis_server == chosen
    server = EmbeddedRedis(settings.data_dir, settings.redis_server)
    server.ensure_running()
    try:
        assert server.process is not None
        assert server.process.args[0] == str(chosen)  # type: ignore[index]
        assert server.ping()
    finally:
        server.release()


def test_a_chosen_binary_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"CHORUS_REDIS_SERVER=.*not an executable file"):
        EmbeddedRedis(tmp_path, tmp_path / "valkey-server").ensure_running()
