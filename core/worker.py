"""Workers: read Events from the stream in a consumer group, route them, enqueue Actions, acknowledge.

Many Events run at once (bounded by ``concurrency``) because most time is spent waiting on the model.
Events still being worked on are "touched" so other workers do not reclaim them. A worker holds no more
Events than it can run at once (it reads, takes over and reclaims only up to its free slots), so what it
cannot start yet stays where any worker with room can take it; a dead worker's Events, which have waited
longest, are taken before new ones. Each worker keeps a heartbeat key alive; the
Events of a worker whose heartbeat expired (SIGKILLed, machine gone) are taken over within seconds, and any
Event idle for ``claim_idle_ms`` is reclaimed as a fallback. An Event that failed ``max_attempts`` times goes to the dead-letter
stream and its author gets a short apology instead of a traceback.

While Redis is away the worker waits for it (one warning, then a summary a minute) and carries on with the
Events in hand; the transaction that enqueues an Event's answer is retried until Redis answers, so the
answer is not computed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Awaitable

from pydantic import ValidationError

from core import metrics
from core.bus import Bus, Delivery, load_event
from core.contract import Action, Event, reply_to_event
from core.errors import ChorusError
from core.logs import Outage
from core.redis_server import REDIS_DOWN, Backoff, pause, until_answered
from core.router import Router

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
ALIVE_TTL_MS = 5000  # a consumer silent this long is dead: what it held is taken over at once
APOLOGY = "Sorry, I couldn't handle that request — it failed several times. The team has been notified."


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    def __init__(
        self,
        bus: Bus,
        router: Router,
        *,
        concurrency: int = 64,
        max_attempts: int = 3,
        claim_idle_ms: int = 30_000,
        name: str | None = None,
        shutdown_grace_s: float = 20.0,
    ) -> None:
        self.bus = bus
        self.router = router
        self.name = name or consumer_name()
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.claim_idle_ms = claim_idle_ms
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: dict[Delivery, asyncio.Task[None]] = {}
        self._last_observed: asyncio.Task[None] | None = None
        self.processed = 0
        self.shutdown_grace_s = shutdown_grace_s
        self.outage = Outage(log, "Redis (worker)", waiting="Events resume when it answers")
        self._stop = asyncio.Event()
        self._room = asyncio.Event()
        self._orphans = False  # a dead worker's Events may still wait for room

    def room(self) -> int:
        """How many more Events this worker can start now."""
        return self.concurrency - len(self._inflight)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then finish the Events in hand."""
        self._stop = stop
        keeper = asyncio.create_task(self._keep_claims(stop))
        backoff = Backoff()
        try:
            while not stop.is_set():
                free = self.room()
                if free <= 0:  # hold no more Events than can run: what waits here, no other worker can take
                    self._room.clear()
                    await first_of(self._room.wait(), stop.wait())
                    continue
                try:
                    if self._orphans:  # a dead worker's Events waited longest: they go before new ones
                        deliveries = await self.bus.claim_from_dead_events(
                            self.name, ALIVE_TTL_MS, limit=free
                        )
                        self._orphans = len(deliveries) >= free
                        if deliveries:
                            for delivery in deliveries:
                                log.info("took over event %s from a worker that died", delivery.stream_id)
                                self._spawn(delivery)
                            continue
                    deliveries = await self.bus.read_events(self.name, count=min(free, 100), block_ms=200)
                except REDIS_DOWN as exc:
                    self.outage.failed(exc)
                    await backoff.wait(stop)
                    continue
                backoff.reset()
                self.outage.recovered()
                for delivery in deliveries:
                    self._spawn(delivery)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            for delivery in await self.bus.stop_reading(self.name):  # received as we stopped: ours
                self._spawn(delivery)
            if self._inflight:  # finish what we hold; what is left is reclaimed by the next worker
                _, late = await asyncio.wait(list(self._inflight.values()), timeout=self.shutdown_grace_s)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)

    def _spawn(self, delivery: Delivery) -> None:
        if delivery in self._inflight:
            return
        # What the feed observes (a message, then its edit or reaction) must apply in stream order;
        # requests to the assistant run concurrently.
        observed = delivery.observed
        task = asyncio.create_task(self._guarded(delivery, after=self._last_observed if observed else None))
        if observed:
            self._last_observed = task
        self._inflight[delivery] = task

        def forget(_task: asyncio.Task[None]) -> None:
            self._inflight.pop(delivery, None)
            self._room.set()

        task.add_done_callback(forget)

    async def _guarded(self, delivery: Delivery, after: asyncio.Task[None] | None = None) -> None:
        if after is not None and not after.done():
            await asyncio.wait([after])
        backoff = Backoff()
        async with self._slots:
            while True:
                try:
                    await self.process(delivery)
                except REDIS_DOWN as exc:  # wait for Redis, then carry on with this Event
                    self.outage.failed(exc)
                    if await backoff.wait(self._stop):
                        return  # stays pending; reclaimed after claim_idle_ms
                    continue
                except Exception:  # the Event stays pending and is retried after claim_idle_ms
                    log.exception("event %s failed; it will be retried", delivery.stream_id)
                return

    async def process(self, delivery: Delivery) -> None:
        attempts = await self.bus.attempt(delivery)
        metrics.retried("event", attempts)
        try:
            event = load_event(delivery.payload)
        except ValidationError as exc:
            await self.bus.dead_letter(delivery, f"invalid event: {exc.error_count()} errors")
            return
        if attempts > self.max_attempts:
            await self._give_up(delivery, event, f"gave up after {attempts - 1} attempts")
            return
        try:
            actions = await self.router.route(event)
        except ChorusError as exc:
            if attempts >= self.max_attempts:
                await self._give_up(delivery, event, repr(exc), exc.user_message)
                return
            raise
        except Exception as exc:
            if attempts >= self.max_attempts:
                await self._give_up(delivery, event, f"{type(exc).__name__}: {exc}")
                return
            raise
        complete = functools.partial(self.bus.complete, delivery, event.id, number(event, actions))
        await until_answered(complete, outage=self.outage, stop=self._stop)
        metrics.handled(event.platform, event.kind.value, delivery.stream_id)
        self.processed += 1

    async def _give_up(self, delivery: Delivery, event: Event, reason: str, message: str = APOLOGY) -> None:
        log.error("event %s dead-lettered: %s", event.id, reason)
        await self.bus.dead_letter(delivery, reason, number(event, [reply_to_event(event, message)]))

    async def _reclaim(self) -> None:
        if self.room() <= 0:
            return
        for delivery in await self.bus.reclaim_events(self.name, self.claim_idle_ms, count=self.room()):
            log.warning("reclaimed event %s from a stalled worker", delivery.stream_id)
            self._spawn(delivery)

    async def _keep_claims(self, stop: asyncio.Event) -> None:
        """Say this worker is alive (every ``HEARTBEAT_S``) and have the main loop look for the Events of
        workers whose heartbeat expired; touch Events in hand and reclaim idle ones a few times per idle
        period."""
        loop = asyncio.get_running_loop()
        period = self.claim_idle_ms / 3000
        last_idle_check = -period
        while not stop.is_set():
            try:
                await self.bus.heartbeat(self.name, ALIVE_TTL_MS)
                # the main loop looks for a dead worker's Events before it reads new ones; claiming them
                # here as well raced with its reads, and a new Event could slip in between two old ones
                self._orphans = True
                if loop.time() - last_idle_check >= period:
                    last_idle_check = loop.time()
                    await self.bus.touch(self.name, list(self._inflight))
                    await self._reclaim()
            except REDIS_DOWN as exc:
                self.outage.failed(exc)
            except Exception:
                log.exception("claim keeping failed; retrying")
            if await pause(stop, min(period, HEARTBEAT_S)):
                return


def number(event: Event, actions: list[Action]) -> list[Action]:
    """Derive Action ids from the Event id so a reprocessed Event produces the same ids."""
    return [
        a.model_copy(update={"id": f"{event.id}.{i}", "event_id": event.id}) for i, a in enumerate(actions)
    ]


async def first_of(*waits: Awaitable[object]) -> None:
    """Wait until the first of ``waits`` completes; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
