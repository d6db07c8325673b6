"""What the Prometheus instrumentation costs, beside raw baselines measured in the same run.

Prints: the time of the metric calls one Event makes on its way through the bus (event in, handled,
send counted, delivered: four calls) beside the same number of plain dict increments, and beside one
Redis round trip (what the bus spends per Event several times over); and the time of one ``/metrics``
scrape (queue depths read from Redis + the text rendered) beside a bare PING.

Run: ``.venv/bin/python bench/metrics.py`` (a few seconds).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client import generate_latest  # noqa: E402

from core import metrics  # noqa: E402
from core.redis_server import EmbeddedRedis, connect  # noqa: E402

N = 100_000
PLATFORMS = ["discord", "telegram", "x", "console"]


def per_event_metrics() -> float:
    """µs for the four metric updates an Event makes (what ``metrics.send`` adds around the awaited send
    is its counter, timed here without the await, which both sides would pay alike)."""
    stream_id = f"{int(time.time() * 1000)}-0"
    started = time.perf_counter()
    for _ in range(N):
        metrics.event_in("telegram", "mention", stored=True)
        metrics.handled("telegram", "mention", stream_id)
        metrics.SENDS.labels("telegram", "ok").inc()
        metrics.delivered("telegram", stream_id)
    return (time.perf_counter() - started) / N * 1e6


def per_event_baseline() -> float:
    """µs for four plain dict increments (the same bookkeeping without Prometheus)."""
    counts: dict[tuple[str, str], float] = {}
    keys = (("in", "telegram"), ("handled", "telegram"), ("sent", "telegram"), ("delivered", "telegram"))
    started = time.perf_counter()
    for _ in range(N):
        for key in keys:
            counts[key] = counts.get(key, 0.0) + 1
    return (time.perf_counter() - started) / N * 1e6


async def redis_figures(url: str) -> tuple[float, float, float]:
    """(µs per PING, ms per scrape p50, ms per scrape p99) against the embedded server."""
    redis = connect(url)
    try:
        for _ in range(200):
            await redis.ping()
        started = time.perf_counter()
        for _ in range(2000):
            await redis.ping()
        ping_us = (time.perf_counter() - started) / 2000 * 1e6
        scrapes = []
        for _ in range(500):
            t0 = time.perf_counter()
            await metrics.refresh_queues(redis, PLATFORMS)
            generate_latest(metrics.REGISTRY)
            scrapes.append((time.perf_counter() - t0) * 1000)
        scrapes.sort()
        return ping_us, statistics.median(scrapes), scrapes[int(0.99 * len(scrapes))]
    finally:
        await redis.aclose()


def main() -> None:
    base = per_event_baseline()
    cost = per_event_metrics()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.ensure_running()
        try:
            ping_us, scrape_p50, scrape_p99 = asyncio.run(redis_figures(server.url))
        finally:
            server.release()
    print(f"metric updates per Event (4 calls): {cost:.2f} µs")
    print(f"  raw baseline, 4 dict increments:                  {base:.2f} µs")
    print(f"  raw baseline, one Redis PING round trip:          {ping_us:.1f} µs")
    print(f"/metrics scrape ({len(PLATFORMS)} outboxes + events): p50 {scrape_p50:.2f} ms, p99 {scrape_p99:.2f} ms")
    print(f"  raw baseline, one PING:                           {ping_us / 1000:.3f} ms")


if __name__ == "__main__":
    main()
