"""The Platform base class every adapter implements, and the one place Actions degrade to what it can do.

An adapter has five things: ``name``, ``capabilities``, ``start``, ``stop`` and ``deliver``. It publishes
Events through the ``EventSink`` it is given and never calls the assistant directly.
"""

from __future__ import annotations

import abc
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from core.contract import (
    Action,
    Capabilities,
    DirectMessage,
    Edit,
    Event,
    LiveUpdate,
    OfferChoices,
    Post,
    Receipt,
    Reply,
    SendImage,
)
from core.text import split_text, utf16_length, x_weighted_length

if TYPE_CHECKING:
    from core.bus import Bus

EventSink = Callable[[Event], Awaitable[str | None]]
"""Publishes an Event to the bus; returns the stream id, or None if the platform message was seen before."""


class Platform(abc.ABC):
    """A thin adapter: normalise SDK events into Events, deliver Actions through the SDK."""

    name: str
    capabilities: Capabilities = Capabilities()

    @abc.abstractmethod
    async def start(self, publish: EventSink) -> None:
        """Connect and begin publishing Events; returns once running (work continues in tasks)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect cleanly; pending Actions stay in the outbox for the next start."""

    @abc.abstractmethod
    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        """Perform one (already degraded) Action. Raise PlatformError subclasses on failure."""

    def connected(self) -> bool:
        """Whether the adapter is connected to its platform now (``/readyz``); adapters that know say so."""
        return True

    async def show_live(self, update: LiveUpdate) -> bool:
        """Show a draft being written in the platform's own way (True), or leave it to a placeholder
        message that is edited through ``deliver`` (False, the default). Only called when
        ``capabilities.live_drafts``; raise PlatformError subclasses on failure."""
        return False


BlobReader = Callable[[str], Awaitable[bytes]]

_running: weakref.WeakKeyDictionary[Bus, list[Platform]] = weakref.WeakKeyDictionary()


def watch(bus: Bus, platform: Platform) -> None:
    """Count ``platform`` among the adapters this process runs on ``bus`` (senders call this); ``/readyz``
    reports whether each is connected."""
    running = _running.setdefault(bus, [])
    if platform not in running:
        running.append(platform)


def running_adapters(bus: Bus) -> list[Platform]:
    return list(_running.get(bus, []))


def measure_for(caps: Capabilities) -> Callable[[str], int]:
    if caps.weighted_length:
        return x_weighted_length
    return utf16_length if caps.utf16_length else len


def degrade(action: Action, caps: Capabilities) -> list[Action]:
    """Rewrite one Action into Actions the platform supports, within its limits.

    Missing buttons become a numbered list the user answers with ``/choose N``; missing edits become a new
    reply; text over the limit is split; captions over the limit become a short caption plus a message;
    threads without native chaining become consecutive posts.
    """
    measure = measure_for(caps)
    limit = caps.max_text

    def texts(text: str) -> list[str]:
        return split_text(text, limit, measure) or [""]

    match action:
        case OfferChoices() if not caps.buttons:
            lines = [action.text, ""] + [f"{i}. {c.label}" for i, c in enumerate(action.choices, 1)]
            lines.append("Answer with /choose <number>.")
            as_text = Reply(**_common(action), text="\n".join(lines), reply_to=action.reply_to)
            return degrade(as_text, caps)
        case OfferChoices() if measure(action.text) > limit:
            *head, last = texts(action.text)
            replies: list[Action] = [
                Reply(**_common(action, i), text=t, reply_to=action.reply_to) for i, t in enumerate(head)
            ]
            return [*replies, action.model_copy(update={"text": last})]
        case Edit() if not caps.edits:
            return degrade(Reply(**_common(action), text=action.text), caps)
        case Edit() if measure(action.text) > limit:
            return [action.model_copy(update={"text": split_text(action.text, limit, measure)[0]})]
        case SendImage() if not caps.images:
            text = action.caption or action.alt_text or "(image)"
            return degrade(Reply(**_common(action), text=text, reply_to=action.reply_to), caps)
        case SendImage() if measure(action.caption) > caps.max_caption:
            caption = action.caption.strip()  # split_text strips: cut the same text it measured
            short = split_text(caption, caps.max_caption, measure)[0]
            rest = caption[len(short) :].strip()
            follow = Reply(**_common(action, 1), text=rest)
            return [action.model_copy(update={"caption": short}), *degrade(follow, caps)]
        case Reply() | DirectMessage() if measure(action.text) > limit:
            parts = texts(action.text)
            return [
                action.model_copy(update={"text": t, "id": _part_id(action.id, i)})
                for i, t in enumerate(parts)
            ]
        case Post() if action.parts and not caps.threads:
            return [
                piece
                for i, part in enumerate(action.parts)
                for piece in degrade(Post(**_common(action, i), text=part), caps)
            ]
        case Post() if not action.parts and measure(action.text) > limit:
            return [Post(**_common(action, i), text=t) for i, t in enumerate(texts(action.text))]
    return [action]


def _part_id(action_id: str, index: int) -> str:
    """Pieces of one Action get their own ids, so each is recorded as sent on its own."""
    return f"{action_id}#{index}"


def _common(action: Action, index: int = 0) -> dict[str, Any]:
    return {
        "id": _part_id(action.id, index),
        "platform": action.platform,
        "community": action.community,
        "channel": action.channel,
        "thread": action.thread,
        "event_id": action.event_id,
        "ref": action.ref,
    }
