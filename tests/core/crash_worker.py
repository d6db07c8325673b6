"""A worker process for the crash-recovery test: the real Worker with a handler that takes a while.

Run as ``python tests/core/crash_worker.py <redis url> <seconds per event>``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.app import build_services
from core.contract import Action, Event, reply_to_event
from core.redis_server import connect
from core.router import Router
from core.services import Services
from core.settings import Settings
from core.worker import Worker


async def main(url: str, delay: float) -> None:
    redis = connect(url)
    services = await build_services(Settings(CHORUS_REDIS_URL=url), redis)

    async def slow_reply(event: Event, svc: Services) -> list[Action]:
        await svc.redis.set(f"test:started:{event.id}", "1")
        await asyncio.sleep(delay)
        return [reply_to_event(event, f"reply to {event.text}")]

    services.mention = slow_reply
    worker = Worker(services.bus, Router(services), claim_idle_ms=500, name=f"w-{delay}")
    await worker.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
