from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from core import keys
from core.bus import Bus, load_event
from core.contract import EventKind, Receipt, Reply
from tests.support import event

pytestmark = pytest.mark.topologies

C1 = keys.partition("test:c1", keys.DEFAULT_PARTITIONS)  # the partition of tests.support.event()'s community


async def test_publish_stores_event_once_per_platform_message(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    first = event(message_id="42")
    assert await bus.publish(first) is not None
    assert await bus.publish(event(message_id="42", text="same id again")) is None
    assert await bus.publish(event(message_id="42", platform="other")) is not None  # ids are per platform
    assert [len(await bus.read_events("w", 10, 10)) for _ in range(2)] == [2, 0]


async def test_edits_and_reactions_reuse_message_ids_without_being_dropped(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    assert await bus.publish(event(EventKind.MESSAGE, message_id="7"))
    assert await bus.publish(event(EventKind.EDITED, message_id="7"))
    assert await bus.publish(event(EventKind.REACTION, message_id="7", reaction="👍"))
    assert await redis.xlen(keys.events(C1)) == 3


async def test_complete_enqueues_actions_and_acks_atomically(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    ev = event()
    await bus.publish(ev)
    [delivery] = await bus.read_events("w1", count=10, block_ms=100)
    assert load_event(delivery.payload) == ev
    reply = Reply(id=f"{ev.id}.0", platform="test", community="c1", channel="general", text="hi")
    assert not await bus.settled(ev.id)
    await bus.complete(delivery, ev.id, [reply])
    assert await redis.xlen(keys.outbox("test", C1)) == 1
    pending = await redis.xpending(keys.events(C1), keys.WORKERS_GROUP)
    assert pending["pending"] == 0
    assert json.loads(await redis.get(keys.done(ev.id, C1))) == [reply.id]
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
    await asyncio.sleep(0.05)  # idle time passes on the server's clock (DEBUG is off on Redis 7+ and Valkey)
    [reclaimed] = await bus.reclaim_events("other", min_idle_ms=40)
    assert reclaimed == held


async def test_touch_keeps_an_event_from_being_reclaimed(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    await bus.publish(event())
    [held] = await bus.read_events("busy", count=1, block_ms=100)
    await asyncio.sleep(0.3)
    await bus.touch("busy", [held])
    assert await bus.reclaim_events("thief", min_idle_ms=250) == []  # reclaiming reads every partition


async def test_dead_letter_keeps_the_payload_and_sends_apology(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    ev = event()
    await bus.publish(ev)
    [delivery] = await bus.read_events("w", count=1, block_ms=100)
    apology = Reply(platform="test", community="c1", channel="general", text="sorry")
    await bus.dead_letter(delivery, "boom", [apology])
    [fields] = await bus.dead()
    assert fields[b"reason"] == b"boom" and load_event(fields[b"payload"]) == ev
    assert await redis.xlen(keys.outbox("test", C1)) == 1
    assert (await redis.xpending(keys.events(C1), keys.WORKERS_GROUP))["pending"] == 0


async def test_blobs_round_trip(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    blob_id = await bus.put_blob(b"\x89PNG data")
    assert await bus.get_blob(blob_id) == b"\x89PNG data"


async def test_enqueue_puts_each_action_in_its_platforms_outbox_in_order(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    where = ["x", "telegram", "x", "discord", "telegram", "x"]
    actions = [
        Reply(id=f"a{n}", platform=p, community="c", channel="g", text=str(n)) for n, p in enumerate(where)
    ]
    await bus.enqueue(actions)
    for platform in ("x", "telegram", "discord"):
        stored = [json.loads(a)["id"] for a in await bus.outbox(platform)]
        assert stored == [a.id for a in actions if a.platform == platform]
    await bus.enqueue([])  # nothing to do, no call
    assert sum([len(await bus.outbox(p)) for p in ("x", "telegram", "discord")]) == len(actions)


def test_partition_is_stable_and_spreads_communities() -> None:
    assert keys.partition("telegram:-1001", 8) == keys.partition("telegram:-1001", 8)  # any process, any run
    assert keys.partition("telegram:-1001", 8) == keys.layout(8)[1491455390 % 8]  # CRC-32, not salted hash()
    counts = Counter(keys.partition(f"discord:{n}", 8) for n in range(1000))
    assert len(counts) == 8 and max(counts.values()) < 1000 / 8 * 1.3, counts
    assert keys.events(keys.layout(1)[0]) == "chorus:{bus}:events"  # one partition: the names from before


def test_partitions_fall_evenly_over_the_slot_space() -> None:
    for n in (2, 3, 8, 12, 24):
        slots = sorted(key_slot(tag.encode()) for tag in keys.layout(n))
        assert [s * n // keys.SLOTS for s in slots] == list(range(n))  # the p-th partition in the p-th n-th
    thirds = Counter(key_slot(tag.encode()) * 3 // keys.SLOTS for tag in keys.layout(keys.DEFAULT_PARTITIONS))
    assert sorted(thirds.values()) == [4, 4, 4]  # 3 masters with equal slot ranges: 4 partitions each


async def test_one_communitys_events_and_actions_keep_their_order(redis: aioredis.Redis) -> None:
    bus = Bus(redis, partitions=4)
    published = [event(community=f"c{n % 5}", text=str(n), message_id=str(n)) for n in range(40)]
    for ev in published:
        await bus.publish(ev)
    read = [load_event(d.payload) for d in await bus.read_events("w", count=100, block_ms=50)]
    assert sorted(e.id for e in read) == sorted(e.id for e in published)  # every partition was read
    for c in range(5):
        assert [e.text for e in read if e.community == f"c{c}"] == [str(n) for n in range(c, 40, 5)]
    assert len({d.part for d in await bus.reclaim_events("w2", 0)}) > 1  # reclaimed in every partition


async def test_a_read_takes_more_than_its_share_from_a_busy_partition(redis: aioredis.Redis) -> None:
    bus = Bus(redis)  # 12 partitions
    for n in range(30):
        await bus.publish(event(message_id=f"m{n}", text=str(n)))  # one community: one partition
    await bus.publish(event(community="elsewhere", message_id="other"))
    first = await bus.read_events("w", count=10, block_ms=50)
    assert 10 <= len(first) <= 11
    rest = await bus.read_events("w", count=100, block_ms=50)
    texts = [load_event(d.payload).text for d in first + rest if load_event(d.payload).community == "c1"]
    assert texts == [str(n) for n in range(30)]  # all of them, in order, none twice


async def test_changing_the_partition_count_loses_and_repeats_nothing(redis: aioredis.Redis) -> None:
    before = Bus(redis, partitions=2)
    in_flight = [event(community=f"c{n}", message_id=f"m{n}") for n in range(12)]
    for ev in in_flight:
        assert await before.publish(ev)
    after = Bus(redis, partitions=5, previous_partitions=2)
    moved = next(e for e in in_flight if after.part(e.community_key) != before.part(e.community_key))
    # a replay of a message accepted under the old count is still a replay
    assert await after.publish(moved.model_copy(update={"id": "replayed"})) is None
    fresh = event(community="c0", message_id="new")
    assert await after.publish(fresh)
    read = await after.read_events("w", count=100, block_ms=50)
    assert sorted(load_event(d.payload).id for d in read) == sorted([e.id for e in in_flight] + [fresh.id])
    for d in read:
        await after.complete(d, load_event(d.payload).id, [])
    assert await after.read_events("w", count=100, block_ms=10) == []
    assert all([await after.settled(e.id) for e in in_flight])


async def test_taking_over_after_the_streams_were_deleted_finds_nothing_and_does_not_fail(
    redis: aioredis.Redis,
) -> None:
    """An operator's FLUSHALL (or a stream deleted) under a running sender: its takeover pass finds nothing
    pending instead of failing with NOGROUP, and the groups are made again when next needed."""
    bus = Bus(redis)
    assert await bus.claim_from_dead_actions("test", "s1", min_idle_ms=0) == []  # groups made and cached
    await redis.flushall()
    assert await bus.claim_from_dead_actions("test", "s1", min_idle_ms=0) == []
    assert await bus.claim_from_dead_events("w1", min_idle_ms=0) == []
    await bus.publish(event())
    assert len(await bus.read_events("w1", count=10, block_ms=100)) == 1


def _community_in_another_partition() -> str:
    for n in range(100):
        if keys.partition(f"test:c{n}", keys.DEFAULT_PARTITIONS) != C1:
            return f"c{n}"
    raise AssertionError("every community in one partition")


async def test_a_read_ends_with_the_first_answer_not_when_every_partition_times_out(
    redis: aioredis.Redis,
) -> None:
    """On a cluster each partition waits on its own shard; an Event in one partition ends the read at
    once (a 4 s block would otherwise hold it 4 s), and the reads left waiting lose nothing: what they
    receive is handed out by the next read or, when the consumer stops, by ``stop_reading``."""
    bus = Bus(redis)
    reading = asyncio.ensure_future(bus.read_events("w", count=10, block_ms=4000))
    await asyncio.sleep(0.3)  # every partition is waiting
    await bus.publish(event(message_id="1"))
    [first] = await asyncio.wait_for(reading, timeout=2)
    assert load_event(first.payload).message_id == "1"
    other = _community_in_another_partition()
    await bus.publish(event(message_id="2", community=other))
    await bus.publish(event(message_id="3"))
    got = await asyncio.wait_for(bus.read_events("w", count=10, block_ms=4000), timeout=2)
    if len(got) < 2:  # on a cluster the round may end with one partition's answer
        got += await asyncio.wait_for(bus.read_events("w", count=10, block_ms=4000), timeout=2)
    late = await bus.stop_reading("w")
    assert sorted(load_event(d.payload).message_id for d in [*got, *late]) == ["2", "3"]
    assert await bus.stop_reading("w") == []
