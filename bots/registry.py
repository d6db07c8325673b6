"""Which adapters exist, their platforms' facts, and how the composition root loads them.

Each ``bots/<name>/config.py`` defines, without importing its SDK (``chorus config check`` and workers on
machines with no adapter read every one):
  - ``SETTINGS``: its pydantic-settings class (an ``AdapterSettings``);
  - ``FACTS``: the platform's facts (``core.catalog.PlatformFacts``): limits, label, links, approval default.
Each ``bots/<name>/adapter.py`` defines ``create(settings, services, options) -> Platform``.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any, Protocol, cast

from core.catalog import PlatformCatalog, PlatformFacts
from core.platform import Platform
from core.services import Services

PLATFORMS = ("telegram", "discord", "x")  # real platforms, started when configured
ALL = ("console", *PLATFORMS)


class AdapterSettings(Protocol):
    @property
    def configured(self) -> bool: ...

    def missing(self) -> list[str]: ...

    def describe(self) -> dict[str, str]: ...

    def secrets(self) -> list[str]: ...


def _config(name: str) -> ModuleType:
    return importlib.import_module(f"bots.{name}.config")


def settings_for(name: str) -> AdapterSettings:
    return cast(AdapterSettings, _config(name).SETTINGS())


def facts(name: str) -> PlatformFacts:
    found = _config(name).FACTS
    if not isinstance(found, PlatformFacts):
        raise TypeError(f"bots/{name}/config.py: FACTS must be a PlatformFacts")
    return found


@functools.cache
def _all_facts() -> tuple[PlatformFacts, ...]:
    return tuple(facts(name) for name in ALL if available(name))


def catalog() -> PlatformCatalog:
    """A new catalog of every known platform (running in this process or not)."""
    return PlatformCatalog(_all_facts())


def available(name: str) -> bool:
    """True when the adapter's package has been built (its config module exists)."""
    try:
        _config(name)
    except ModuleNotFoundError:
        return False
    return True


def create(name: str, services: Services, options: dict[str, Any]) -> Platform:
    module = importlib.import_module(f"bots.{name}.adapter")
    platform: Platform = module.create(settings_for(name), services, options)
    return platform
