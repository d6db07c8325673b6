"""Which adapters exist and how the composition root loads them, without importing any SDK up front.

Each ``bots/<name>/adapter.py`` defines:
  - ``SETTINGS``: its pydantic-settings class (a ``ChorusSettings``) with a ``configured`` property and
    ``missing()`` listing what is needed to run;
  - ``create(settings, services, options) -> Platform``.
Importing ``bots.<name>.config`` must not import the SDK (``chorus config check`` reads every config).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from core.platform import Platform
from core.services import Services
from core.settings import ChorusSettings

PLATFORMS = ("telegram", "discord", "x")  # real platforms, started when configured
ALL = ("console", *PLATFORMS)


class AdapterSettings(Protocol):
    @property
    def configured(self) -> bool: ...

    def missing(self) -> list[str]: ...

    def describe(self) -> dict[str, str]: ...


def settings_for(name: str) -> ChorusSettings:
    module = importlib.import_module(f"bots.{name}.config")
    settings: ChorusSettings = module.SETTINGS()
    return settings


def available(name: str) -> bool:
    """True when the adapter's package has been built (its config module exists)."""
    try:
        importlib.import_module(f"bots.{name}.config")
    except ModuleNotFoundError:
        return False
    return True


def create(name: str, services: Services, options: dict[str, Any]) -> Platform:
    module = importlib.import_module(f"bots.{name}.adapter")
    platform: Platform = module.create(settings_for(name), services, options)
    return platform
