"""What handlers get: settings, Redis, the bus and the registries features fill in.

Features (assistant, prompts, feed) are installed by ``install_features`` and register their commands,
choice handlers and observers here; nothing is looked up through globals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from core.bus import Bus
from core.commands import ChoiceRegistry, CommandRegistry, Handler
from core.contract import Action, Event, Receipt
from core.settings import Settings

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
    commands: CommandRegistry = field(default_factory=CommandRegistry)
    choices: ChoiceRegistry = field(default_factory=ChoiceRegistry)
    mention: Handler | None = None  # what a plain mention does (the assistant's compose)
    observers: list[Observer] = field(default_factory=list)  # messages/edits/reactions seen (the feed)
    delivery_hooks: list[DeliveryHook] = field(default_factory=list)
    background: dict[str, Background] = field(default_factory=dict)  # name -> runner, started by `run`
    platforms: dict[str, Any] = field(default_factory=dict)  # name -> Capabilities of configured platforms
    extras: dict[str, Any] = field(default_factory=dict)  # feature singletons (assistant, prompt store...)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()
