from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from core.bus import Bus
from core.contract import Action, Event, EventKind, load_action, reply_to_event
from core.errors import ProviderUnavailable
from core.router import Router
from core.services import Services
from core.worker import ALIVE_TTL_MS, APOLOGY, Worker
from tests.support import event, wait_until

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster


async def _outbox(redis: aioredis.Redis) -> list[str]:
    return [load_action(a).text for a in await Bus(redis).outbox("test")]  # type: ignore[union-attr]


async def test_worker_routes_and_acks(services: Services, redis: aioredis.Redis) -> None:
    async def mention(ev: Event, svc: Services) -> list[Action]:
        return [reply_to_event(ev, f"echo: {ev.text}")]

    services.mention = mention
    worker = Worker(services.bus, Router(services), claim_idle_ms=600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    ev = event(text="hi there")
    await services.bus.publish(ev)
    await wait_until(lambda: worker.processed == 1, what="event processed")
    stop.set()
    await task
    assert await _outbox(redis) == ["echo: hi there"]
    assert await Bus(redis).backlog() == 0


async def test_events_run_concurrently_up_to_the_bound(services: Services) -> None:
    running = 0
    peak = 0

    async def slow(ev: Event, svc: Services) -> list[Action]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return [reply_to_event(ev, "ok")]

    services.mention = slow
    worker = Worker(services.bus, Router(services), concurrency=8, claim_idle_ms=5000)
    for i in range(40):
        await services.bus.publish(event(message_id=f"m{i}"))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_until(lambda: worker.processed == 40, what="40 events")
    stop.set()
    await task
    assert peak == 8  # bounded, and really concurrent (how fast is bench/bus.py's business, not a timed test)


async def test_failing_event_is_retried_then_dead_lettered_with_apology(
    services: Services, redis: aioredis.Redis
) -> None:
    calls = 0

    async def broken(ev: Event, svc: Services) -> list[Action]:
        nonlocal calls
        calls += 1
        raise ProviderUnavailable("model down")

    services.mention = broken
    worker = Worker(services.bus, Router(services), max_attempts=3, claim_idle_ms=150)
    await services.bus.publish(event(text="write something"))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_until(lambda: calls == 3, timeout=10, what="three attempts")
    for _ in range(100):
        if await Bus(redis).dead():
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert calls == 3
    assert len(await Bus(redis).dead()) == 1
    texts = await _outbox(redis)
    assert texts == [ProviderUnavailable.user_message]  # a short message, never a traceback
    assert "Traceback" not in texts[0]


async def test_unexpected_exception_gets_generic_apology(services: Services, redis: aioredis.Redis) -> None:
    async def buggy(ev: Event, svc: Services) -> list[Action]:
        raise KeyError("internal detail")

    services.mention = buggy
    worker = Worker(services.bus, Router(services), max_attempts=1, claim_idle_ms=150)
    await services.bus.publish(event())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(200):
        if await Bus(redis).outbox("test"):
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert await _outbox(redis) == [APOLOGY]


async def test_user_errors_become_replies(services: Services, redis: aioredis.Redis) -> None:
    router = Router(services)
    ev = event(kind=event().kind.COMMAND, command="frobnicate", text="/frobnicate")
    [reply] = await router.route(ev)
    assert "frobnicate" in reply.text and "/help" in reply.text  # type: ignore[union-attr]
    [refusal] = await router.route(event(kind=event().kind.COMMAND, command="stats"))
    assert "moderators" in refusal.text.lower()  # type: ignore[union-attr]


async def test_action_ids_are_derived_from_the_event(services: Services, redis: aioredis.Redis) -> None:
    async def two(ev: Event, svc: Services) -> list[Action]:
        return [reply_to_event(ev, "a"), reply_to_event(ev, "b")]

    services.mention = two
    worker = Worker(services.bus, Router(services))
    ev = event()
    await services.bus.publish(ev)
    [delivery] = await services.bus.read_events(worker.name, 1, 100)
    await worker.process(delivery)
    ids = await Bus(redis).outbox("test")
    assert [f'"id":"{ev.id}.0"'.encode() in ids[0], f'"id":"{ev.id}.1"'.encode() in ids[1]] == [True, True]


async def test_observed_events_apply_in_stream_order(services: Services) -> None:
    """A message and its edit arriving together must reach the feed in that order."""
    seen: list[str] = []

    async def observe(ev: Event, svc: Services) -> None:
        await asyncio.sleep(0.03 if ev.kind is EventKind.MESSAGE else 0)  # the first one is slower
        seen.append(ev.kind.value)

    services.observers.append(observe)
    for kind in (EventKind.MESSAGE, EventKind.EDITED, EventKind.REACTION, EventKind.DELETED):
        await services.bus.publish(event(kind, message_id="same"))
    worker = Worker(services.bus, Router(services))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await wait_until(lambda: len(seen) == 4, what="four observations")
    stop.set()
    await task
    assert seen == ["message", "edited", "reaction", "deleted"]


async def test_events_of_a_worker_without_heartbeat_are_taken_over_in_seconds(
    services: Services, redis: aioredis.Redis
) -> None:
    """A worker SIGKILLed while holding Events stops its heartbeat: another takes them over after
    ALIVE_TTL_MS, long before the idle reclaim (an hour here); a live worker's Events are left alone."""

    async def mention(ev: Event, svc: Services) -> list[Action]:
        return [reply_to_event(ev, "answer")]

    services.mention = mention
    bus = services.bus
    await bus.publish(event(text="held by the dead one", message_id="m-dead"))
    await bus.publish(event(text="held by a live one", message_id="m-live"))
    [dead] = await bus.read_events("dead-worker", count=1, block_ms=100)  # never heartbeats
    [live] = await bus.read_events("live-worker", count=1, block_ms=100)
    beating = asyncio.Event()

    async def keep_alive() -> None:
        while not beating.is_set():
            await bus.heartbeat("live-worker", ALIVE_TTL_MS)
            await asyncio.sleep(0.5)

    heart = asyncio.create_task(keep_alive())
    worker = Worker(bus, Router(services), claim_idle_ms=3_600_000, name="survivor")
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: worker.processed == 1, timeout=20, what="the takeover")
        assert time.monotonic() - started < ALIVE_TTL_MS / 1000 + 5
        await asyncio.sleep(1.5)
        assert worker.processed == 1  # the live worker's Event is still its own
        pending = await redis.xpending_range(
            live.stream, live.group, "-", "+", 10
        )  # one community: one partition
        assert [p["message_id"].decode() for p in pending] == [live.stream_id]
        assert dead.stream_id != live.stream_id
    finally:
        beating.set()
        stop.set()
        await asyncio.gather(task, heart)


async def test_a_worker_takes_over_only_what_it_has_room_for(
    services: Services, redis: aioredis.Redis
) -> None:
    """A dead worker held 30 Events; a survivor that runs 4 at once holds at most 4 at any time, so a second
    survivor gets the rest at once instead of waiting for the first to work through all 30 (or for it to
    die too and pass them all on again)."""
    gate = asyncio.Event()

    async def mention(ev: Event, svc: Services) -> list[Action]:
        await gate.wait()
        return [reply_to_event(ev, "answer")]

    services.mention = mention
    bus = services.bus
    for i in range(30):
        await bus.publish(event(message_id=f"m{i}", community=f"c{i}"))  # spread over the partitions
    assert len(await bus.read_events("dead-worker", count=30, block_ms=100)) == 30  # never heartbeats
    first = Worker(bus, Router(services), concurrency=4, claim_idle_ms=3_600_000, name="first")
    second = Worker(bus, Router(services), concurrency=40, claim_idle_ms=3_600_000, name="second")
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    other: asyncio.Task[None] | None = None
    try:
        await wait_until(lambda: len(first._inflight) == 4, timeout=ALIVE_TTL_MS / 1000 + 5, what="takeover")
        await asyncio.sleep(1.5)  # more heartbeats: still only what it can run
        assert len(first._inflight) == 4
        other = asyncio.create_task(second.run(stop))
        await wait_until(lambda: len(second._inflight) == 26, timeout=5, what="the rest taken by the second")
        gate.set()
        await wait_until(lambda: first.processed + second.processed == 30, what="all answered")
        assert first.processed == 4 and await bus.backlog() == 0
    finally:
        gate.set()
        stop.set()
        await asyncio.gather(task, *([other] if other is not None else []))


async def test_a_dead_workers_events_go_before_new_ones(services: Services) -> None:
    """They have waited longest: once a busy worker knows they are there, it takes them as its slots free
    up, before the newer Events that keep coming."""
    order: list[str] = []

    async def mention(ev: Event, svc: Services) -> list[Action]:
        order.append(ev.text)
        await asyncio.sleep(0.05)
        return [reply_to_event(ev, "answer")]

    services.mention = mention
    bus = services.bus
    for i in range(10):
        await bus.publish(event(text="old", message_id=f"old{i}", community=f"c{i}"))
    assert len(await bus.read_events("dead-worker", count=10, block_ms=100)) == 10  # never heartbeats
    stop = asyncio.Event()

    async def keep_coming() -> None:  # more than the worker can do: it is always busy
        i = 0
        while not stop.is_set():
            await bus.publish(event(text="new", message_id=f"new{i}", community=f"c{i % 10}"))
            i += 1
            await asyncio.sleep(0.02)

    worker = Worker(bus, Router(services), concurrency=2, claim_idle_ms=3_600_000, name="survivor")
    tasks = [asyncio.create_task(keep_coming()), asyncio.create_task(worker.run(stop))]
    try:
        await wait_until(lambda: order.count("old") == 10, timeout=ALIVE_TTL_MS / 1000 + 15, what="the old")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    first_old = order.index("old")
    assert order[first_old : first_old + 10] == ["old"] * 10, order  # once found, all of them first
