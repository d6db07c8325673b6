"""Drains a platform's outbox: degrade each Action to what the platform can do, deliver, record, ack.

Each chat is a lane: its Actions go out one after another, in outbox order (an edit after the message it
edits, the parts of a thread in order), while lanes run side by side (at most ``lanes`` at once), so a
slow chat or a rate limit on one chat does not hold up the others. The platform's own limits (Telegram's
30/s overall and 20/min per group, Discord's per-route buckets) are kept by the adapter's SDK.

Nothing twice: once the platform accepted a send, its receipt is recorded with retries until Redis answers
(``until_answered``), and until then it is remembered in memory, so a Redis restart between the two never
makes the Action go out again. Nothing lost: a Redis outage before the send makes the lane wait and retry
the same Action (the batch in hand is kept, not dropped until a reclaim). Rate limits wait for the time
the platform asked for; transient failures back off; an Action the platform refuses for good is
dead-lettered. Each piece of a split Action is recorded on its own, so a crash in the middle resends only
what was not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from core import metrics
from core.bus import Bus, Delivery, load_action
from core.choices import NumberedChoices
from core.contract import Action, DirectMessage, Edit, OfferChoices, Receipt
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable
from core.live import LiveShower
from core.logs import Outage
from core.platform import Platform, degrade, watch
from core.redis_server import REDIS_DOWN, Backoff, pause, until_answered
from core.services import DeliveryHook
from core.worker import ALIVE_TTL_MS, HEARTBEAT_S, consumer_name, first_of

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Stopping(Exception):
    """Shutdown interrupted a wait; the Action stays pending for the next start."""


def lane_of(action: Action) -> str:
    """The conversation whose Actions must keep their order: a chat, or a person for direct messages."""
    if isinstance(action, DirectMessage):
        return f"dm:{action.user}"
    return f"{action.community}:{action.channel}"


class Sender:
    def __init__(
        self,
        bus: Bus,
        platform: Platform,
        *,
        hooks: Sequence[DeliveryHook] = (),
        claim_idle_ms: int = 30_000,
        max_attempts: int = 5,
        max_wait_s: float = 900.0,
        lanes: int = 32,
        backlog: int = 512,
        record_deadline_s: float = 600.0,
        stop_grace_s: float = 15.0,
    ) -> None:
        self.bus = bus
        self.platform = platform
        self.name = f"{consumer_name()}-{platform.name}"
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.backlog = backlog
        self.record_deadline_s = record_deadline_s
        self.stop_grace_s = stop_grace_s
        self.delivered = 0
        self.hooks = list(hooks)
        self.outage = Outage(log, f"Redis (sender {platform.name})", waiting="sends resume when it answers")
        self.live = LiveShower(bus, platform)  # drafts shown while written; their final Reply replaces them
        self._stop = asyncio.Event()
        self._slots = asyncio.Semaphore(lanes)
        self._queues: dict[str, deque[Delivery]] = {}
        self._held: dict[str, Delivery] = {}  # Delivery.key -> entries queued or in flight here
        self._room = asyncio.Event()
        self._lanes: set[asyncio.Task[None]] = set()
        self._accepted: dict[str, Receipt] = {}  # sent, receipt not yet stored: never send these again
        watch(bus, platform)  # /readyz reports whether it is connected

    async def run(self, stop: asyncio.Event) -> None:
        """Read the outbox into per-chat lanes until ``stop``; then let each lane finish its current send."""
        self._stop = stop
        keeper = asyncio.create_task(self._keep_claims(stop), name=f"sender-claims-{self.platform.name}")
        live = asyncio.create_task(self.live.run(stop), name=f"live-{self.platform.name}")
        backoff = Backoff()
        try:
            while not stop.is_set():
                room = self.backlog - len(self._held)
                if room <= 0:
                    self._room.clear()
                    await first_of(self._room.wait(), stop.wait())
                    continue
                try:
                    deliveries = await self.bus.read_actions(
                        self.platform.name, self.name, count=min(room, 100), block_ms=200
                    )
                except REDIS_DOWN as exc:
                    self.outage.failed(exc)
                    await backoff.wait(stop)
                    continue
                backoff.reset()
                self.outage.recovered()
                for delivery in deliveries:
                    self._queue(delivery)
        finally:
            for task in (keeper, live):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for delivery in await self.bus.stop_reading(self.name):  # received as we stopped: ours
                self._queue(delivery)
            if self._lanes:
                _, late = await asyncio.wait(list(self._lanes), timeout=self.stop_grace_s + 15)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)

    # -- lanes -------------------------------------------------------------------------------------
    def _queue(self, delivery: Delivery) -> None:
        if delivery.key in self._held:
            return
        try:
            lane = lane_of(load_action(delivery.payload))
        except ValueError:
            lane = ""  # handle() dead-letters it
        self._held[delivery.key] = delivery
        queue = self._queues.get(lane)
        if queue is None:
            queue = self._queues[lane] = deque()
            task = asyncio.create_task(self._drain(lane, queue), name=f"sender-lane-{self.platform.name}")
            self._lanes.add(task)
            task.add_done_callback(self._lanes.discard)
        queue.append(delivery)

    async def _drain(self, lane: str, queue: deque[Delivery]) -> None:
        try:
            while queue and not self._stop.is_set():
                delivery = queue[0]
                async with self._slots:
                    await self._handle_until_done(delivery)
                queue.popleft()
                self._held.pop(delivery.key, None)
                self._room.set()
        finally:
            del self._queues[lane]
            for left in queue:  # stopping: they stay pending for a reclaim
                self._held.pop(left.key, None)

    async def _handle_until_done(self, delivery: Delivery) -> None:
        """Handle one Action; while Redis is away, wait and handle the same Action again."""
        backoff = Backoff()
        while True:
            try:
                await self.handle(delivery)
            except REDIS_DOWN as exc:
                self.outage.failed(exc)
                if await backoff.wait(self._stop):
                    return
                continue
            self.outage.recovered()
            return

    async def _keep_claims(self, stop: asyncio.Event) -> None:
        """Say this sender is alive and take over the Actions of senders whose heartbeat expired; touch the
        Actions held here and reclaim idle ones a few times per idle period."""
        loop = asyncio.get_running_loop()
        period = self.claim_idle_ms / 3000
        last_idle_check = -period
        while not stop.is_set():
            try:
                await self.bus.heartbeat(self.name, ALIVE_TTL_MS)
                room = self.backlog - len(self._held)
                taken = await self.bus.claim_from_dead_actions(
                    self.platform.name, self.name, ALIVE_TTL_MS, limit=room
                )
                if loop.time() - last_idle_check >= period:
                    last_idle_check = loop.time()
                    await self.bus.touch(self.name, list(self._held.values()))
                    room -= len(taken)
                    if room > 0:
                        taken += await self.bus.reclaim_actions(
                            self.platform.name, self.name, self.claim_idle_ms, count=min(room, 100)
                        )
                for delivery in taken:
                    if delivery.key not in self._held:
                        log.info("took over action %s from a sender that died or stalled", delivery.stream_id)
                        self._queue(delivery)
            except REDIS_DOWN as exc:
                self.outage.failed(exc)
            if await pause(stop, min(period, HEARTBEAT_S)):
                return

    # -- one Action --------------------------------------------------------------------------------
    async def handle(self, delivery: Delivery) -> None:
        """Deliver one outbox entry; Redis errors propagate (the caller waits and calls again)."""
        try:
            action = await self.bus.resolve_shared(load_action(delivery.payload))
        except ValueError:
            await self.bus.dead_letter(delivery, "invalid action")
            return
        except KeyError:  # its shared text outlived its TTL: the outbox held it for weeks
            await self.bus.dead_letter(delivery, "shared text expired")
            return
        try:
            await self.deliver(action)
        except _Stopping:
            log.info("stopping; action %s stays in the outbox", action.id)
            return
        except REDIS_DOWN:
            raise
        except DeliveryRejected as exc:
            log.error("action %s rejected by %s: %s", action.id, self.platform.name, exc)
            await self.bus.dead_letter(delivery, f"rejected: {exc}")
            return
        except Exception as exc:
            attempts = await self.bus.attempt(delivery)
            if attempts >= self.max_attempts:
                log.error("action %s failed %d times, dead-lettered: %r", action.id, attempts, exc)
                await self.bus.dead_letter(delivery, repr(exc))
            else:
                log.warning("action %s failed (%r); will retry", action.id, exc)
            return
        await self._persist(functools.partial(self.bus.ack, delivery))
        metrics.delivered(self.platform.name, delivery.stream_id)
        self.delivered += 1

    async def deliver(self, action: Action) -> None:
        if action.id not in self._accepted and await self.bus.receipt(action.id) is not None:
            return  # delivered before a crash; the ack was what got lost
        action = await self.live.take(action)  # the draft shown while written becomes the finished one
        parts = degrade(action, self.platform.capabilities)
        message_ids: list[str] = []
        for part in parts:
            receipt = self._accepted.get(part.id)
            if receipt is None and len(parts) > 1:
                receipt = await self.bus.receipt(part.id)
            if receipt is None:
                receipt = await self._deliver_part(part)
                self._accepted[part.id] = receipt
                if len(parts) > 1:
                    await self._persist(functools.partial(self.bus.record_sent, part, receipt))
            message_ids.extend(receipt.message_ids)
        if isinstance(action, OfferChoices) and not self.platform.capabilities.buttons:
            await self._remember_choices(action)
        receipt = Receipt(message_ids=tuple(message_ids))
        await self._persist(functools.partial(self.bus.record_sent, action, receipt))
        for part in parts:
            self._accepted.pop(part.id, None)
        self._accepted.pop(action.id, None)
        for hook in self.hooks:
            try:
                await hook(action, receipt)
            except Exception:  # a hook (e.g. feed ingest) must never make a delivered Action resend
                log.exception("delivery hook failed for action %s", action.id)

    async def _persist(self, op: Callable[[], Awaitable[T]]) -> T:
        return await until_answered(
            op,
            outage=self.outage,
            stop=self._stop,
            deadline_s=self.record_deadline_s,
            grace_s=self.stop_grace_s,
        )

    async def _deliver_part(self, part: Action) -> Receipt:
        if isinstance(part, Edit):
            target = await self.bus.receipt(part.target_action)
            if target is None or not target.message_ids:
                raise DeliveryRejected(f"edit target {part.target_action} was never delivered")
        waited = 0.0
        backoff = 0.5
        while True:
            try:
                return await metrics.send(self.platform.name, self.platform.deliver(part, self.bus.get_blob))
            except PlatformRateLimited as exc:
                delay = max(exc.retry_after, 0.05)
            except PlatformUnavailable:
                delay, backoff = backoff, min(backoff * 2, 30.0)
            if waited + delay > self.max_wait_s:
                raise PlatformUnavailable(f"still failing after waiting {waited:.0f}s")
            log.info("%s asks to wait %.2fs before action %s", self.platform.name, delay, part.id)
            if await pause(self._stop, delay):
                raise _Stopping
            waited += delay
            metrics.RETRIES.labels("send").inc()

    async def _remember_choices(self, action: OfferChoices) -> None:
        with contextlib.suppress(Exception):
            await NumberedChoices(self.bus.redis).remember(action)
