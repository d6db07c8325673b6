from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from core import keys
from core.app import build_services
from core.bus import Bus
from core.contract import Action, Capabilities, Choice, Edit, OfferChoices, Post, Receipt, Reply
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable
from core.platform import BlobReader
from core.redis_server import EmbeddedRedis, connect
from core.sender import Sender
from core.settings import Settings
from tests.bots.telegram.stack import TOKEN, adapter
from tests.fakes.telegram_api import FakeTelegram
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


async def test_redis_killed_between_acceptance_and_receipt_does_not_resend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram accepts a send, then Redis dies (SIGKILL) before the receipt is stored and stays down
    longer than the client's own retries; when it is back, the receipt is stored and nothing goes out
    again, even for a second sender reclaiming everything idle."""
    server = EmbeddedRedis(tmp_path / "killable")
    server.ensure_running()
    settings = Settings(
        CHORUS_DATA_DIR=tmp_path / "data", CHORUS_REDIS_URL=server.url, CHORUS_CLAIM_IDLE_MS=300
    )
    redis = connect(server.url)
    restarted = asyncio.Event()

    async def restart_later() -> None:
        await asyncio.sleep(6.0)  # longer than the client's retry window (about 4 s)
        await asyncio.to_thread(server.ensure_running)
        restarted.set()

    async with FakeTelegram(token=TOKEN, bot_username="chorus_bot") as tg:
        group = tg.add_chat(title="Group")["id"]
        accept = tg._handlers["sendmessage"]
        restarts: list[asyncio.Task[None]] = []

        def accept_then_kill_redis(params: dict[str, Any]) -> Any:
            result = accept(params)  # the message exists at Telegram now
            if not restarts:
                assert server.process is not None
                server.process.kill()  # SIGKILL before the answer reaches the sender
                server.process.wait()
                restarts.append(asyncio.create_task(restart_later()))
            return result

        tg._handlers["sendmessage"] = accept_then_kill_redis
        services = await build_services(settings, redis)
        first = second = None
        stop = asyncio.Event()
        try:
            async with adapter(services, tg) as platform:
                await services.bus.enqueue(
                    [
                        Reply(
                            id="once",
                            platform="telegram",
                            community=str(group),
                            channel=str(group),
                            text="hi",
                        )
                    ]
                )
                first = Sender(services.bus, platform, claim_idle_ms=300)
                sending = asyncio.create_task(first.run(stop))
                await asyncio.wait_for(restarted.wait(), timeout=30)
                await wait_until(lambda: first is not None and first.delivered == 1, timeout=30, what="ack")
                assert await services.bus.receipt("once") is not None
                second = Sender(services.bus, platform, claim_idle_ms=300)
                second.name = "another-sender"
                reclaiming = asyncio.create_task(second.run(stop))
                await asyncio.sleep(2.0)  # several claim periods of both senders
                stop.set()
                await asyncio.gather(sending, reclaiming)
        finally:
            stop.set()
            await services.aclose()
            await redis.aclose()
            server.release()
        assert [m.text for m in tg.bot_messages(group)] == ["hi"]  # accepted once, never sent again
        assert len(tg.calls("sendMessage")) == 1
        assert second is not None and second.delivered == 0


class _SlowChat(RecordingPlatform):
    """Chat "slow" is rate limited once for ``retry_after`` seconds; other chats answer at once."""

    def __init__(self, retry_after: float) -> None:
        super().__init__()
        self.retry_after = retry_after
        self.limited = False
        self.at: dict[str, float] = {}

    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        if action.channel == "slow" and not self.limited:
            self.limited = True
            raise PlatformRateLimited(retry_after=self.retry_after)
        self.at[action.id] = asyncio.get_running_loop().time()
        return await super().deliver(action, blobs)


async def test_a_rate_limited_chat_does_not_stall_the_others_and_keeps_its_order(
    redis: aioredis.Redis,
) -> None:
    bus = Bus(redis)
    platform = _SlowChat(retry_after=1.5)
    slow = [
        Reply(id=f"s{i}", platform="test", community="c1", channel="slow", text=f"s{i}") for i in range(3)
    ]
    fast = [
        Reply(id=f"f{i}", platform="test", community="c1", channel=f"chat{i}", text="x") for i in range(5)
    ]
    await bus.enqueue([*slow, *fast])  # the slow chat's Actions come first in the outbox
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _drain(Sender(bus, platform), 8)
    assert max(platform.at[a.id] for a in fast) - start < 1.0  # not behind the 1.5 s wait
    assert min(platform.at[a.id] for a in slow) - start >= 1.5
    assert [a.id for a in platform.sent if a.channel == "slow"] == ["s0", "s1", "s2"]


async def test_sender_keeps_its_batch_through_a_redis_outage(tmp_path: Path) -> None:
    """Redis goes away with Actions read but not sent: they go out once Redis is back, not after a
    reclaim (the claim idle time here is an hour)."""
    server = EmbeddedRedis(tmp_path / "killable")
    server.ensure_running()
    redis = connect(server.url)
    bus = Bus(redis)
    platform = RecordingPlatform()
    gate = asyncio.Event()
    original = platform.deliver

    async def held(action: Action, blobs: BlobReader) -> Receipt:
        await gate.wait()
        return await original(action, blobs)

    platform.deliver = held  # type: ignore[method-assign]
    await bus.enqueue(
        [Reply(id=f"r{i}", platform="test", community="c1", channel="one", text=str(i)) for i in range(5)]
    )
    await asyncio.sleep(1.2)  # the AOF is written every second
    sender = Sender(bus, platform, claim_idle_ms=3_600_000)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        await wait_until(lambda: len(sender._held) == 5, what="the batch read")
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        gate.set()  # the first send is accepted while Redis is down
        await asyncio.sleep(6.0)  # past the client's own retries
        await asyncio.to_thread(server.ensure_running)
        await wait_until(lambda: sender.delivered == 5, timeout=30, what="the whole batch")
        assert [a.text for a in platform.sent] == ["0", "1", "2", "3", "4"]  # type: ignore[union-attr]
        assert await bus.outbox("test") == []
    finally:
        stop.set()
        await task
        await redis.aclose()
        server.release()
