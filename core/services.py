"""What handlers get: settings, Redis, the bus, the platforms' facts, the kernel's stores and the
registries features fill in.

Features (core/features.py, listed in core/app.py) register their commands, choice handlers, observers,
delivery hooks and background parts here, and provide what other features use through typed ``Slot``s
(core/ports.py); ``check()`` refuses to start with an empty slot. Nothing is looked up by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from core.bus import Bus
from core.catalog import PlatformCatalog
from core.commands import ChoiceRegistry, CommandRegistry
from core.contract import Action, Event, Receipt
from core.errors import ConfigError
from core.ports import (
    ChannelFilter,
    DraftRequests,
    FeedSource,
    Interpreter,
    Previewer,
    PublicUrl,
    RoleChecks,
    Slot,
    Summarizer,
)
from core.prompts.service import Prompts
from core.scheduler import Scheduler
from core.settings import Settings

Handler = Callable[[Event, "Services"], Awaitable[list[Action]]]
Observer = Callable[[Event, "Services"], Awaitable[None]]
DeliveryHook = Callable[[Action, Receipt], Awaitable[None]]
"""Called after an Action was delivered (the feed ingests published posts this way)."""
Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A long-running part a feature adds to ``chorus run`` (e.g. the feed's HTTP endpoint); returns on stop."""


@dataclass
class Services:
    settings: Settings
    redis: aioredis.Redis
    bus: Bus
    platforms: PlatformCatalog  # facts of every known platform, running in this process or not
    scheduler: Scheduler = field(init=False)
    prompts: Prompts = field(init=False)  # each community's prompts and settings (the assistant reads them)
    roles: RoleChecks = field(init=False)  # platforms' moderator checks, filled by their running adapters
    commands: CommandRegistry[Services] = field(default_factory=CommandRegistry)
    choices: ChoiceRegistry[Services] = field(default_factory=ChoiceRegistry)
    mention: Handler | None = None  # what a plain mention does (the assistant's compose)
    observers: list[Observer] = field(default_factory=list)  # messages/edits/reactions seen (the feed)
    delivery_hooks: list[DeliveryHook] = field(default_factory=list)
    background: dict[str, Background] = field(default_factory=dict)  # name -> runner, started by `run`
    feed_sources: dict[str, FeedSource] = field(default_factory=dict)  # adapters' polled sources, by name
    summarizer: Slot[Summarizer] = field(
        default_factory=lambda: Slot("the digest summarizer", "the assistant")
    )
    previewer: Slot[Previewer] = field(default_factory=lambda: Slot("the prompt previewer", "the assistant"))
    draft_requests: Slot[DraftRequests] = field(
        default_factory=lambda: Slot("the drafts' requests", "the assistant")
    )
    interpreter: Slot[Interpreter] = field(
        default_factory=lambda: Slot("the model reading members' instructions", "the assistant")
    )
    feed_channels: Slot[ChannelFilter] = field(
        default_factory=lambda: Slot("the feed's channels", "the feed")
    )
    public_url: Slot[PublicUrl] = field(default_factory=lambda: Slot("the HTTP port's address", "the feed"))
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.redis)
        self.prompts = Prompts(self.redis, self.platforms)
        self.roles = RoleChecks(p.name for p in self.platforms if p.roles)

    def check(self) -> None:
        """Every slot filled and a mention handler set: what a start with a feature missing fails on."""
        slots = (
            self.summarizer,
            self.previewer,
            self.draft_requests,
            self.interpreter,
            self.feed_channels,
            self.public_url,
        )
        for slot in slots:
            slot.get()
        if self.mention is None:
            raise ConfigError("nothing answers mentions: the assistant is not installed")

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()
