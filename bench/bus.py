"""Bus overhead and worker scaling, against a raw redis-py baseline measured in the same run.

Prints: per-Event latency through the whole bus (publish -> worker route -> Action enqueued -> sender
delivered) with an instant handler at 200 Events/s, p50/p99 and max throughput, beside a raw
XADD/XREADGROUP round trip; throughput with 50 ms of simulated model time per Event in one worker process;
and the speed-up of 2 worker processes over 1 with a CPU-bound handler.

Run: ``.venv/bin/python bench/bus.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bots import registry  # noqa: E402
from core.bus import Bus  # noqa: E402
from core.contract import Action, Author, Event, EventKind, Receipt, reply_to_event  # noqa: E402
from core.platform import BlobReader, EventSink, Platform  # noqa: E402
from core.redis_server import EmbeddedRedis, connect  # noqa: E402
from core.router import Router  # noqa: E402
from core.sender import Sender  # noqa: E402
from core.services import Services  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.worker import Worker  # noqa: E402

RATE = 200
N_LATENCY = 1000


def _event(i: int) -> Event:
    return Event(
        kind=EventKind.MENTION,
        platform="bench",
        community="c",
        channel="ch",
        message_id=f"m{i}-{time.monotonic_ns()}",
        author=Author(id="u"),
        text=f"{time.perf_counter()}",
    )


class Timing(Platform):
    """Records when each Action arrives; the Event's text carries its publish time."""

    name = "bench"

    def __init__(self) -> None:
        self.latencies: list[float] = []

    async def start(self, publish: EventSink) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        self.latencies.append(time.perf_counter() - float(action.text))  # type: ignore[union-attr]
        return Receipt(message_ids=(action.id,))


def stage(name: str) -> None:
    print(f"... {name}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def raw_baseline(url: str) -> tuple[list[float], float]:
    """XADD -> XREADGROUP (blocking) -> XACK, paced like the bus test, then flat out."""
    r = connect(url)
    stream, group = "bench:raw", "g"
    await r.delete(stream)
    await r.xgroup_create(stream, group, id="0", mkstream=True)
    latencies: list[float] = []
    done = asyncio.Event()
    target = N_LATENCY

    async def consume() -> None:
        while len(latencies) < target:
            reply = await r.xreadgroup(group, "c", {stream: ">"}, count=100, block=200)
            for _s, entries in reply or []:
                for sid, fields in entries:
                    latencies.append(time.perf_counter() - float(fields[b"t"]))
                    await r.xack(stream, group, sid)
        done.set()

    task = asyncio.create_task(consume())
    for _ in range(N_LATENCY):
        await r.xadd(stream, {"t": str(time.perf_counter())})
        await asyncio.sleep(1 / RATE)
    await done.wait()
    await task
    # throughput
    latencies_paced = list(latencies)
    latencies.clear()
    target = 5000
    done.clear()
    start = time.perf_counter()
    task = asyncio.create_task(consume())
    for _ in range(target):
        await r.xadd(stream, {"t": str(time.perf_counter())})
    await done.wait()
    await task
    throughput = target / (time.perf_counter() - start)
    await r.aclose()
    return latencies_paced, throughput


async def bus_run(
    services: Services, n: int, rate: float | None, handler_sleep: float = 0.0
) -> tuple[list[float], float]:
    async def handler(ev: Event, svc: Services) -> list[Action]:
        if handler_sleep:
            await asyncio.sleep(handler_sleep)
        return [reply_to_event(ev, ev.text)]

    services.mention = handler
    platform = Timing()
    stop = asyncio.Event()
    worker = Worker(services.bus, Router(services), concurrency=256)
    sender = Sender(services.bus, platform)
    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(sender.run(stop))]
    start = time.perf_counter()
    for i in range(n):
        await services.bus.publish(_event(i))
        if rate:
            await asyncio.sleep(1 / rate)
    while len(platform.latencies) < n:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    stop.set()
    await asyncio.gather(*tasks)
    return platform.latencies, n / elapsed


CPU_WORKER = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from bots import registry
from core.bus import Bus
from core.contract import reply_to_event
from core.services import Services
from core.redis_server import connect
from core.router import Router
from core.settings import Settings
from core.worker import Worker

async def main():
    redis = connect({url!r})
    svc = Services(Settings(CHORUS_REDIS_URL={url!r}), redis, Bus(redis), registry.catalog())
    async def burn(ev, svc):
        x = 0
        for i in range({work!r}):  # pure CPU, no system calls
            x += i
        return [reply_to_event(ev, "done")]
    svc.mention = burn
    await redis.incr("bench:ready")
    await Worker(svc.bus, Router(svc), concurrency=8).run(asyncio.Event())

asyncio.run(main())
"""


WORK = 100_000  # about 10 ms of pure-Python arithmetic on this machine

RAW_BURN = """
import time

def burn():
    x = 0
    for i in range({work}):
        x += i
    return x

t = time.perf_counter()
for _ in range({n}):
    burn()
print(time.perf_counter() - t)
"""


def raw_cpu_scaling(processes: int, n: int = 300) -> float:
    """The machine's own scaling: the same work in plain processes, no Redis, no Chorus."""
    code = RAW_BURN.format(n=n, work=WORK)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) for _ in range(processes)]
    elapsed = [float(p.communicate()[0]) for p in procs]  # measured inside each process: start-up excluded
    return n * processes / max(elapsed)


async def cpu_scaling(url: str, services: Services, processes: int, n: int = 600) -> float:
    r = services.redis
    await r.flushall()
    code = CPU_WORKER.format(root=str(ROOT), url=url, work=WORK)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes)]
    try:
        while int(await r.get("bench:ready") or 0) < processes:  # process start-up is not measured
            await asyncio.sleep(0.05)
        start = time.perf_counter()
        for i in range(n):
            await services.bus.publish(_event(i))
        while len(await services.bus.outbox("bench")) < n:
            await asyncio.sleep(0.02)
        return n / (time.perf_counter() - start)
    finally:
        for p in procs:
            p.kill()
            p.wait()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.ensure_running()
        try:
            redis = connect(server.url)
            services = Services(Settings(CHORUS_REDIS_URL=server.url), redis, Bus(redis), registry.catalog())  # no features
            stage("raw baseline")
            raw, raw_tput = await raw_baseline(server.url)
            stage("bus latency")
            await redis.flushall()
            lat, _ = await bus_run(services, N_LATENCY, RATE)
            await redis.flushall()
            stage("bus throughput")
            _, tput = await bus_run(services, 5000, None)
            stage("50 ms model time")
            await redis.flushall()
            _, model_tput = await bus_run(services, 2000, 400, handler_sleep=0.05)
            stage("CPU-bound, 1 and 2 processes")
            one = await cpu_scaling(server.url, services, 1)
            two = await cpu_scaling(server.url, services, 2)
            raw_one = raw_cpu_scaling(1)
            raw_two = raw_cpu_scaling(2)
            await redis.aclose()
        finally:
            server.release()

    print(
        f"raw redis-py XADD->XREADGROUP  @{RATE}/s: p50 {pct(raw, 50):.2f} ms  p99 {pct(raw, 99):.2f} ms  "
        f"max {raw_tput:,.0f}/s"
    )
    print(
        f"chorus bus (instant handler) @{RATE}/s: p50 {pct(lat, 50):.2f} ms  p99 {pct(lat, 99):.2f} ms  "
        f"max {tput:,.0f} Events/s"
    )
    print(
        f"  overhead vs raw: p50 x{pct(lat, 50) / pct(raw, 50):.1f}, throughput x{tput / raw_tput:.2f}; "
        f"mean {statistics.mean(lat) * 1000:.2f} ms"
    )
    print(f"50 ms model time, 1 worker process: {model_tput:,.0f} Events/s (offered 400/s)")
    print(
        f"CPU-bound handler: 1 worker process {one:,.0f} Events/s, 2 processes {two:,.0f} Events/s, "
        f"speed-up x{two / one:.2f}"
    )
    print(
        f"  raw baseline, the same work in plain processes: 1 {raw_one:,.0f}/s, 2 {raw_two:,.0f}/s, "
        f"speed-up x{raw_two / raw_one:.2f} (what this machine's two vCPUs allow)"
    )
    goals = {
        "p50<=5ms": pct(lat, 50) <= 5,
        "p99<=25ms": pct(lat, 99) <= 25,
        ">=200/s with 50ms model": model_tput >= 200,
        "2 procs >=1.6x": two / one >= 1.6,
    }
    print("goals:", ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in goals.items()))


if __name__ == "__main__":
    asyncio.run(main())
