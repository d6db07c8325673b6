"""Drains a platform's outbox: degrade each Action to what the platform can do, deliver, record, ack.

Rate limits wait for the time the platform asked for and retry the same Action, so nothing is lost or sent
twice; transient failures back off; an Action the platform refuses for good is dead-lettered. Each piece of
a split Action is recorded as sent on its own, so a crash in the middle resends only what was not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import keys
from core.bus import Bus, Delivery, load_action
from core.contract import Action, Edit, OfferChoices, Receipt
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable
from core.live import LiveShower
from core.platform import Platform, degrade
from core.services import DeliveryHook
from core.worker import consumer_name

log = logging.getLogger(__name__)

CHOICES_TTL_S = 86400


class _Stopping(Exception):
    """Shutdown interrupted a wait; the Action stays pending for the next start."""


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
    ) -> None:
        self.bus = bus
        self.platform = platform
        self.name = f"{consumer_name()}-{platform.name}"
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.delivered = 0
        self.hooks = list(hooks)
        self.live = LiveShower(bus, platform)  # drafts shown while written; their final Reply replaces them
        self._stop = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver in order, one Action at a time (platforms care about order within a chat)."""
        self._stop = stop
        live = asyncio.create_task(self.live.run(stop), name=f"live-{self.platform.name}")
        try:
            await self._run(stop)
        finally:
            live.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await live

    async def _run(self, stop: asyncio.Event) -> None:
        last_reclaim = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                if loop.time() - last_reclaim > self.claim_idle_ms / 3000:
                    last_reclaim = loop.time()
                    for delivery in await self.bus.reclaim_actions(
                        self.platform.name, self.name, self.claim_idle_ms
                    ):
                        await self.handle(delivery)
                for delivery in await self.bus.read_actions(
                    self.platform.name, self.name, count=50, block_ms=200
                ):
                    await self.handle(delivery)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                log.warning("redis unavailable (%s); retrying in 1s", type(exc).__name__)
                await asyncio.sleep(1)

    async def handle(self, delivery: Delivery) -> None:
        try:
            action = await self.bus.resolve_shared(load_action(delivery.payload))
        except ValueError:
            await self.bus.dead_letter(delivery, "invalid action", stream=keys.outbox(self.platform.name))
            return
        except KeyError:  # its shared text outlived its TTL: the outbox held it for weeks
            await self.bus.dead_letter(
                delivery, "shared text expired", stream=keys.outbox(self.platform.name)
            )
            return
        try:
            await self.deliver(action)
        except _Stopping:
            log.info("stopping; action %s stays in the outbox", action.id)
            return
        except DeliveryRejected as exc:
            log.error("action %s rejected by %s: %s", action.id, self.platform.name, exc)
            await self.bus.dead_letter(delivery, f"rejected: {exc}", stream=keys.outbox(self.platform.name))
            return
        except Exception as exc:
            attempts = await self.bus.attempt(delivery.stream_id)
            if attempts >= self.max_attempts:
                log.error("action %s failed %d times, dead-lettered: %r", action.id, attempts, exc)
                await self.bus.dead_letter(delivery, repr(exc), stream=keys.outbox(self.platform.name))
            else:
                log.warning("action %s failed (%r); will retry", action.id, exc)
            return
        await self.bus.ack_action(self.platform.name, delivery)
        self.delivered += 1

    async def deliver(self, action: Action) -> None:
        if await self.bus.receipt(action.id) is not None:
            return  # delivered before a crash; the ack was what got lost
        action = await self.live.take(action)  # the draft shown while written becomes the finished one
        parts = degrade(action, self.platform.capabilities)
        message_ids: list[str] = []
        for part in parts:
            receipt = await self.bus.receipt(part.id) if len(parts) > 1 else None
            if receipt is None:
                receipt = await self._deliver_part(part)
                if len(parts) > 1:
                    await self.bus.record_sent(part, receipt)
            message_ids.extend(receipt.message_ids)
        if isinstance(action, OfferChoices) and not self.platform.capabilities.buttons:
            await self._remember_choices(action)
        receipt = Receipt(message_ids=tuple(message_ids))
        await self.bus.record_sent(action, receipt)
        for hook in self.hooks:
            try:
                await hook(action, receipt)
            except Exception:  # a hook (e.g. feed ingest) must never make a delivered Action resend
                log.exception("delivery hook failed for action %s", action.id)

    async def _deliver_part(self, part: Action) -> Receipt:
        if isinstance(part, Edit):
            target = await self.bus.receipt(part.target_action)
            if target is None or not target.message_ids:
                raise DeliveryRejected(f"edit target {part.target_action} was never delivered")
        waited = 0.0
        backoff = 0.5
        while True:
            try:
                return await self.platform.deliver(part, self.bus.get_blob)
            except PlatformRateLimited as exc:
                delay = max(exc.retry_after, 0.05)
            except PlatformUnavailable:
                delay, backoff = backoff, min(backoff * 2, 30.0)
            if waited + delay > self.max_wait_s:
                raise PlatformUnavailable(f"still failing after waiting {waited:.0f}s")
            log.info("%s asks to wait %.2fs before action %s", self.platform.name, delay, part.id)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            if self._stop.is_set():
                raise _Stopping
            waited += delay

    async def _remember_choices(self, action: OfferChoices) -> None:
        conversation = f"{action.platform}:{action.community}:{action.channel}:{action.thread or '-'}"
        payloads = [c.payload for c in action.choices]
        with contextlib.suppress(Exception):
            await self.bus.redis.set(keys.choices(conversation), json.dumps(payloads), ex=CHOICES_TTL_S)
