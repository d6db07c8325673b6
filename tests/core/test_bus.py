from __future__ import annotations

import json

import redis.asyncio as aioredis

from core import keys
from core.bus import Bus, load_event
from core.contract import EventKind, Receipt, Reply
from tests.support import event


async def test_publish_stores_event_once_per_platform_message(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    first = event(message_id="42")
    assert await bus.publish(first) is not None
    assert await bus.publish(event(message_id="42", text="same id again")) is None
    assert await bus.publish(event(message_id="42", platform="other")) is not None  # ids are per platform
    assert await redis.xlen(keys.EVENTS) == 2


async def test_edits_and_reactions_reuse_message_ids_without_being_dropped(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    assert await bus.publish(event(EventKind.MESSAGE, message_id="7"))
    assert await bus.publish(event(EventKind.EDITED, message_id="7"))
    assert await bus.publish(event(EventKind.REACTION, message_id="7", reaction="👍"))
    assert await redis.xlen(keys.EVENTS) == 3


async def test_complete_enqueues_actions_and_acks_atomically(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    ev = event()
    await bus.publish(ev)
    [delivery] = await bus.read_events("w1", count=10, block_ms=100)
    assert load_event(delivery.payload) == ev
    reply = Reply(id=f"{ev.id}.0", platform="test", community="c1", channel="general", text="hi")
    assert not await bus.settled(ev.id)
    await bus.complete(delivery, ev.id, [reply])
    assert await redis.xlen(keys.outbox("test")) == 1
    pending = await redis.xpending(keys.EVENTS, keys.WORKERS_GROUP)
    assert pending["pending"] == 0
    assert json.loads(await redis.get(keys.done(ev.id))) == [reply.id]
    assert not await bus.settled(ev.id)  # produced, not yet delivered
    await bus.record_sent(reply, Receipt(message_ids=("m1",)))
    assert await bus.settled(ev.id)
    assert await bus.bot_message("test", "m1") == {"action": reply.id, "ref": None, "event": None}


async def test_unacked_event_is_reclaimed_by_another_consumer(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    await bus.publish(event())
    [held] = await bus.read_events("crashed", count=10, block_ms=100)
    assert await bus.read_events("other", count=10, block_ms=50) == []
    assert await bus.reclaim_events("other", min_idle_ms=10_000) == []  # not idle long enough
    await redis.execute_command("DEBUG", "SLEEP", "0.05")
    [reclaimed] = await bus.reclaim_events("other", min_idle_ms=40)
    assert reclaimed == held


async def test_touch_keeps_an_event_from_being_reclaimed(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    await bus.publish(event())
    [held] = await bus.read_events("busy", count=1, block_ms=100)
    await redis.execute_command("DEBUG", "SLEEP", "0.06")
    await bus.touch_events("busy", [held.stream_id])
    assert await bus.reclaim_events("thief", min_idle_ms=50) == []


async def test_dead_letter_keeps_the_payload_and_sends_apology(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    ev = event()
    await bus.publish(ev)
    [delivery] = await bus.read_events("w", count=1, block_ms=100)
    apology = Reply(platform="test", community="c1", channel="general", text="sorry")
    await bus.dead_letter(delivery, "boom", [apology])
    [(_, fields)] = await redis.xrange(keys.DEAD)
    assert fields[b"reason"] == b"boom" and load_event(fields[b"payload"]) == ev
    assert await redis.xlen(keys.outbox("test")) == 1
    assert (await redis.xpending(keys.EVENTS, keys.WORKERS_GROUP))["pending"] == 0


async def test_blobs_round_trip(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    blob_id = await bus.put_blob(b"\x89PNG data")
    assert await bus.get_blob(blob_id) == b"\x89PNG data"


async def test_enqueue_puts_each_action_in_its_platforms_outbox_in_order(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    where = ["x", "telegram", "x", "discord", "telegram", "x"]
    actions = [Reply(id=f"a{n}", platform=p, community="c", channel="g", text=str(n)) for n, p in enumerate(where)]
    await bus.enqueue(actions)
    for platform in ("x", "telegram", "discord"):
        stored = [json.loads(f[b"a"])["id"] for _, f in await redis.xrange(keys.outbox(platform))]
        assert stored == [a.id for a in actions if a.platform == platform]
    await bus.enqueue([])  # nothing to do, no call
    assert sum([await redis.xlen(keys.outbox(p)) for p in ("x", "telegram", "discord")]) == len(actions)
