"""Composition root: wires Redis, the bus, features, adapters, workers, senders and the scheduler.

``chorus run`` and ``chorus worker`` differ only in which of these parts they start; both go through the
same streams, so a single process and a fleet of workers behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bots import registry
from core import builtin
from core.assistant import commands as assistant
from core.assistant.commands import Assistant
from core.bus import Bus
from core.contract import Event
from core.errors import ConfigError
from core.features import Feature
from core.feed import commands as feed
from core.feed.service import FeedService
from core.health import serve_ops
from core.platform import EventSink, Platform
from core.prompts import commands as prompts
from core.redis_server import Outage, open_redis, until_answered
from core.router import Router
from core.sender import Sender
from core.services import Services
from core.settings import Settings
from core.web import commands as web
from core.worker import Worker

log = logging.getLogger(__name__)

FEATURES: tuple[Feature[Any], ...] = (
    builtin.FEATURE,
    prompts.FEATURE,
    assistant.FEATURE,
    feed.FEATURE,
    web.FEATURE,
)
"""Every feature, in install order; each adds commands, handlers, background parts and CLI subcommands."""


@dataclass
class Chorus:
    """What ``build`` made: the Services handlers get, and the features' own objects (tools reach them here)."""

    services: Services
    assistant: Assistant
    feed: FeedService


async def build(settings: Settings, redis: aioredis.Redis) -> Chorus:
    services = Services(
        settings=settings,
        redis=redis,
        bus=Bus.from_settings(redis, settings),
        platforms=registry.catalog(),
    )
    await builtin.FEATURE.install(services)
    await prompts.FEATURE.install(services)
    built = Chorus(services, await assistant.FEATURE.install(services), await feed.FEATURE.install(services))
    await web.FEATURE.install(services)
    services.check()
    return built


async def build_services(settings: Settings, redis: aioredis.Redis) -> Services:
    return (await build(settings, redis)).services


@contextlib.asynccontextmanager
async def services_for(settings: Settings, stop: asyncio.Event | None = None) -> AsyncIterator[Services]:
    async with open_redis(settings, stop) as redis:
        services = await build_services(settings, redis)
        try:
            yield services
        finally:
            await services.aclose()


def choose_platforms(requested: list[str] | None) -> list[str]:
    """Requested platforms, else every configured one, else the console."""
    if requested:
        for name in requested:
            if name not in registry.ALL or not registry.available(name):
                raise ConfigError(f"unknown or unavailable platform {name!r}")
            adapter_settings = registry.settings_for(name)
            if name != "console" and not adapter_settings.configured:
                raise ConfigError(f"{name} is not configured: set {', '.join(adapter_settings.missing())}")
        return requested
    configured = [
        p for p in registry.PLATFORMS if registry.available(p) and registry.settings_for(p).configured
    ]
    return configured or ["console"]


@dataclass
class Run:
    """One running process: what it started, and how to stop it."""

    settings: Settings
    platforms: list[str] = field(default_factory=list)
    worker: bool = True
    scheduler: bool = True
    background: bool = True  # feature services such as the feed's HTTP endpoint
    options: dict[str, Any] = field(default_factory=dict)
    ops_port: int = (
        0  # a worker's own /metrics, /healthz and /readyz (``chorus run`` has them on the HTTP port)
    )
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self) -> None:
        async with services_for(self.settings, self.stop) as services:  # waits for Redis until stopped
            await self.serve(services)

    async def serve(self, services: Services) -> None:
        s = self.settings
        tasks: list[asyncio.Task[None]] = []
        adapters: list[Platform] = []
        options = {**self.options, "shutdown": self.stop.set}
        try:
            for name in self.platforms:
                adapter = registry.create(name, services, options)
                adapters.append(adapter)
            for adapter in adapters:
                sender = Sender(
                    services.bus, adapter, claim_idle_ms=s.claim_idle_ms, hooks=services.delivery_hooks
                )
                tasks.append(asyncio.create_task(sender.run(self.stop), name=f"sender-{adapter.name}"))
            if self.worker:
                worker = Worker(
                    services.bus,
                    Router(services),
                    concurrency=s.worker_concurrency,
                    max_attempts=s.max_attempts,
                    claim_idle_ms=s.claim_idle_ms,
                )
                tasks.append(asyncio.create_task(worker.run(self.stop), name="worker"))
            if self.scheduler:
                tasks.append(asyncio.create_task(services.scheduler.run(self.stop), name="scheduler"))
            if self.ops_port:
                ops = serve_ops(services, s.worker_metrics_host, self.ops_port, self.stop)
                tasks.append(asyncio.create_task(ops, name="metrics-port"))
            if self.background:
                for name, runner in services.background.items():
                    tasks.append(asyncio.create_task(runner(self.stop), name=name))
            publish = waiting_publisher(services.bus, self.stop)
            for adapter in adapters:
                await adapter.start(publish)
            log.info(
                "running: platforms=%s worker=%s scheduler=%s", self.platforms, self.worker, self.scheduler
            )
            await _until_stopped(self.stop, tasks)
        finally:
            # Workers and senders finish what they hold while the adapters are still connected.
            self.stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for task, result in zip(tasks, results, strict=True):
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    log.error("%s stopped with %r", task.get_name(), result)
            for adapter in adapters:
                with contextlib.suppress(Exception):
                    await adapter.stop()


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for a stop request or for any background task to die (which stops everything)."""
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    for task in done:
        if task is not waiter and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


def install_signal_handlers(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)


def waiting_publisher(bus: Bus, stop: asyncio.Event) -> EventSink:
    """What adapters hand Events to. A platform that gave us a message does not give it again, so an Event
    that arrives while Redis restarts waits for Redis (``until_answered``) instead of failing once the
    client's own retries (a few seconds) are spent."""
    outage = Outage(log, "Redis (incoming events)", waiting="incoming messages wait for it")

    async def publish(event: Event) -> str | None:
        return await until_answered(lambda: bus.publish(event), outage=outage, stop=stop)

    return publish
