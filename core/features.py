"""One way to add a feature: a ``Feature`` installs its handlers and background parts into ``Services`` and
contributes ``chorus`` subcommands; the composition root (core/app.py) lists them. Nothing registers itself
by being imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from core.settings import Settings

if TYPE_CHECKING:  # only for annotations: services.py does not import this module
    from core.services import Services

AddParser = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
RunSubcommand = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
Describe = Callable[[Settings], dict[str, str]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CliCommand:
    """A ``chorus <name> ...`` subcommand: how to parse it, and what runs (returns the exit code)."""

    name: str
    add_parser: AddParser
    run: RunSubcommand


@dataclass(frozen=True, slots=True)
class Feature(Generic[T]):
    """``install`` registers the feature into Services and returns its object (the feed, the assistant)."""

    name: str
    install: Callable[[Services], Awaitable[T]]
    cli: tuple[CliCommand, ...] = ()
    describe: Describe | None = None  # lines for ``chorus config check``
