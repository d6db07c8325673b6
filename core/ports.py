"""What one feature provides to others, as types: the assistant summarises for the feed and previews for
the prompt commands; the feed tells adapters which channels it wants; adapters give the feed sources.

A ``Slot`` is filled when the providing feature is installed; ``Services.check()`` refuses to start while
one is empty, naming who should have filled it, so a missing install fails at start, not mid-request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

from core.contract import Event
from core.errors import ConfigError
from core.feed.items import FeedItem

T = TypeVar("T")


class Slot(Generic[T]):
    def __init__(self, what: str, provider: str) -> None:
        self.what = what
        self.provider = provider
        self._value: T | None = None

    def provide(self, value: T) -> None:
        self._value = value

    @property
    def filled(self) -> bool:
        return self._value is not None

    def clear(self) -> None:
        self._value = None

    def optional(self) -> T | None:
        """For callers with a documented fallback (a prompt preview without a model shows the template)."""
        return self._value

    def get(self) -> T:
        if self._value is None:
            raise ConfigError(f"{self.what} is missing: {self.provider} is not installed")
        return self._value


SummaryKind = Literal["stories", "intros"]
"""What a batched summary request writes (each kind has its prompt, ``core/prompts/defaults/<kind>.txt``)."""


class Summarizer(Protocol):
    """Shortens a story or a list of summaries with the model (the feed's digests)."""

    async def __call__(self, text: str, *, max_chars: int) -> str: ...

    async def many(
        self, texts: Sequence[str], *, max_chars: int, community_key: str = "", kind: SummaryKind = "stories"
    ) -> list[str]:
        """One summary per text, in order, from one model request: of stories, or digests' intros (each
        text a digest's story summaries). The caller only batches texts that the same people may read: one
        private community's (``community_key``, whose moderators' prompts apply) or public ones (""). An
        entry the model could not give well is "" (the caller then uses that text's fallback)."""
        ...


class Previewer(Protocol):
    """Writes a post for (moderator's Event, slot -> template overrides, request), saving nothing."""

    async def __call__(self, event: Event, overrides: dict[str, str], request: str) -> str: ...


class DraftRequests(Protocol):
    """The request that made a draft ("" when unknown): the feed shows it beside a published post."""

    async def __call__(self, community_key: str, draft_id: str) -> str: ...


class PublicUrl(Protocol):
    """Where people reach Chorus's HTTP port (links in chat point there)."""

    def __call__(self) -> str: ...


class Interpreter(Protocol):
    """Asks the model to read a member's short instruction: ``instructions`` (the asker's prompt, a system
    message) and ``text`` (the member's words, sent as data); returns the raw answer, which the asker
    validates (the feed's ``/feed steer``). Raises a ``ProviderError`` when no model answers."""

    async def __call__(self, instructions: str, text: str, *, max_tokens: int) -> str: ...


class ChannelFilter(Protocol):
    """Does the feed want this Event's channel (adapters skip publishing what nobody reads)?"""

    async def __call__(self, event: Event) -> bool: ...


class RoleCheck(Protocol):
    """Is ``user`` a moderator of ``community`` on the platform right now? None when the platform cannot
    tell at the moment (unreachable): the caller then refuses moderator rights for now, without caching."""

    async def __call__(self, community: str, user: str) -> bool | None: ...


class RoleChecks:
    """One Slot per platform with its own roles (``PlatformFacts.roles``: Telegram, Discord), filled by that
    platform's adapter when it starts in this process; the web app asks it whether a session's moderator is
    still one. Platforms without roles (console, X) have no slot: the role given at sign-in stands."""

    def __init__(self, platforms_with_roles: Iterable[str]) -> None:
        self._slots: dict[str, Slot[RoleCheck]] = {
            name: Slot(f"the {name} moderator check", f"the {name} adapter") for name in platforms_with_roles
        }

    def slot(self, platform: str) -> Slot[RoleCheck] | None:
        """The platform's slot, or None when it has no roles to re-check."""
        return self._slots.get(platform)


@runtime_checkable
class FeedSource(Protocol):
    """A source an adapter polls for the feed (X accounts, lists, searches)."""

    name: str  # unique and stable, e.g. "x:list:1234"; used as the cursor's key

    async def poll(self, cursor: str | None) -> tuple[Sequence[FeedItem], str | None]:
        """Items since ``cursor`` (None: the source decides how far back) and the next cursor."""
        ...
