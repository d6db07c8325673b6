from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from core import keys
from core.bus import Bus
from core.contract import Capabilities, Choice, Edit, OfferChoices, Post, Receipt, Reply
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable
from core.sender import Sender
from tests.support import RecordingPlatform, wait_until

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

BASE = {"platform": "test", "community": "c1", "channel": "general"}


async def _drain(sender: Sender, n: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    await wait_until(lambda: sender.delivered >= n, what=f"{n} deliveries")
    stop.set()
    await task


async def test_rate_limit_is_waited_out_and_message_sent_once(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform()
    platform.failures = [PlatformRateLimited(retry_after=0.2), PlatformUnavailable("502")]
    await bus.enqueue([Reply(id="r1", **BASE, text="hello")])
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _drain(Sender(bus, platform), 1)
    assert loop.time() - start >= 0.2  # honoured retry_after
    assert [a.text for a in platform.sent] == ["hello"]  # type: ignore[union-attr]
    assert await bus.receipt("r1") == Receipt(message_ids=("m1",))


async def test_redelivered_action_is_not_executed_twice(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform()
    action = Reply(id="dup", **BASE, text="once")
    await bus.enqueue([action, action])  # e.g. a worker reprocessed its Event after a crash
    await _drain(Sender(bus, platform), 2)
    assert len(platform.sent) == 1


async def test_split_action_resumes_after_crash_without_duplicates(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform(capabilities=Capabilities(max_text=40))
    text = "Part one is here. Part two is here. Part three is here. Part four."
    platform.failures = []
    sender = Sender(bus, platform, max_attempts=5)
    action = Reply(id="long", **BASE, text=text)
    # deliver the first piece, then "crash" on the second
    calls = 0
    original = platform.deliver

    async def flaky(a, blobs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("process died")
        return await original(a, blobs)

    platform.deliver = flaky  # type: ignore[method-assign]
    await bus.enqueue([action])
    [delivery] = await bus.read_actions("test", sender.name, 10, 100)
    await sender.handle(delivery)  # fails mid-way; stays pending
    assert len(platform.sent) == 1
    [again] = await bus.reclaim_actions("test", "another", min_idle_ms=0)
    await Sender(bus, platform).handle(again)
    sent = [a.text for a in platform.sent]  # type: ignore[union-attr]
    assert " ".join(sent).split() == text.split()
    assert len(sent) == len(set(sent))  # no piece twice


async def test_rejected_action_is_dead_lettered(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform()
    platform.failures = [DeliveryRejected("chat not found")]
    await bus.enqueue([Reply(id="bad", **BASE, text="x"), Reply(id="good", **BASE, text="y")])
    sender = Sender(bus, platform)
    await _drain(sender, 1)
    assert [a.id for a in platform.sent] == ["good"]
    assert len(await bus.dead()) == 1


async def test_edit_targets_the_delivered_message(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform()
    await bus.enqueue(
        [Reply(id="orig", **BASE, text="v1"), Edit(id="e1", **BASE, target_action="orig", text="v2")]
    )
    await _drain(Sender(bus, platform), 2)
    assert [type(a).__name__ for a in platform.sent] == ["Reply", "Edit"]


async def test_choices_without_buttons_are_remembered_for_choose(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform(capabilities=Capabilities(buttons=False, max_text=500))
    choices = (Choice(label="Post", payload="post:d1"), Choice(label="Revise", payload="revise:d1"))
    await bus.enqueue([OfferChoices(id="c", **BASE, text="Draft", choices=choices)])
    await _drain(Sender(bus, platform), 1)
    assert "2. Revise" in platform.sent[0].text  # type: ignore[union-attr]
    stored = await redis.get(keys.choices("test:c1:general:-"))
    assert stored == b'["post:d1", "revise:d1"]'


async def test_shutdown_interrupts_a_long_rate_limit_wait_and_keeps_the_action(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform()
    platform.failures = [PlatformRateLimited(retry_after=600)]
    await bus.enqueue([Reply(id="later", **BASE, text="after restart")])
    sender = Sender(bus, platform)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    await asyncio.sleep(0.3)  # now waiting out the 600 s
    stop.set()
    await asyncio.wait_for(task, timeout=5)  # stops promptly
    assert platform.sent == [] and await bus.receipt("later") is None
    await _drain(Sender(bus, platform, claim_idle_ms=100), 1)  # the next start delivers it
    assert [a.id for a in platform.sent] == ["later"]


async def test_shared_fields_are_filled_in_before_delivery(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform(capabilities=Capabilities(max_text=4000, threads=True))
    blob = await bus.put_shared({"text": "first", "parts": ["first", "second"]})
    await bus.enqueue(
        [Post(id="p1", **BASE, text="", shared=blob), Post(id="p2", **BASE, text="", shared=blob)]
    )
    [payload, _] = await bus.outbox("test")
    assert b"second" not in payload  # the outbox holds the reference, not the text
    await _drain(Sender(bus, platform), 2)
    assert [(a.text, a.parts, a.shared) for a in platform.sent] == [  # type: ignore[union-attr]
        ("first", ("first", "second"), None),
        ("first", ("first", "second"), None),
    ]


async def test_action_whose_shared_text_expired_is_dead_lettered(redis: aioredis.Redis) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform()
    await bus.enqueue([Reply(id="gone", **BASE, text="", shared="0" * 32)])
    sender = Sender(bus, platform)
    [delivery] = await bus.read_actions("test", sender.name, 10, 100)
    await sender.handle(delivery)
    assert platform.sent == []
    [dead] = await bus.dead()
    assert b"shared text expired" in b"".join(dead.values())
