"""The Discord adapter's test harness: the loopback FakeDiscord, the real adapter pointed at it through
DISCORD_API_BASE_URL / DISCORD_GATEWAY_URL, and the core's Worker + Sender running in-process on real Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from bots.discord.adapter import DiscordPlatform
from bots.discord.config import DiscordSettings
from bots.discord.markup import unescape
from core.contract import Event
from core.router import Router
from core.sender import Sender
from core.services import Services
from core.settings import Settings
from core.worker import Worker
from tests.fakes.discord_api import MANAGE_GUILD, FakeDiscord, SentMessage
from tests.fakes.openai_api import FakeOpenAI
from tests.support import assistant_of, build_services

TOKEN = "discord-test-token"
BOT_ID = 1200000000000000001
APP_ID = 1200000000000000002
GUILD_ID = 1200000000000000003
CHANNEL_ID = 1200000000000000004
OTHER_CHANNEL_ID = 1200000000000000005
FAST_GUILD_READY_S = 0.05


def discord_settings(dc: FakeDiscord, **extra: object) -> DiscordSettings:
    values: dict[str, object] = {
        # Drafts shown while written are tested in test_live.py; elsewhere they would add placeholder
        # messages whose number depends on how fast the machine is.
        "DISCORD_LIVE_DRAFTS": False,
        **extra,
    }
    return DiscordSettings(
        _env_file=None,  # a developer's .env must not change the tests
        DISCORD_BOT_TOKEN=SecretStr(TOKEN),
        DISCORD_API_BASE_URL=dc.api_base,
        DISCORD_GATEWAY_URL=dc.gateway_url,
        **values,  # type: ignore[arg-type]
    )


def shown(message: SentMessage) -> str:
    """What a person sees of a bot message: content and embed texts, markdown escapes rendered."""
    parts = [unescape(message.content)] if message.content else []
    parts += [unescape(e.get("description") or "") for e in message.embeds if e.get("description")]
    return "\n".join(parts)


def custom_ids(message: SentMessage) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row.get("components", [])]


@dataclass
class People:
    alice: int  # a member
    bob: int  # another member
    mod: int  # has Manage Server
    helper: int  # has the configured moderator role
    helper_role: int


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, bot_id=BOT_ID, app_id=APP_ID) as fake:
        fake.add_guild(GUILD_ID, "Chorus HQ")
        fake.add_channel(GUILD_ID, "general", channel_id=CHANNEL_ID)
        fake.add_channel(GUILD_ID, "news", channel_id=OTHER_CHANNEL_ID)
        yield fake


@pytest.fixture
def people(dc: FakeDiscord) -> People:
    helper_role = dc.add_role(GUILD_ID, "Helpers")
    return People(
        alice=dc.add_member(GUILD_ID, username="alice"),
        bob=dc.add_member(GUILD_ID, username="bob"),
        mod=dc.add_member(GUILD_ID, username="mod", permissions=MANAGE_GUILD),
        helper=dc.add_member(GUILD_ID, username="helper", roles=[helper_role]),
        helper_role=helper_role,
    )


@dataclass
class Running:
    """The adapter connected to the fake, with the core's Worker and Sender draining the streams."""

    dc: FakeDiscord
    platform: DiscordPlatform
    services: Services
    published: list[Event] = field(default_factory=list)  # everything the adapter published
    accepted: list[Event] = field(default_factory=list)  # what the bus took (not seen before)

    def bot_messages(self, channel_id: int | None = CHANNEL_ID) -> list[SentMessage]:
        return [m for m in self.dc.messages if channel_id is None or m.channel_id == channel_id]

    async def wait_for(self, predicate: Callable[[], object], what: str, timeout: float = 20.0) -> object:
        return await self.dc.wait_for(predicate, timeout=timeout, what=what)

    async def settled(self, timeout: float = 20.0) -> None:
        """Every accepted Event processed and every Action it produced delivered."""
        deadline = time.monotonic() + timeout
        while not all([await self.services.bus.settled(e.id) for e in self.accepted]):
            if time.monotonic() > deadline:
                raise AssertionError("events not settled in time")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(
    dc: FakeDiscord,
    services: Services,
    *,
    pipeline: bool = True,
    guild_ready_timeout: float = FAST_GUILD_READY_S,
    **settings: object,
) -> AsyncIterator[Running]:
    """Start the real adapter (and, with ``pipeline``, a Worker and a Sender) against the fake.

    ``guild_ready_timeout``: how long discord.py waits for the next GUILD_CREATE before on_ready (2 s in
    production; short here, longer where a test needs the window between READY and on_ready)."""
    platform = DiscordPlatform(
        discord_settings(dc, **settings),
        services,
        fast_identify=True,
        ready_timeout_s=10,
        client_options={"guild_ready_timeout": guild_ready_timeout},
    )
    run = Running(dc, platform, services)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def publish(event: Event) -> str | None:
        run.published.append(event)
        stream_id = await services.bus.publish(event)
        if stream_id is not None:
            run.accepted.append(event)
        return stream_id

    if pipeline:
        worker = Worker(services.bus, Router(services), concurrency=8, claim_idle_ms=60_000)
        sender = Sender(services.bus, platform, hooks=services.delivery_hooks, claim_idle_ms=60_000)
        tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(sender.run(stop))]
    try:
        await platform.start(publish)
        yield run
    finally:
        stop.set()
        await platform.stop()  # the discord.py client closes before the fake does
        await asyncio.gather(*tasks, return_exceptions=True)
    assert dc.unhandled == [], dc.unhandled
    for message in dc.messages:  # whatever the test sent, nothing the bot wrote can mass-ping
        assert message.allowed_mentions is not None and message.allowed_mentions.get("parse") == [], message
        assert not message.mention_everyone and message.pinged_role_ids == [], message


@contextlib.asynccontextmanager
async def openai_world(
    settings: Settings, redis: aioredis.Redis, **overrides: object
) -> AsyncIterator[tuple[FakeOpenAI, Services]]:
    """Services whose model and images are the loopback fake OpenAI (the real openai client over sockets)."""
    async with FakeOpenAI() as api:
        configured = settings.model_copy(
            update={
                "openai_api_key": SecretStr(api.api_key or ""),
                "openai_base_url": api.base_url,
                **overrides,
            }
        )
        services = await build_services(configured, redis)
        try:
            yield api, services
        finally:
            await services.aclose()
            await _close_chat_client(services)


@pytest.fixture
async def openai_services(
    settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[tuple[FakeOpenAI, Services]]:
    async with openai_world(settings, redis) as world:
        yield world


async def _close_chat_client(services: Services) -> None:
    """ModelRuntime.aclose leaves the chat model's HTTP client open (its pool keeps a socket to the fake
    OpenAI, reported at garbage collection); close it here until the assistant closes it itself."""
    model = getattr(assistant_of(services).runtime, "_model", None)
    client = getattr(model, "root_async_client", None)
    if client is not None:
        await client.close()
