"""The cluster client on a real 3-master cluster: transactions queue their commands without a thread (which
blocked the event loop), and still refuse two slots."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException

from core.cluster_client import ClusterClient
from core.redis_cluster import LocalCluster
from core.redis_server import connect


@pytest.fixture
async def cluster(redis_cluster: LocalCluster) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_cluster.url)
    assert isinstance(client, ClusterClient)
    await client.flushall()
    yield client
    await client.aclose()


async def test_a_transaction_is_queued_without_a_thread_and_runs_atomically(
    cluster: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[threading.Thread] = []
    real_start = threading.Thread.start

    def spy(thread: threading.Thread) -> None:
        started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", spy)
    async with cluster.pipeline(transaction=True) as pipe:
        pipe.xadd("out:{p1}", {"a": "1"})
        pipe.set("done:{p1}:e1", "[]", ex=60)
        pipe.hincrby("attempts:{p1}", "e1", 1)
        pipe.hdel("attempts:{p1}", "e1")
        replies = await pipe.execute()
    assert started == []  # redis-py 8.1 starts (and joins) a thread per queued command
    assert replies[1:] == [True, 1, 1]
    assert await cluster.get("done:{p1}:e1") == b"[]"
    assert await cluster.xlen("out:{p1}") == 1


async def test_a_transaction_over_two_slots_is_still_refused(cluster: aioredis.Redis) -> None:
    with pytest.raises(RedisClusterException):
        async with cluster.pipeline(transaction=True) as pipe:
            pipe.set("a:{p1}", "1")
            pipe.set("b:{p9}", "1")
            await pipe.execute()
    assert await cluster.exists("a:{p1}", "b:{p9}") == 0
