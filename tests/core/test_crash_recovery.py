"""A worker SIGKILLed while it holds an Event: another worker finishes it and the user gets one reply."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.bus import Bus
from core.sender import Sender
from tests.support import RecordingPlatform, event, wait_until

SCRIPT = Path(__file__).with_name("crash_worker.py")
pytestmark = pytest.mark.topologies


def _spawn(url: str, delay: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(SCRIPT), url, str(delay)], env={**os.environ})


async def test_killed_worker_event_is_reclaimed_and_answered_once(
    redis: aioredis.Redis, redis_url: str
) -> None:
    bus = Bus(redis)
    platform = RecordingPlatform()
    sender = Sender(bus, platform)
    stop = asyncio.Event()
    sending = asyncio.create_task(sender.run(stop))
    ev = event(text="hello", message_id="tg-1001")
    assert await bus.publish(ev)

    doomed = _spawn(redis_url, delay=60)
    survivor: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(6000):  # until the first worker holds the Event (a cold start under load is slow)
            if await redis.get(f"test:started:{ev.id}"):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("first worker never picked the event up")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        assert platform.sent == []

        survivor = _spawn(redis_url, delay=0)
        await wait_until(lambda: sender.delivered == 1, timeout=30, what="the reclaimed reply")
        # the same platform message arriving again (a client retry) is not handled twice
        assert await bus.publish(ev.model_copy(update={"id": "another"})) is None
        await asyncio.sleep(1.5)  # several claim periods: nothing else may arrive
        assert [a.text for a in platform.sent] == ["reply to hello"]  # type: ignore[union-attr]
        assert await bus.settled(ev.id)
    finally:
        for proc in (doomed, survivor):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        stop.set()
        await sending
