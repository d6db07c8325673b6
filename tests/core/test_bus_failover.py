"""A master of a real cluster SIGKILLed while mentions flow: its replica takes over, no mention is lost, and
the repeated replies stay within what docs/architecture.md ("Redis Cluster") promises."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from core import keys
from core.app import build_services
from core.bus import Bus
from core.contract import Action, Event, reply_to_event
from core.errors import StorageError
from core.redis_cluster import LocalCluster
from core.redis_server import connect
from core.router import Router
from core.sender import Sender
from core.services import Services
from core.settings import Settings
from core.worker import Worker
from tests.support import RecordingPlatform, event

MENTIONS = 240
KILL_AT = 80
COMMUNITIES = 40
PUBLISHERS = 8  # adapters publishing at the same time
MAX_REPEATS = 8
ANSWER_TIMEOUT_S = 60  # docs/architecture.md: at most the replies in flight on the dead master's partitions


async def _publish(bus: Bus, ev: Event) -> float:
    """Publish like an adapter that acknowledges the platform only once the bus took the Event: retry until
    stored (a repeat of a stored Event is recognised as one). Returns how long it took."""
    start = time.monotonic()
    while True:
        try:
            await bus.publish(ev)
            return time.monotonic() - start
        except RedisError:
            await asyncio.sleep(0.05)


async def test_a_killed_master_loses_no_mention(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, node_timeout_ms=1000)
    try:
        cluster.start()
    except StorageError as exc:
        pytest.fail(f"the Redis Cluster did not start: {exc}")
    redis = connect(cluster.url)
    settings = Settings(
        CHORUS_REDIS_URL=cluster.url, CHORUS_REDIS_WAIT_REPLICAS=1, CHORUS_REDIS_WAIT_TIMEOUT_MS=200
    )
    services = await build_services(settings, redis)

    async def answer(ev: Event, svc: Services) -> list[Action]:
        return [reply_to_event(ev, f"re: {ev.text}")]

    services.mention = answer
    platform = RecordingPlatform()
    stop = asyncio.Event()
    worker = Worker(services.bus, Router(services), claim_idle_ms=1500, name="w1")
    sender = Sender(services.bus, platform, claim_idle_ms=1500)
    loops = [asyncio.create_task(worker.run(stop)), asyncio.create_task(sender.run(stop))]
    mentions = [
        event(community=f"c{n % COMMUNITIES}", message_id=f"m{n}", text=f"q{n}") for n in range(MENTIONS)
    ]
    # the master that serves the partition of the first community after the kill
    victim = cluster.node_for_key(keys.events(services.bus.part(mentions[KILL_AT].community_key)))
    durations: list[float] = []
    killed_at = 0.0

    async def publisher(share: list[Event]) -> None:
        for ev in share:
            durations.append(await _publish(services.bus, ev))

    async def killer() -> None:
        nonlocal killed_at
        while len(durations) < KILL_AT:
            await asyncio.sleep(0.001)
        cluster.kill(victim)  # while the other publishers' writes are in flight
        killed_at = time.monotonic()

    try:
        await asyncio.gather(killer(), *(publisher(mentions[i::PUBLISHERS]) for i in range(PUBLISHERS)))
        published = time.monotonic()
        wanted = {f"re: q{n}" for n in range(MENTIONS)}
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while not wanted <= {a.text for a in platform.sent} and time.monotonic() < deadline:  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
        answered = time.monotonic()
    finally:
        stop.set()
        crashed = [r for r in await asyncio.gather(*loops, return_exceptions=True) if r is not None]
        await services.aclose()
        await redis.aclose()
        cluster.stop()
    texts = [a.text for a in platform.sent]  # type: ignore[union-attr]
    lost = len(wanted - set(texts))
    repeats = len(texts) - len(set(texts))
    print(
        f"failover: {MENTIONS} mentions, {lost} lost, {repeats} repeated replies; longest publish {max(durations):.2f}s; "
        f"{MENTIONS - KILL_AT} published in {published - killed_at:.1f}s after the kill, "
        f"all answered {answered - published:.1f}s after the last"
    )
    assert crashed == []  # the worker and the sender rode the failover out
    assert lost == 0
    assert repeats <= MAX_REPEATS
