"""Every Prometheus metric Chorus exports, defined in one place, with the one-line helpers that move them.

Counters and histograms live in the process that does the work (``chorus run`` serves them at
``/metrics`` on the HTTP port); queue depths and lags are read from Redis when scraped, so they are the
same whichever process answers. Labels are low-cardinality on purpose: platform, kind, provider, outcome,
never a community, user or message id.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from core import keys

if TYPE_CHECKING:
    import redis.asyncio as aioredis

REGISTRY = CollectorRegistry(auto_describe=True)
"""Chorus's own registry (not the global default): nothing registered by a library leaks in."""
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes, ...

# Seconds: from a few ms (a command) to minutes (a CPU model under load, a long Retry-After).
_LATENCY = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)

EVENTS_IN = Counter(
    "chorus_events_in",
    "Events accepted from platforms (duplicates excluded)",
    ["platform", "kind"],
    registry=REGISTRY,
)
EVENTS_DUPLICATE = Counter(
    "chorus_events_duplicate",
    "Platform messages seen before and not stored again",
    ["platform"],
    registry=REGISTRY,
)
HANDLING = Histogram(
    "chorus_event_handling_seconds",
    "Time to route one Event to its Actions",
    ["platform", "kind"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
DELIVERY = Histogram(
    "chorus_delivery_seconds",
    "From an Action entering the outbox to the platform accepting it",
    ["platform"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
SENDS = Counter(
    "chorus_sends",
    "Platform send attempts by outcome (ok, rate_limited, unavailable, rejected, failed)",
    ["platform", "outcome"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "chorus_retries", "Work tried again: Events re-processed, Actions re-sent", ["stage"], registry=REGISTRY
)
DEAD_LETTERS = Counter(
    "chorus_dead_letters", "Entries moved to the dead-letter stream", ["source"], registry=REGISTRY
)
QUEUE_DEPTH = Gauge(
    "chorus_queue_depth",
    "Entries waiting in a stream (events, or a platform's outbox)",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_LAG = Gauge(
    "chorus_queue_lag_seconds",
    "Age of the oldest entry still in a stream (0 when empty)",
    ["queue"],
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    "chorus_model_calls",
    "Provider calls (chat model, images, moderation) by outcome",
    ["provider", "outcome"],
    registry=REGISTRY,
)
MODEL_LATENCY = Histogram(
    "chorus_model_call_seconds",
    "Provider call latency, retries included",
    ["provider"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "chorus_model_tokens",
    "Tokens used, by model and direction (in, out)",
    ["model", "direction"],
    registry=REGISTRY,
)
IMAGES = Counter(
    "chorus_images", "Images made, by model (card = the local text card)", ["model"], registry=REGISTRY
)
SPEND = Counter(
    "chorus_spend_usd", "Estimated money spent (model tokens, images, X posts)", ["kind"], registry=REGISTRY
)
REFUSALS = Counter(
    "chorus_refusals",
    "Requests answered with a refusal, by reason (quota, budget, moderation, ...)",
    ["reason"],
    registry=REGISTRY,
)
SCHEDULER_LAG = Histogram(
    "chorus_scheduler_lag_seconds",
    "How late a scheduled job started after it was due",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
    registry=REGISTRY,
)
FEED_INGESTED = Counter(
    "chorus_feed_ingested",
    "Feed items stored, by outcome (new story, joined a story, updated, dropped: author opted out)",
    ["outcome"],
    registry=REGISTRY,
)
FEED_INGEST = Histogram(
    "chorus_feed_ingest_seconds",
    "Time to store one feed item (dedupe, index, rank)",
    buckets=_LATENCY,
    registry=REGISTRY,
)
FEED_PAGE = Histogram(
    "chorus_feed_page_seconds", "Time to read one timeline page", buckets=_LATENCY, registry=REGISTRY
)


# -- one-line helpers for the call sites ---------------------------------------------------------------
P = ParamSpec("P")
T = TypeVar("T")


def timed(histogram: Histogram) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorator: observe how long each call of an async function takes (failures included)."""

    def wrap(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def timed_fn(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return timed_fn

    return wrap


def event_in(platform: str, kind: str, stored: bool) -> None:
    (EVENTS_IN.labels(platform, kind) if stored else EVENTS_DUPLICATE.labels(platform)).inc()


def handled(platform: str, kind: str, stream_id: str) -> None:
    """An Event's Actions were enqueued: the time since it entered the stream is its handling latency."""
    HANDLING.labels(platform, kind).observe(stream_age_s(stream_id))


def retried(stage: str, attempts: int) -> None:
    """Count a retry when this is not the first attempt."""
    if attempts > 1:
        RETRIES.labels(stage).inc()


async def send(platform: str, call: Awaitable[T]) -> T:
    """Await one platform send and count its outcome."""
    try:
        result = await call
    except Exception as exc:
        SENDS.labels(platform, _SEND_OUTCOMES.get(type(exc).__name__, "failed")).inc()
        raise
    SENDS.labels(platform, "ok").inc()
    return result


_SEND_OUTCOMES = {
    "PlatformRateLimited": "rate_limited",
    "PlatformUnavailable": "unavailable",
    "DeliveryRejected": "rejected",
}


def ingested(result: Any) -> None:
    """The outcome counts of one feed ingest (``core.feed.ingest.IngestResult``)."""
    for outcome in ("new", "joined", "updated", "dropped"):
        if count := getattr(result, outcome):
            FEED_INGESTED.labels(outcome).inc(count)


def stream_age_s(stream_id: str, now: float | None = None) -> float:
    """Seconds since a Redis stream entry id (``<ms>-<seq>``) was created."""
    ms = int(stream_id.split("-", 1)[0])
    return max(0.0, (time.time() if now is None else now) - ms / 1000)


def delivered(platform: str, stream_id: str) -> None:
    """An Action read from the outbox was delivered: its time in the outbox is the delivery latency."""
    DELIVERY.labels(platform).observe(stream_age_s(stream_id))


def refused(reason: str) -> None:
    """A request answered with a UserError; ``reason`` is the error's class name, made label-shaped."""
    REFUSALS.labels(_REASONS.get(reason, "other")).inc()


_REASONS = {
    "QuotaExceeded": "quota",
    "BudgetExceeded": "budget",
    "ContentRefused": "moderation",
    "PermissionDenied": "permission",
    "InvalidInput": "invalid",
    "NotAvailable": "not_available",
    "UserError": "other",
}


@contextmanager
def timed_call(provider: str) -> Iterator[None]:
    """``with timed_call("model"):`` counts the call, its outcome (ok / the error's class) and latency."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        MODEL_CALLS.labels(provider, type(exc).__name__).inc()
        raise
    else:
        MODEL_CALLS.labels(provider, "ok").inc()
    finally:
        MODEL_LATENCY.labels(provider).observe(time.perf_counter() - started)


async def streamed(provider: str, stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """``async for chunk in streamed("model", model.astream(...))``: a streamed call counted like
    ``timed_call`` (the call, its outcome, its latency from the request to the last chunk). Tokens come with
    the stream's last chunk and are counted where every answer's usage is (``usage``, via the quotas)."""
    with timed_call(provider):
        async for item in stream:
            yield item


def usage(model: str, *, tokens_in: int, tokens_out: int, images: int, cost_usd: float) -> None:
    """What ``Quotas.record`` counted, as metrics."""
    if tokens_in:
        MODEL_TOKENS.labels(model, "in").inc(tokens_in)
    if tokens_out:
        MODEL_TOKENS.labels(model, "out").inc(tokens_out)
    if images:
        IMAGES.labels(model).inc(images)
    if cost_usd > 0:
        SPEND.labels("image" if images else "model").inc(cost_usd)


async def refresh_queues(redis: aioredis.Redis, parts: tuple[str, ...], platforms: list[str]) -> None:
    """Read the depth and the age of the oldest entry of the events streams and each outbox (summed over the
    bus partitions ``parts``), for a scrape.

    Acknowledged entries are deleted from these streams, so what is left is what waits (or is in hand)."""
    queues = {
        "events": [keys.events(part) for part in parts],
        **{f"outbox:{p}": [keys.outbox(p, part) for part in parts] for p in platforms},
    }
    async with redis.pipeline(transaction=False) as pipe:
        for streams in queues.values():
            for stream in streams:
                pipe.xlen(stream)
                pipe.xrange(stream, count=1)
        replies = iter(await pipe.execute())
    now = time.time()
    for name, streams in queues.items():
        depth, oldest_age = 0, 0.0
        for _ in streams:
            length, first = next(replies), next(replies)
            depth += int(length)
            if first:
                oldest = first[0][0]
                stream_id = oldest.decode() if isinstance(oldest, bytes) else oldest
                oldest_age = max(oldest_age, stream_age_s(stream_id, now))
        QUEUE_DEPTH.labels(name).set(depth)
        QUEUE_LAG.labels(name).set(oldest_age)
