"""The event bus: Redis Streams between adapters, workers and senders.

Guarantees (see docs/architecture.md):
- an Event is stored before it is processed, and a repeated platform message id is stored once;
- an Event is acknowledged in the same transaction that enqueues its Actions, so a crash loses nothing
  and never enqueues half of an answer; a crashed worker's pending Events are reclaimed (XAUTOCLAIM);
- Action ids are derived from the Event id, and a delivered Action is recorded, so a redelivered Action is
  not executed twice.

The streams are split into partitions (``keys.partition``: a stable hash of the community), each under its
own hash tag, so the bus spreads over the shards of a Redis Cluster and every multi-key step stays in one
slot. An Event's Actions go to the outbox partition of the Event (atomically with its acknowledgement);
Actions that answer no Event go to the partition of their community. Consumers read every partition,
including those of a previous partition count while it drains (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from core import keys, metrics
from core.contract import Action, Event, Receipt, dump_action, load_action
from core.decode import as_str
from core.settings import Settings

log = logging.getLogger(__name__)

DONE_TTL_S = 7 * 86400
SENT_TTL_S = 30 * 86400
BLOB_TTL_S = 30 * 86400
SHARED_CACHE = 256
OBSERVED, ASKED = "1", "0"  # the ``o`` field of an Event's stream entry
WARN_EVERY_S = 60.0
STOP_READING_S = 5.0
_REPEATING = frozenset({"edited", "deleted", "reaction"})  # these repeat the message id by nature

# Accept an Event once per platform message id, atomically with storing it.
_PUBLISH = """
if KEYS[1] ~= KEYS[2] then
  if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return false end
end
return redis.call('XADD', KEYS[2], '*', 'e', ARGV[2], 'o', ARGV[3])
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
    """An entry read from a stream, with what is needed to acknowledge it: the stream (one partition's
    events or outbox), its consumer group and the entry id (unique within its stream only)."""

    stream: str
    group: str
    part: str  # the partition's hash tag
    stream_id: str
    payload: bytes
    observed: bool = False  # an Event the feed observes (``EventKind.observed``), marked when published

    @property
    def key(self) -> str:
        """Unique across partitions (two streams can hold the same entry id)."""
        return f"{self.stream}|{self.stream_id}"


class DumpedAction(NamedTuple):
    """An Action already serialised, with what routes it: its platform and its community key."""

    platform: str
    community_key: str
    payload: str | bytes


class Bus:
    """Thin typed layer over the streams; all Redis knowledge of the bus lives here."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        dedupe_ttl_s: int = 7 * 86400,
        partitions: int = keys.DEFAULT_PARTITIONS,
        previous_partitions: int | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 100,
    ) -> None:
        self.redis = redis
        self.dedupe_ttl_s = dedupe_ttl_s
        self.partitions = partitions
        self.previous = previous_partitions if previous_partitions not in (None, partitions) else None
        # consumers drain every partition of the current and the previous layout
        old = keys.layout(self.previous) if self.previous is not None else ()
        self.parts = tuple(dict.fromkeys((*keys.layout(partitions), *old)))
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.cluster = isinstance(redis, aioredis.RedisCluster)
        self.under_replicated = 0  # Events WAIT could not confirm on enough replicas
        self._warned_at = -WARN_EVERY_S
        self._publish = redis.register_script(_PUBLISH)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._groups_ready: set[str] = set()
        self._shared: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._claim_turn = 0
        # a cluster's blocked reads, by (stream, group, consumer), left waiting from one round to the next
        self._waiting: dict[tuple[str, str, str], asyncio.Future[list[Delivery]]] = {}
        self._longest_block_s = 0.0
        self._woken: set[tuple[str, str, str]] = set()  # streams whose waiting read answered with entries

    @classmethod
    def from_settings(cls, redis: aioredis.Redis, settings: Settings) -> Bus:
        return cls(
            redis,
            dedupe_ttl_s=settings.dedupe_ttl_s,
            partitions=settings.bus_partitions,
            previous_partitions=settings.bus_partitions_previous,
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout_ms=settings.redis_wait_timeout_ms,
        )

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
    def part(self, community_key: str) -> str:
        """The partition of a community's Events and Actions."""
        return keys.partition(community_key, self.partitions)

    async def publish(self, event: Event) -> str | None:
        """Store an Event for the workers. Returns None if this platform message was seen before.

        With ``wait_replicas`` set, waits (WAIT) until that many replicas hold the Event, so a master's
        crash right after this returns cannot lose it (docs/architecture.md, "Redis Cluster")."""
        part = self.part(event.community_key)
        stream = keys.events(part)
        seen = stream  # no dedupe key: the script skips the SET NX
        if event.message_id and event.kind.value not in _REPEATING:
            seen = keys.seen(event.platform, event.message_id, part)
            if self.previous is not None:  # accepted before the partition count changed?
                old = keys.partition(event.community_key, self.previous)
                if old != part and await self.redis.exists(keys.seen(event.platform, event.message_id, old)):
                    return None
        args: list[str | int] = [
            self.dedupe_ttl_s,
            event.model_dump_json(),
            OBSERVED if event.kind.observed else ASKED,
        ]
        if self.wait_replicas:
            result = await self._publish_durably(seen, stream, args)
        else:
            result = await self._publish(keys=[seen, stream], args=args)
        metrics.event_in(event.platform, event.kind.value, stored=bool(result))
        return as_str(result) if result else None

    async def _publish_durably(self, seen: str, stream: str, args: list[str | int]) -> Any:
        """The publish script and WAIT on one connection: WAIT counts that connection's own writes."""
        target = {"target_nodes": self.redis.get_node_from_key(stream)} if self.cluster else {}  # type: ignore[attr-defined]
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.eval(_PUBLISH, 2, seen, stream, *args)
                pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms, **target)
                result, replicas = await pipe.execute()
        except AttributeError as exc:  # redis-py 8.1: a topology refresh closed the pipeline's connection
            raise RedisConnectionError("connection closed by a cluster topology refresh") from exc
        if int(replicas) < self.wait_replicas:
            self.under_replicated += 1
            now = time.monotonic()
            if now - self._warned_at > WARN_EVERY_S:  # once a minute, not once per Event
                self._warned_at = now
                log.warning(
                    "Events stored on fewer than %d replicas within %d ms (%d so far): a failover now could "
                    "lose them; is a replica down?",
                    self.wait_replicas,
                    self.wait_timeout_ms,
                    self.under_replicated,
                )
        return result

    # -- workers: consume Events ----------------------------------------------------------------
    async def read_events(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        streams = [(keys.events(p), p) for p in self.parts]
        return await self._read_many(streams, keys.WORKERS_GROUP, consumer, count, block_ms)

    async def reclaim_events(self, consumer: str, min_idle_ms: int, count: int = 100) -> list[Delivery]:
        streams = [(keys.events(p), p) for p in self.parts]
        return await self._reclaim_many(streams, keys.WORKERS_GROUP, consumer, min_idle_ms, count)

    async def touch(self, consumer: str, deliveries: Iterable[Delivery]) -> None:
        """Reset the idle time of entries still being worked on, so nobody reclaims them (with those a
        waiting read received and has not handed out yet)."""
        received = [
            d
            for (_, _, c), task in self._waiting.items()
            if c == consumer and task.done() and not task.cancelled() and task.exception() is None
            for d in task.result()
        ]
        by_stream: dict[tuple[str, str], list[str | int | bytes | memoryview]] = {}
        for d in [*deliveries, *received]:
            by_stream.setdefault((d.stream, d.group), []).append(d.stream_id)
        await asyncio.gather(
            *(
                self.redis.xclaim(stream, group, consumer, 0, ids, justid=True)
                for (stream, group), ids in by_stream.items()
            )
        )

    async def attempt(self, delivery: Delivery) -> int:
        """Count one more processing attempt of an entry (a crash counts too)."""
        return int(await self.redis.hincrby(keys.attempts(delivery.part), delivery.stream_id, 1))

    async def complete(self, delivery: Delivery, event_id: str, actions: Sequence[Action]) -> None:
        """Enqueue the Event's Actions (in the Event's partition) and acknowledge it, in one transaction."""
        part = delivery.part
        async with self.redis.pipeline(transaction=True) as pipe:
            for action in actions:
                pipe.xadd(keys.outbox(action.platform, part), {"a": dump_action(action)})
            pipe.set(keys.done(event_id, part), json.dumps([a.id for a in actions]), ex=DONE_TTL_S)
            pipe.xack(delivery.stream, delivery.group, delivery.stream_id)
            pipe.xdel(delivery.stream, delivery.stream_id)
            pipe.hdel(keys.attempts(part), delivery.stream_id)
            await pipe.execute()

    async def dead_letter(self, delivery: Delivery, reason: str, actions: Sequence[Action] = ()) -> None:
        """Park an entry that keeps failing (with the reason) and send the apology Actions instead."""
        part = delivery.part
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                keys.dead(part),
                {"stream": delivery.stream, "payload": delivery.payload, "reason": reason[:2000]},
            )
            for action in actions:
                pipe.xadd(keys.outbox(action.platform, part), {"a": dump_action(action)})
            pipe.xack(delivery.stream, delivery.group, delivery.stream_id)
            pipe.xdel(delivery.stream, delivery.stream_id)
            pipe.hdel(keys.attempts(part), delivery.stream_id)
            await pipe.execute()
        metrics.DEAD_LETTERS.labels("events" if delivery.group == keys.WORKERS_GROUP else "outbox").inc()

    async def settled(self, event_id: str) -> bool:
        """True once the Event was processed and every Action it produced was delivered."""
        async with self.redis.pipeline(transaction=False) as pipe:  # the Event's partition is not known
            for p in self.parts:
                pipe.get(keys.done(event_id, p))
            found = [raw for raw in await pipe.execute() if raw is not None]
        if not found:
            return False
        action_ids: list[str] = json.loads(found[0])
        if not action_ids:
            return True
        return int(await self.redis.exists(*[keys.sent(a) for a in action_ids])) == len(action_ids)

    async def dead(self) -> list[dict[bytes, bytes]]:
        """Every dead-lettered entry's fields, partition by partition (for operators and tests)."""
        out: list[dict[bytes, bytes]] = []
        for p in self.parts:
            entries: Any = await self.redis.xrange(keys.dead(p))
            out.extend(fields for _, fields in entries)
        return out

    async def outbox(self, platform: str) -> list[bytes]:
        """The Actions waiting in a platform's outbox, partition by partition (for operators and tests)."""
        out: list[bytes] = []
        for p in self.parts:
            entries: Any = await self.redis.xrange(keys.outbox(platform, p))
            out.extend(fields[b"a"] for _, fields in entries)
        return out

    async def backlog(self) -> int:
        """Events stored and not yet completed, over every partition (for operators and tests)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in self.parts:
                pipe.xlen(keys.events(p))
            return sum(int(n) for n in await pipe.execute())

    # -- senders: consume Actions ---------------------------------------------------------------
    async def enqueue(self, actions: Sequence[Action]) -> None:
        """Enqueue Actions that answer no Event (scheduled digests, approvals from elsewhere), each in the
        partition of its community.

        One script call per partition, atomic like a transaction but without a reply per Action to parse:
        a digest round enqueues a hundred thousand of them."""
        await self.enqueue_dumped(
            [DumpedAction(a.platform, a.community_key, dump_action(a)) for a in actions]
        )

    async def enqueue_dumped(self, actions: Sequence[DumpedAction]) -> None:
        """``enqueue`` for Actions already serialised: a digest round writes a hundred thousand from a few
        validated prototypes instead of building each as a model."""
        by_part: dict[str, dict[str, list[str | bytes]]] = {}
        for action in actions:  # each community's Actions keep their order
            outboxes = by_part.setdefault(self.part(action.community_key), {})
            outboxes.setdefault(action.platform, []).append(action.payload)
        await asyncio.gather(
            *(
                self._enqueue(
                    keys=[keys.outbox(platform, part) for platform in outboxes],
                    args=[
                        *(len(payloads) for payloads in outboxes.values()),
                        *(a for payloads in outboxes.values() for a in payloads),
                    ],
                )
                for part, outboxes in by_part.items()
            )
        )

    async def read_actions(self, platform: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        streams = [(keys.outbox(platform, p), p) for p in self.parts]
        return await self._read_many(streams, keys.SENDERS_GROUP, consumer, count, block_ms)

    async def reclaim_actions(
        self, platform: str, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        streams = [(keys.outbox(platform, p), p) for p in self.parts]
        return await self._reclaim_many(streams, keys.SENDERS_GROUP, consumer, min_idle_ms, count)

    async def receipt(self, action_id: str) -> Receipt | None:
        raw = await self.redis.get(keys.sent(action_id))
        return Receipt.model_validate_json(raw) if raw else None

    async def record_sent(self, action: Action, receipt: Receipt) -> None:
        """Remember a delivered Action (and which bot messages it created, for replies to them).

        Each key is looked up by id alone and lives in its own slot: the bot messages are written first and
        the receipt last, so a receipt always comes with its messages."""
        info = json.dumps({"action": action.id, "ref": action.ref, "event": action.event_id})
        if receipt.message_ids:
            async with self.redis.pipeline(transaction=False) as pipe:
                for message_id in receipt.message_ids:
                    pipe.set(keys.message(action.platform, message_id), info, ex=SENT_TTL_S)
                await pipe.execute()
        await self.redis.set(keys.sent(action.id), receipt.model_dump_json(), ex=SENT_TTL_S)

    async def ack(self, delivery: Delivery) -> None:
        """Acknowledge a delivered Action (or any entry handled for good)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(delivery.stream, delivery.group, delivery.stream_id)
            pipe.xdel(delivery.stream, delivery.stream_id)
            pipe.hdel(keys.attempts(delivery.part), delivery.stream_id)
            await pipe.execute()

    async def bot_message(self, platform: str, message_id: str) -> dict[str, str | None] | None:
        """Which Action (and ``ref``) created this bot message, if it was ours."""
        raw = await self.redis.get(keys.message(platform, message_id))
        return json.loads(raw) if raw else None

    # -- liveness: take over what a dead consumer held without waiting for the idle time ------------
    async def heartbeat(self, consumer: str, ttl_ms: int) -> None:
        await self.redis.set(keys.alive(consumer), b"1", px=ttl_ms)

    async def claim_from_dead_events(
        self, consumer: str, min_idle_ms: int, limit: int = 100
    ) -> list[Delivery]:
        streams = [(keys.events(p), p) for p in self.parts]
        return await self._claim_from_dead_many(streams, keys.WORKERS_GROUP, consumer, min_idle_ms, limit)

    async def claim_from_dead_actions(
        self, platform: str, consumer: str, min_idle_ms: int, limit: int = 100
    ) -> list[Delivery]:
        streams = [(keys.outbox(platform, p), p) for p in self.parts]
        return await self._claim_from_dead_many(streams, keys.SENDERS_GROUP, consumer, min_idle_ms, limit)

    async def _claim_from_dead_many(
        self, streams: list[tuple[str, str]], group: str, consumer: str, min_idle_ms: int, limit: int
    ) -> list[Delivery]:
        """At most ``limit`` entries of dead consumers: a consumer takes over only what it has room for, the
        rest stays for the others (one taking everything would hold it while the others idle, and pass it
        all on again if it died too)."""
        if limit <= 0:
            return []
        summaries: list[Any] = await asyncio.gather(*(self._pending_summary(s, group) for s, _ in streams))
        self._claim_turn = (self._claim_turn + 1) % len(streams)  # no partition always served first
        order = [*range(self._claim_turn, len(streams)), *range(self._claim_turn)]
        out: list[Delivery] = []
        for i in order:
            holders = [as_str(h["name"]) for h in summaries[i].get("consumers") or []]
            holders = [h for h in holders if h != consumer]
            if not holders or len(out) >= limit:
                continue
            stream, part = streams[i]
            out.extend(
                await self._claim_from_dead(
                    stream, part, group, consumer, holders, min_idle_ms, limit - len(out)
                )
            )
        return out

    async def _pending_summary(self, stream: str, group: str) -> Any:
        await self.ensure_group(stream, group)
        try:
            return await self.redis.xpending(stream, group)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._groups_ready.discard(f"{stream}|{group}")  # the stream was deleted (e.g. FLUSHALL)
            return {}  # nothing pending in a stream that no longer exists

    async def _claim_from_dead(
        self,
        stream: str,
        part: str,
        group: str,
        consumer: str,
        holders: list[str],
        min_idle_ms: int,
        count: int,
    ) -> list[Delivery]:
        """Entries pending at consumers whose heartbeat expired (SIGKILLed, machine gone), claimed now."""
        out: list[Delivery] = []
        for name in holders:
            if len(out) >= count or await self.redis.exists(keys.alive(name)):
                continue
            pending: Any = await self.redis.xpending_range(
                stream, group, min="-", max="+", count=count - len(out), consumername=name
            )
            ids = [p["message_id"] for p in pending]
            if ids:
                claimed: Any = await self.redis.xclaim(stream, group, consumer, min_idle_ms, ids)
                out.extend(_deliveries(claimed, stream, group, part))
        return out

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
    async def _read_many(
        self, streams: list[tuple[str, str]], group: str, consumer: str, count: int, block_ms: int
    ) -> list[Delivery]:
        """About ``count`` new entries (at most one more per partition) from every partition, each
        partition's in order. Each partition is asked for its share; those that filled it are asked again
        for what is left, so one busy partition can still fill a read."""
        asked = max(1, -(-count // len(streams)))
        last = await self._read_round(streams, group, consumer, asked, block_ms)
        out = list(last)
        while len(out) < count:
            got = Counter(d.stream for d in last)
            full = [s for s in streams if got[s[0]] == asked]
            if not full:
                break
            asked = max(1, -(-(count - len(out)) // len(full)))
            last = await self._read_round(full, group, consumer, asked, None)
            out.extend(last)
            streams = full
        return out

    async def _read_round(
        self, streams: list[tuple[str, str]], group: str, consumer: str, each: int, block_ms: int | None
    ) -> list[Delivery]:
        """One read of every stream. On one server that is one XREADGROUP over all of them. On a cluster
        each stream is read on its own shard (a command cannot span slots), all at once: first without
        blocking, and if none has anything each waits (BLOCK) on its own. The round ends with the first
        that answers; the others stay waiting for the next round (``_waiting``) rather than holding this
        one until they time out, which cost a lone mention 2 x ``block_ms`` on its way through. A stream
        whose waiting read just answered skips the read without blocking (a BLOCK read of a stream with
        entries answers at once): one XREADGROUP per wake-up, not two."""
        if not self.cluster:
            return await self._read(streams, group, consumer, each, block_ms)
        out = self._answered(group, consumer)
        if out:  # the idle streams are read in the next round
            return out
        idle = [s for s in streams if (s[0], group, consumer) not in self._waiting]
        ask = idle if block_ms is None else [s for s in idle if (s[0], group, consumer) not in self._woken]
        found = await asyncio.gather(*(self._read([s], group, consumer, each, None) for s in ask))
        out = [d for batch in found for d in batch]
        if out or block_ms is None:
            return out
        self._longest_block_s = max(self._longest_block_s, block_ms / 1000)
        for stream in idle:
            self._woken.discard((stream[0], group, consumer))
            self._waiting[(stream[0], group, consumer)] = asyncio.ensure_future(
                self._read([stream], group, consumer, each, block_ms)
            )
        mine = [t for (_, g, c), t in self._waiting.items() if g == group and c == consumer]
        await asyncio.wait(mine, timeout=block_ms / 1000 + 1, return_when=asyncio.FIRST_COMPLETED)
        return self._answered(group, consumer)

    def _answered(self, group: str, consumer: str) -> list[Delivery]:
        """What the waiting reads of this consumer have received (a failed read is retried next round)."""
        out: list[Delivery] = []
        for key, task in list(self._waiting.items()):
            if key[1:] == (group, consumer) and task.done():
                del self._waiting[key]
                if task.cancelled():
                    continue
                if (exc := task.exception()) is not None:  # the next round reads this stream again
                    log.debug("a waiting read of %s failed: %s", key[0], type(exc).__name__)
                    continue
                if task.result():
                    self._woken.add(key)
                out.extend(task.result())
        return out

    async def stop_reading(self, consumer: str) -> list[Delivery]:
        """Wait for this consumer's waiting reads (they end within their ``block_ms``) and return what they
        received: entries read for a consumer that stopped would wait for a takeover."""
        mine = [t for (_, _, c), t in self._waiting.items() if c == consumer]
        if mine:
            _, stuck = await asyncio.wait(mine, timeout=self._longest_block_s + STOP_READING_S)
            for task in stuck:  # Redis does not answer: what they received stays pending for a takeover
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        out: list[Delivery] = []
        for group in {g for (_, g, c) in self._waiting if c == consumer}:
            out.extend(self._answered(group, consumer))
        return out

    async def _read(
        self, streams: list[tuple[str, str]], group: str, consumer: str, count: int, block_ms: int | None
    ) -> list[Delivery]:
        for stream, _ in streams:
            await self.ensure_group(stream, group)
        parts = dict(streams)
        try:
            if self.cluster:  # one stream: routed by its key (redis-py would ask COMMAND GETKEYS each time)
                [stream] = parts
                block = ["BLOCK", block_ms] if block_ms is not None else []
                target = self.redis.get_node_from_key(stream)  # type: ignore[attr-defined]
                reply: Any = await self.redis.execute_command(
                    "XREADGROUP",
                    "GROUP",
                    group,
                    consumer,
                    "COUNT",
                    count,
                    *block,
                    "STREAMS",
                    stream,
                    ">",
                    target_nodes=target,
                )
            else:
                reply = await self.redis.xreadgroup(
                    group, consumer, {s: ">" for s in parts}, count=count, block=block_ms
                )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            for stream in parts:  # a stream was deleted (e.g. FLUSHALL)
                self._groups_ready.discard(f"{stream}|{group}")
            return []
        out: list[Delivery] = []
        for stream, entries in reply or []:
            name = as_str(stream)
            out.extend(_deliveries(entries, name, group, parts[name]))
        return out

    async def _reclaim_many(
        self, streams: list[tuple[str, str]], group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        found = await asyncio.gather(
            *(self._reclaim(stream, part, group, consumer, min_idle_ms, count) for stream, part in streams)
        )
        return [d for batch in found for d in batch]

    async def _reclaim(
        self, stream: str, part: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        await self.ensure_group(stream, group)
        try:
            reply: Any = await self.redis.xautoclaim(stream, group, consumer, min_idle_ms, "0-0", count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._groups_ready.discard(f"{stream}|{group}")
            return []
        return _deliveries(reply[1] if reply else [], stream, group, part)


def _deliveries(
    entries: list[tuple[bytes, dict[bytes, bytes] | None]], stream: str, group: str, part: str
) -> list[Delivery]:
    out = []
    for stream_id, fields in entries:
        if not fields:  # deleted while pending (Redis 6.2 returns nil fields)
            continue
        payload = fields.get(b"e") or fields.get(b"a") or b""
        out.append(
            Delivery(stream, group, part, as_str(stream_id), payload, fields.get(b"o") == OBSERVED.encode())
        )
    return out


def load_event(payload: bytes) -> Event:
    return Event.model_validate_json(payload)


__all__ = ["Bus", "Delivery", "DumpedAction", "load_action", "load_event"]
