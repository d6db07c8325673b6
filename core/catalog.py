"""What the core knows of every platform, whether or not its adapter runs in this process.

Each adapter declares its platform's facts once, SDK-free, in ``bots/<name>/config.py`` (``FACTS``);
``bots.registry.catalog()`` collects them. The core reads limits, labels, links and approval defaults only
from here, so a worker on a machine with no adapter running writes within the same limits as the adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from core.contract import Capabilities

Permalink = Callable[[str, str, str], str]
"""(community, channel, message id) -> the message's public URL, or "" where it has none."""


def no_permalink(community: str, channel: str, message_id: str) -> str:
    return ""


@dataclass(frozen=True, slots=True)
class PlatformFacts:
    name: str
    label: str  # shown to people: "X", "Telegram"
    capabilities: Capabilities
    approval_by_default: bool = False  # publishing there waits for a moderator unless a community says off
    roles: bool = False  # moderators come from the platform's own roles; its adapter re-checks them (web)
    permalink: Permalink = field(default=no_permalink)


UNKNOWN = Capabilities(max_text=1000, max_caption=1000)
"""Limits for a platform nobody declared (an item ingested by a newer version, say): small enough for all."""


class PlatformCatalog:
    """Name -> PlatformFacts for every known platform; unknown names get conservative facts."""

    def __init__(self, facts: Iterable[PlatformFacts] = ()) -> None:
        self._facts: dict[str, PlatformFacts] = {}
        for one in facts:
            self.register(one)

    def register(self, facts: PlatformFacts) -> None:
        self._facts[facts.name] = facts

    def __getitem__(self, name: str) -> PlatformFacts:
        found = self._facts.get(name)
        return found if found is not None else PlatformFacts(name, name.title(), UNKNOWN)

    def __contains__(self, name: object) -> bool:
        return name in self._facts

    def __iter__(self) -> Iterator[PlatformFacts]:
        return iter(self._facts.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._facts))

    def capabilities(self, name: str) -> Capabilities:
        return self[name].capabilities

    def label(self, name: str) -> str:
        return self[name].label

    def permalink(self, platform: str, community: str, channel: str, message_id: str) -> str:
        return self[platform].permalink(community, channel, message_id)
