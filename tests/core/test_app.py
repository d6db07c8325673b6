"""The composition root: what ``chorus worker`` builds (no adapter in the process) writes within the same
limits as the adapters that will deliver its Actions, because both read the platforms' declared facts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bots import registry
from bots.discord.adapter import DiscordPlatform
from bots.telegram.adapter import TelegramPlatform
from bots.x.adapter import XPlatform
from core.app import FEATURES, build, waiting_publisher
from core.assistant.commands import setup
from core.assistant.images import ImageService
from core.assistant.moderation import Moderator
from core.bus import Bus, load_event
from core.contract import Reply, load_action
from core.errors import ConfigError
from core.platform import degrade
from core.redis_server import EmbeddedRedis, connect
from core.router import Router
from core.services import Services
from core.settings import Settings
from core.text import utf16_length, x_weighted_length
from core.worker import Worker
from tests.core.assistant.fakes_chat import ScriptedModel
from tests.core.assistant.test_commands import FakeRuntime
from tests.support import event, wait_until

# 45 code points but 49 UTF-16 units per sentence: a text fitted by code points would overflow Telegram
GARDEN = " ".join("Our garden 🌱🌻 opens on Saturday for everyone!" for _ in range(200))


async def test_a_worker_without_adapters_knows_every_platforms_limits(
    settings: Settings, redis: aioredis.Redis
) -> None:
    built = await build(settings, redis)
    try:
        for adapter in (TelegramPlatform, DiscordPlatform, XPlatform):
            assert built.services.platforms.capabilities(adapter.name) == adapter.capabilities
    finally:
        await built.services.aclose()


@pytest.mark.parametrize(("platform", "measure"), [("telegram", utf16_length), ("x", x_weighted_length)])
async def test_a_worker_without_adapters_writes_what_the_adapter_sends_whole(
    settings: Settings, redis: aioredis.Redis, platform: str, measure: object
) -> None:
    built = await build(settings, redis)  # as `chorus worker`: no adapter is created in this process
    services = built.services
    images, moderator = ImageService(settings), Moderator(settings)
    setup(services, runtime=FakeRuntime(ScriptedModel(script=[GARDEN])), images=images, moderator=moderator)
    worker = Worker(services.bus, Router(services), claim_idle_ms=600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await services.bus.publish(
            event(text="write a post about the garden", platform=platform, community="-100")
        )
        await wait_until(lambda: worker.processed == 1, what="the mention handled", timeout=30)
    finally:
        stop.set()
        await task
        await images.aclose()
        await moderator.aclose()
        await services.aclose()
    actions = [load_action(a) for a in await Bus(redis).outbox(platform)]
    drafts = [a for a in actions if isinstance(a, Reply) and a.ref and a.ref.startswith("draft:")]
    caps = {"telegram": TelegramPlatform, "x": XPlatform}[platform].capabilities
    assert drafts and all(measure(d.text) <= caps.max_text for d in drafts)  # type: ignore[operator]
    assert all(len(degrade(d, caps)) == 1 for d in drafts)  # the adapter sends it whole, unsplit


async def test_a_missing_feature_fails_at_start_with_a_clear_message(
    settings: Settings, redis: aioredis.Redis
) -> None:
    services = Services(settings, redis, Bus(redis), registry.catalog())  # no feature installed
    with pytest.raises(ConfigError, match="is missing: the assistant is not installed"):
        services.check()


def test_every_feature_is_listed_once() -> None:
    names = [feature.name for feature in FEATURES]
    assert names == ["builtin", "prompts", "assistant", "feed", "web"]
    assert {command.name for feature in FEATURES for command in feature.cli} == {"prompts", "feed"}


async def test_an_event_arriving_while_redis_restarts_waits_for_it(tmp_path: Path) -> None:
    """A platform that handed us a message will not hand it again: the adapter's publish waits for Redis
    (down longer than the client's own retries) instead of failing and losing the mention."""
    server = EmbeddedRedis(tmp_path / "killable")
    server.ensure_running()
    redis = connect(server.url)
    bus = Bus(redis)
    stop = asyncio.Event()
    publish = waiting_publisher(bus, stop)
    try:
        assert server.process is not None
        server.process.kill()  # SIGKILL: the AOF keeps what was acknowledged
        server.process.wait()
        started = asyncio.get_running_loop().time()
        pending = asyncio.create_task(publish(event(message_id="during-outage")))
        await asyncio.sleep(6.0)  # longer than the client's retry window (about 4 s)
        assert not pending.done()  # still waiting, not failed
        await asyncio.to_thread(server.ensure_running)
        stream_id = await asyncio.wait_for(pending, 30)
        assert stream_id is not None and asyncio.get_running_loop().time() - started >= 6.0
        [delivery] = await bus.read_events("w", count=10, block_ms=500)
        assert load_event(delivery.payload).message_id == "during-outage"
    finally:
        stop.set()
        await redis.aclose()
        server.release()
