"""The event bus: Redis Streams between adapters, workers and senders.

Guarantees (see docs/architecture.md):
- an Event is stored before it is processed, and a repeated platform message id is stored once;
- an Event is acknowledged in the same transaction that enqueues its Actions, so a crash loses nothing
  and never enqueues half of an answer; a crashed worker's pending Events are reclaimed (XAUTOCLAIM);
- Action ids are derived from the Event id, and a delivered Action is recorded, so a redelivered Action is
  not executed twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from core import keys, metrics
from core.contract import Action, Event, Receipt, dump_action, load_action

log = logging.getLogger(__name__)

DONE_TTL_S = 7 * 86400
SENT_TTL_S = 30 * 86400
BLOB_TTL_S = 30 * 86400
SHARED_CACHE = 256

# Accept an Event once per platform message id, atomically with storing it.
_PUBLISH = """
if KEYS[1] ~= KEYS[2] then
  if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return false end
end
return redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
"""

# KEYS: outboxes; ARGV: how many Actions go to each outbox, then the Actions, outbox by outbox in order.
_ENQUEUE = """
local at = #KEYS
for k = 1, #KEYS do
  for _ = 1, tonumber(ARGV[k]) do
    at = at + 1
    redis.call('XADD', KEYS[k], '*', 'a', ARGV[at])
  end
end
return at - #KEYS
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """An entry read from a stream, with the id needed to acknowledge it."""

    stream_id: str
    payload: bytes


class Bus:
    """Thin typed layer over the streams; all Redis knowledge of the bus lives here."""

    def __init__(self, redis: aioredis.Redis, *, dedupe_ttl_s: int = 7 * 86400) -> None:
        self.redis = redis
        self.dedupe_ttl_s = dedupe_ttl_s
        self._publish = redis.register_script(_PUBLISH)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._groups_ready: set[str] = set()
        self._shared: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # -- setup ---------------------------------------------------------------------------------
    async def ensure_group(self, stream: str, group: str) -> None:
        if f"{stream}|{group}" in self._groups_ready:
            return
        try:
            await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(f"{stream}|{group}")

    # -- adapters: publish Events ---------------------------------------------------------------
    async def publish(self, event: Event) -> str | None:
        """Store an Event for the workers. Returns None if this platform message was seen before."""
        seen = keys.seen(event.platform, event.message_id) if event.message_id else keys.EVENTS
        if event.kind.value in ("edited", "deleted", "reaction"):
            seen = keys.EVENTS  # these repeat the message id by nature
        result = await self._publish(
            keys=[seen, keys.EVENTS], args=[self.dedupe_ttl_s, event.model_dump_json()]
        )
        metrics.event_in(event.platform, event.kind.value, stored=bool(result))
        return _s(result) if result else None

    # -- workers: consume Events ----------------------------------------------------------------
    async def read_events(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        await self.ensure_group(keys.EVENTS, keys.WORKERS_GROUP)
        return await self._read(keys.EVENTS, keys.WORKERS_GROUP, consumer, count, block_ms)

    async def reclaim_events(self, consumer: str, min_idle_ms: int, count: int = 100) -> list[Delivery]:
        await self.ensure_group(keys.EVENTS, keys.WORKERS_GROUP)
        return await self._reclaim(keys.EVENTS, keys.WORKERS_GROUP, consumer, min_idle_ms, count)

    async def touch_events(self, consumer: str, stream_ids: Sequence[str]) -> None:
        """Reset the idle time of Events still being worked on, so nobody reclaims them."""
        if stream_ids:
            await self.redis.xclaim(
                keys.EVENTS, keys.WORKERS_GROUP, consumer, 0, list(stream_ids), justid=True
            )

    async def attempt(self, stream_id: str) -> int:
        """Count one more processing attempt of an Event (a crash counts too)."""
        return int(await self.redis.hincrby(keys.ATTEMPTS, stream_id, 1))

    async def complete(self, delivery: Delivery, event_id: str, actions: Sequence[Action]) -> None:
        """Enqueue the Event's Actions and acknowledge it, in one transaction."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for action in actions:
                pipe.xadd(keys.outbox(action.platform), {"a": dump_action(action)})
            pipe.set(keys.done(event_id), json.dumps([a.id for a in actions]), ex=DONE_TTL_S)
            pipe.xack(keys.EVENTS, keys.WORKERS_GROUP, delivery.stream_id)
            pipe.xdel(keys.EVENTS, delivery.stream_id)
            pipe.hdel(keys.ATTEMPTS, delivery.stream_id)
            await pipe.execute()

    async def dead_letter(
        self, delivery: Delivery, reason: str, actions: Sequence[Action] = (), *, stream: str = keys.EVENTS
    ) -> None:
        """Park an entry that keeps failing (with the reason) and send the apology Actions instead."""
        group = keys.WORKERS_GROUP if stream == keys.EVENTS else keys.SENDERS_GROUP
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.DEAD, {"stream": stream, "payload": delivery.payload, "reason": reason[:2000]})
            for action in actions:
                pipe.xadd(keys.outbox(action.platform), {"a": dump_action(action)})
            pipe.xack(stream, group, delivery.stream_id)
            pipe.xdel(stream, delivery.stream_id)
            pipe.hdel(keys.ATTEMPTS, delivery.stream_id)
            await pipe.execute()
        metrics.DEAD_LETTERS.labels("events" if stream == keys.EVENTS else "outbox").inc()

    async def settled(self, event_id: str) -> bool:
        """True once the Event was processed and every Action it produced was delivered."""
        raw = await self.redis.get(keys.done(event_id))
        if raw is None:
            return False
        action_ids: list[str] = json.loads(raw)
        if not action_ids:
            return True
        return int(await self.redis.exists(*[keys.sent(a) for a in action_ids])) == len(action_ids)

    # -- senders: consume Actions ---------------------------------------------------------------
    async def enqueue(self, actions: Sequence[Action]) -> None:
        """Enqueue Actions that answer no Event (scheduled digests, approvals from elsewhere).

        One script call, atomic like a transaction but without a reply per Action to parse: a digest
        round enqueues a hundred thousand of them."""
        await self.enqueue_dumped([(a.platform, dump_action(a)) for a in actions])

    async def enqueue_dumped(self, actions: Sequence[tuple[str, str | bytes]]) -> None:
        """``enqueue`` for Actions already serialised, as (platform, JSON) pairs: a digest round writes a
        hundred thousand from a few validated prototypes instead of building each as a model."""
        if not actions:
            return
        by_platform: dict[str, list[str | bytes]] = {}
        for platform, payload in actions:  # each platform's Actions keep their order
            by_platform.setdefault(platform, []).append(payload)
        counts = [len(payloads) for payloads in by_platform.values()]
        await self._enqueue(
            keys=[keys.outbox(p) for p in by_platform],
            args=[*counts, *(a for payloads in by_platform.values() for a in payloads)],
        )

    async def read_actions(self, platform: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        stream = keys.outbox(platform)
        await self.ensure_group(stream, keys.SENDERS_GROUP)
        return await self._read(stream, keys.SENDERS_GROUP, consumer, count, block_ms)

    async def reclaim_actions(
        self, platform: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        stream = keys.outbox(platform)
        await self.ensure_group(stream, keys.SENDERS_GROUP)
        return await self._reclaim(stream, keys.SENDERS_GROUP, consumer, min_idle_ms, count)

    async def receipt(self, action_id: str) -> Receipt | None:
        raw = await self.redis.get(keys.sent(action_id))
        return Receipt.model_validate_json(raw) if raw else None

    async def record_sent(self, action: Action, receipt: Receipt) -> None:
        """Remember a delivered Action (and which bot messages it created, for replies to them)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.sent(action.id), receipt.model_dump_json(), ex=SENT_TTL_S)
            info = json.dumps({"action": action.id, "ref": action.ref, "event": action.event_id})
            for message_id in receipt.message_ids:
                pipe.set(keys.message(action.platform, message_id), info, ex=SENT_TTL_S)
            await pipe.execute()

    async def ack_action(self, platform: str, delivery: Delivery) -> None:
        stream = keys.outbox(platform)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, keys.SENDERS_GROUP, delivery.stream_id)
            pipe.xdel(stream, delivery.stream_id)
            pipe.hdel(keys.ATTEMPTS, delivery.stream_id)
            await pipe.execute()

    async def bot_message(self, platform: str, message_id: str) -> dict[str, str | None] | None:
        """Which Action (and ``ref``) created this bot message, if it was ours."""
        raw = await self.redis.get(keys.message(platform, message_id))
        return json.loads(raw) if raw else None

    # -- blobs --------------------------------------------------------------------------------
    async def put_blob(self, data: bytes, ttl_s: int = BLOB_TTL_S) -> str:
        blob_id = hashlib.sha256(data).hexdigest()[:32]
        await self.redis.set(keys.blob(blob_id), data, ex=ttl_s)
        return blob_id

    async def put_shared(self, fields: dict[str, Any], ttl_s: int = BLOB_TTL_S) -> str:
        """Store Action fields many Actions share (see ``Action.shared``); the same fields, the same id."""
        return await self.put_blob(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS), ttl_s)

    async def resolve_shared(self, action: Action) -> Action:
        """The Action with its shared fields filled in (a small cache: a digest round reads each once)."""
        if not action.shared:
            return action
        fields = self._shared.get(action.shared)
        if fields is None:
            fields = orjson.loads(await self.get_blob(action.shared))
            self._shared[action.shared] = fields
            while len(self._shared) > SHARED_CACHE:
                self._shared.popitem(last=False)
        return type(action).model_validate({**action.model_dump(), **fields, "shared": None})

    async def get_blob(self, blob_id: str) -> bytes:
        data = await self.redis.get(keys.blob(blob_id))
        if data is None:
            raise KeyError(f"blob {blob_id} expired or missing")
        return data if isinstance(data, bytes) else data.encode()

    # -- internals ----------------------------------------------------------------------------
    async def _read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[Delivery]:
        try:
            reply: Any = await self.redis.xreadgroup(
                group, consumer, {stream: ">"}, count=count, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._groups_ready.discard(f"{stream}|{group}")  # the stream was deleted (e.g. FLUSHALL)
            await self.ensure_group(stream, group)
            return []
        out: list[Delivery] = []
        for _stream, entries in reply or []:
            out.extend(_deliveries(entries))
        return out

    async def _reclaim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        try:
            reply: Any = await self.redis.xautoclaim(stream, group, consumer, min_idle_ms, "0-0", count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._groups_ready.discard(f"{stream}|{group}")
            await self.ensure_group(stream, group)
            return []
        return _deliveries(reply[1] if reply else [])


def _deliveries(entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> list[Delivery]:
    out = []
    for stream_id, fields in entries:
        if not fields:  # deleted while pending (Redis 6.2 returns nil fields)
            continue
        payload = fields.get(b"e") or fields.get(b"a") or b""
        out.append(Delivery(_s(stream_id), payload))
    return out


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def load_event(payload: bytes) -> Event:
    return Event.model_validate_json(payload)


__all__ = ["Bus", "Delivery", "load_action", "load_event"]
