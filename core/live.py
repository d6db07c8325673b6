"""Drafts shown while they are written: partial text from the worker to the chat, beside the outbox.

The worker streams the model's answer and publishes the readable text so far (``LivePublisher``) to a
short-lived Redis stream per platform (``keys.live``). In the adapter's process, ``LiveShower`` (started by
the Sender) reads it and shows it, throttled to the platform's interval (``Capabilities.live_interval_s``):
natively where the adapter has a way (``Platform.show_live``: Telegram's ``sendMessageDraft`` in private
chats, the console printing as text comes), otherwise as a placeholder message that is edited, delivered
through the adapter's own ``deliver`` so its escaping, mention rules and rate-limit errors apply (a 429
delays the next update; updates in between are skipped, only the latest text matters).

The finished draft still travels as Actions through the outbox, so crash recovery and "never twice" do not
change: when the first Reply to the Event is delivered, the Sender asks ``LiveShower.take`` whether a
placeholder shows the draft; if so, the Reply is delivered as an edit of it (idempotent, so a redelivery
after a crash edits again instead of posting twice). A refusal is that first Reply too, so what was shown
is replaced by the refusal. Local moderation rules are applied to every update before it is published; an
update they refuse withdraws what was shown and ends the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import keys
from core.bus import Bus
from core.contract import Action, Capabilities, Edit, Event, LiveUpdate, Reply, placeholder_id
from core.errors import PlatformError, PlatformRateLimited
from core.platform import Platform, measure_for
from core.text import defuse_mentions, truncate

log = logging.getLogger(__name__)

LIVE_TTL_S = 300  # the stream of partial drafts is only worth anything while a draft is being written
LIVE_MAXLEN = 10_000
CLAIM_TTL_S = 86400
PUBLISH_INTERVAL_S = 0.2  # the worker publishes at most this often (the adapter throttles again)
FIRST_AFTER_S = 0.3  # a draft finished sooner is not shown while written (no flicker for fast models)
WRITING = " …"  # shown after partial text: more is coming
WITHDRAWN = "…"  # what a placeholder shows when an update was refused


Allowed = Callable[[str], bool]


class LivePublisher:
    """Worker side: publish the growing text of one Event's draft (throttled, moderated, size-capped)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        event: Event,
        *,
        allowed: Allowed,
        max_chars: int,
        interval_s: float = PUBLISH_INTERVAL_S,
        first_after_s: float = FIRST_AFTER_S,
    ) -> None:
        self.redis = redis
        self.event = event
        self.allowed = allowed
        self.max_chars = max_chars
        self.interval_s = interval_s
        self.stopped = False
        self._not_before = time.monotonic() + first_after_s
        self._last = 0.0
        self._seq = 0
        self._sent = ""

    async def __call__(self, text: str) -> None:
        if self.stopped:
            return
        text = defuse_mentions(" ".join(text.split(" ")).strip())
        if not text or text == self._sent:
            return
        now = time.monotonic()
        if now < self._not_before or (now - self._last < self.interval_s and self._sent):
            return
        if not self.allowed(text):  # local rules refuse it: take back what was shown, show no more
            self.stopped = True
            await self._publish("", withdrawn=True)
            return
        self._last, self._sent = now, text
        await self._publish(truncate(text, self.max_chars))

    async def _publish(self, text: str, *, withdrawn: bool = False) -> None:
        self._seq += 1
        e = self.event
        update = LiveUpdate(
            event_id=e.id,
            platform=e.platform,
            community=e.community,
            channel=e.channel,
            thread=e.thread,
            reply_to=e.message_id,
            private=e.private,
            text=text,
            withdrawn=withdrawn,
            seq=self._seq,
        )
        stream = keys.live(e.platform)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(stream, {"u": update.model_dump_json()}, maxlen=LIVE_MAXLEN, approximate=True)
                pipe.expire(stream, LIVE_TTL_S)
                await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError) as exc:  # a preview is not worth failing a draft
            log.warning("live draft not published (%s)", type(exc).__name__)


@dataclass
class _Shown:
    """What the adapter process shows for one Event."""

    latest: LiveUpdate
    shown_text: str = ""
    last_at: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    done: bool = False
    seen_at: float = field(default_factory=time.monotonic)  # when the latest update arrived


class LiveShower:
    """Adapter side: show live drafts of one platform; hand the placeholder to the final Reply."""

    def __init__(self, bus: Bus, platform: Platform, *, max_events: int = 1000) -> None:
        self.bus = bus
        self.platform = platform
        self.caps: Capabilities = platform.capabilities
        self.max_events = max_events
        self.updates_shown = 0
        self._events: dict[str, _Shown] = {}
        self._finished: dict[str, float] = {}  # event id -> when its final Reply was delivered

    @property
    def enabled(self) -> bool:
        return self.caps.live_drafts

    async def run(self, stop: asyncio.Event) -> None:
        """Read the platform's live stream from now on until ``stop``; older updates are stale."""
        if not self.enabled:
            return
        stream = keys.live(self.platform.name)
        last_id = "$"
        try:
            while not stop.is_set():
                try:
                    found: Any = await self.bus.redis.xread({stream: last_id}, count=100, block=200)
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    log.warning("live drafts: redis unavailable (%s)", type(exc).__name__)
                    await asyncio.sleep(1)
                    continue
                for _, entries in found or []:
                    for entry_id, fields in entries:
                        last_id = entry_id
                        raw = fields.get(b"u") or fields.get("u")
                        if raw:
                            self.offer(LiveUpdate.model_validate_json(raw))
        finally:
            for shown in list(self._events.values()):
                if shown.task is not None:
                    shown.task.cancel()
            await asyncio.gather(
                *(s.task for s in self._events.values() if s.task is not None), return_exceptions=True
            )

    def offer(self, update: LiveUpdate) -> None:
        """Take a newer text for an Event; its own task shows it when the interval allows."""
        if update.event_id in self._finished:
            return
        shown = self._events.get(update.event_id)
        if shown is None:
            if len(self._events) >= self.max_events:
                self._forget_abandoned()
            if len(self._events) >= self.max_events:
                return
            shown = _Shown(update)
            self._events[update.event_id] = shown
            shown.task = asyncio.create_task(self._show_loop(shown), name=f"live-{update.event_id}")
        elif update.seq <= shown.latest.seq:
            return
        shown.latest, shown.seen_at = update, time.monotonic()
        shown.wake.set()

    def interval(self, update: LiveUpdate) -> float:
        return self.caps.live_private_interval_s if update.private else self.caps.live_interval_s

    async def _show_loop(self, shown: _Shown) -> None:
        while not shown.done:
            await shown.wake.wait()
            shown.wake.clear()
            wait = shown.last_at + self.interval(shown.latest) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            async with shown.lock:
                if shown.done:
                    return
                update = shown.latest
                if update.text == shown.shown_text and not update.withdrawn:
                    continue
                try:
                    await self._show(update)
                except PlatformRateLimited as exc:  # wait as asked; the latest text goes next
                    log.info(
                        "live draft %s: rate limited, next update in %.1fs", update.event_id, exc.retry_after
                    )
                    shown.last_at = time.monotonic() + exc.retry_after
                    shown.wake.set()
                    continue
                except PlatformError as exc:  # a preview that cannot be shown is not an error
                    log.info("live draft %s not shown: %s", update.event_id, exc)
                    shown.done = True
                    return
                shown.shown_text, shown.last_at = update.text, time.monotonic()
                self.updates_shown += 1
                if update.withdrawn:
                    shown.done = True
                    return

    async def _show(self, update: LiveUpdate) -> None:
        text = WITHDRAWN if update.withdrawn else update.text + WRITING
        if await self.platform.show_live(update.model_copy(update={"text": text})):
            return
        placeholder = await self.bus.receipt(update.placeholder_id)
        common = {
            "platform": update.platform,
            "community": update.community,
            "channel": update.channel,
            "thread": update.thread,
            "event_id": update.event_id,
        }
        action: Action
        if placeholder is None:
            action = Reply(id=update.placeholder_id, text=text, reply_to=update.reply_to, **common)
        else:
            action = Edit(
                id=f"{update.placeholder_id}.{update.seq}",
                target_action=update.placeholder_id,
                text=text,
                **common,
            )
        receipt = await self.platform.deliver(action, self.bus.get_blob)
        if placeholder is None:
            await self.bus.record_sent(action, receipt)

    async def take(self, action: Action) -> Action:
        """The Action to deliver instead of ``action``: the Event's first Reply edits its placeholder.

        Stops showing the Event's live draft first (waiting for an update in flight), so nothing shown
        later can overwrite the finished draft.
        """
        if not self.enabled or not isinstance(action, Reply) or not action.event_id:
            return action
        event_id = action.event_id
        shown = self._events.pop(event_id, None)
        self._finished[event_id] = time.monotonic()
        self._forget_old()
        if shown is not None:
            async with shown.lock:
                shown.done = True
                shown.wake.set()
            # the finished draft is one more edit of the same message: keep to the interval (flood limits)
            wait = shown.last_at + self.interval(shown.latest) - time.monotonic()
            if shown.shown_text and wait > 0:
                await asyncio.sleep(wait)
        placeholder = await self.bus.receipt(placeholder_id(event_id))
        if placeholder is None or not placeholder.message_ids:
            return action
        if measure_for(self.caps)(action.text) > self.caps.max_text:
            return action  # a draft longer than one message is sent as messages; the placeholder stays
        claim = keys.live_claim(event_id)
        first = await self.bus.redis.set(claim, action.id, nx=True, ex=CLAIM_TTL_S)
        if not first:
            owner = await self.bus.redis.get(claim)
            if (owner.decode() if isinstance(owner, bytes) else owner) != action.id:
                return action  # a later Reply of the same Event: a message of its own
        return Edit(
            id=action.id,
            platform=action.platform,
            community=action.community,
            channel=action.channel,
            thread=action.thread,
            event_id=action.event_id,
            ref=action.ref,
            target_action=placeholder_id(event_id),
            text=action.text,
        )

    def _forget_abandoned(self) -> None:
        """Drop live drafts whose finished draft never came here (their Event failed or went elsewhere)."""
        cutoff = time.monotonic() - LIVE_TTL_S
        for event_id, shown in list(self._events.items()):
            if shown.seen_at < cutoff:
                del self._events[event_id]
                shown.done = True
                if shown.task is not None:
                    shown.task.cancel()

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - LIVE_TTL_S
        for event_id in [e for e, at in self._finished.items() if at < cutoff]:
            del self._finished[event_id]


__all__ = ["LivePublisher", "LiveShower", "LiveUpdate", "placeholder_id"]
