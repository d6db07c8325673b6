"""One Redis server against a 3-master Redis Cluster, side by side in one run, on this machine.

Three topologies, all over loopback TCP, each master with one replica, the shipped redis-server: one
server; the same server in cluster mode holding every slot (a one-master cluster: what cluster mode costs
by itself, with the cluster client and per-partition reads); and 3 masters (what spreading over three
servers adds: on this 2-core machine they share the cores with each other and with this process).
For each:
- bus: Events from 1,000 communities published by 8 concurrent publishers, routed by a worker (the reply
  plus one write to the community's own state) and delivered by a sender, all in this process: Events/s,
  and the Redis CPU per Event summed over the masters (INFO cpu before and after, less what the same
  servers use idle over the same time, measured first: a mostly idle server's timers are most of its CPU,
  and three servers have three sets of timers); also INFO commandstats time, which counts a script's inner
  commands twice, so read it as a ratio;
- bus paced: the same, published at a fixed rate (PACED_RATE Events/s) that every topology keeps up with,
  so the CPU per Event is compared at the same load (unpaced, each topology runs at its own rate, and a
  server's CPU per Event falls as its load rises: each wake-up serves more commands);
- lone mentions: publish to sent for mentions one at a time into an idle worker and sender;
- WAIT: the publish latency with and without waiting for one replica (CHORUS_REDIS_WAIT_REPLICAS=1);
- feed ingest: items from 1,000 communities through FeedStore.ingest: items/s and Redis CPU per item;
- load spread over the masters: the busiest master's share of keys (DBSIZE) and of commands (INFO
  commandstats), after the bus traffic alone and after bus + feed.

Throughput here is bounded by this one Python process on 2 shared cores, not by Redis; the CPU per item is
what tells how many items N masters carry (docs/scaling.md). Run: ``python bench/cluster.py`` (~5 min).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from bench.feed import Corpus  # noqa: E402
from bots import registry  # noqa: E402
from core import keys  # noqa: E402
from core.bus import Bus  # noqa: E402
from core.contract import Action, Author, Event, EventKind, reply_to_event  # noqa: E402
from core.feed.ingest import FeedStore  # noqa: E402
from core.redis_cluster import HOST, LocalCluster, _free_port_pair  # noqa: E402
from core.redis_server import connect, redis_server_binary  # noqa: E402
from core.router import Router  # noqa: E402
from core.sender import Sender  # noqa: E402
from core.services import Services  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.worker import Worker  # noqa: E402
from tests.support import RecordingPlatform  # noqa: E402

COMMUNITIES = 1000
N_EVENTS = 3000
N_BACKLOG = 6000
N_WAIT = 1500
PACED_RATE = 200.0
SERVER = Settings().redis_server  # CHORUS_REDIS_SERVER (e.g. valkey-server) runs every topology on it
N_LONE = 40
N_PACED = 2000
N_ITEMS = 20_000
PUBLISHERS = 8


def stage(name: str) -> None:
    print(f"... {name}", file=sys.stderr, flush=True)


@dataclass
class Topology:
    """What the benchmark needs of a deployment: its URL and its masters (and replicas) to read INFO from."""

    name: str
    url: str
    masters: list[int]
    replicas: list[int]
    stop: Callable[[], None]

    def clients(self, ports: list[int]) -> list[redis.Redis]:
        return [redis.Redis(host=HOST, port=p, socket_timeout=10) for p in ports]

    idle_cpu_per_s: float = 0.0  # the masters' CPU per second with no traffic (their timers), measured first
    idle_replica_cpu_per_s: float = 0.0

    def measure_idle(self, seconds: float = 5.0) -> None:
        cpu0, rcpu0 = self.cpu(), self.cpu(self.replicas)
        time.sleep(seconds)
        self.idle_cpu_per_s = (self.cpu() - cpu0) / seconds
        self.idle_replica_cpu_per_s = (self.cpu(self.replicas) - rcpu0) / seconds

    def cpu(self, ports: list[int] | None = None) -> float:
        """CPU seconds (user + system) the servers used so far, summed."""
        total = 0.0
        for r in self.clients(self.masters if ports is None else ports):
            info = r.info("cpu")
            total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return total

    def command_time(self) -> float:
        """Seconds spent executing commands so far (INFO commandstats), summed over the masters: the part
        of the CPU that is Redis doing the work, without the I/O and event-loop cost per wake-up."""
        total = 0
        for r in self.clients(self.masters):
            total += sum(int(v["usec"]) for v in r.info("commandstats").values())
        return total / 1e6

    def commands(self) -> list[int]:
        """Commands served so far, per master."""
        out = []
        for r in self.clients(self.masters):
            out.append(sum(int(v["calls"]) for v in r.info("commandstats").values()))
        return out

    def key_counts(self) -> list[int]:
        return [int(r.dbsize()) for r in self.clients(self.masters)]


@contextmanager
def single_server(tmp: Path) -> Iterator[Topology]:
    """A plain redis-server with one replica, over loopback TCP like the cluster."""
    procs: list[subprocess.Popen[bytes]] = []
    ports = [_free_port_pair(), _free_port_pair()]
    for n, port in enumerate(ports):
        node = tmp / f"single-{port}"
        node.mkdir()
        lines = [f"port {port}", f"bind {HOST}", f"dir {node}", 'save ""', "appendonly no", "maxclients 4000"]
        if n == 1:
            lines.append(f"replicaof {HOST} {ports[0]}")
        (node / "redis.conf").write_text("\n".join(lines) + "\n")
        procs.append(
            subprocess.Popen(
                [redis_server_binary(SERVER), str(node / "redis.conf")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def stop() -> None:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if redis.Redis(host=HOST, port=ports[1]).info("replication").get("master_link_status") == "up":
                break
        except redis.ConnectionError:
            pass
        time.sleep(0.1)
    try:
        yield Topology("one server", f"redis://{HOST}:{ports[0]}", ports[:1], ports[1:], stop)
    finally:
        stop()


@contextmanager
def cluster(tmp: Path, masters: int = 3) -> Iterator[Topology]:
    local = LocalCluster(
        tmp / f"cluster-{masters}", masters=masters, replicas=1, node_timeout_ms=5000, binary=SERVER
    )
    local.start()
    try:
        ports = [n.port for n in local.primaries()]
        replicas = [n.port for n in local.nodes if n.port not in ports]
        name = "3-master cluster" if masters == 3 else f"{masters}-master cluster"
        yield Topology(name, local.url, ports, replicas, local.stop)
    finally:
        local.stop()


def _event(i: int, text: str = "hi") -> Event:
    return Event(
        kind=EventKind.MENTION,
        platform="bench",
        community=f"c{i % COMMUNITIES}",
        channel="ch",
        message_id=f"m{i}-{time.monotonic_ns()}",
        author=Author(id=f"u{i % 5000}"),
        text=text,
    )


@dataclass
class Figures:
    bus_rate: float = 0.0
    bus_cpu_us: float = 0.0
    paced_rate: float = 0.0
    paced_cpu_us: float = 0.0
    paced_cmd_us: float = 0.0
    lone_ms: float = 0.0
    lone_worst_ms: float = 0.0
    bus_replica_cpu_us: float = 0.0
    drain_rate: float = 0.0
    drain_cpu_us: float = 0.0
    drain_replica_cpu_us: float = 0.0
    bus_cmd_us: float = 0.0
    idle_ms_per_s: float = 0.0
    drain_cmd_us: float = 0.0
    ingest_cmd_us: float = 0.0
    publish_us: float = 0.0
    publish_wait_us: float = 0.0
    under_replicated: int = 0
    ingest_rate: float = 0.0
    ingest_cpu_us: float = 0.0
    bus_keys: list[int] = field(default_factory=list)
    bus_commands: list[int] = field(default_factory=list)
    all_keys: list[int] = field(default_factory=list)
    all_commands: list[int] = field(default_factory=list)


@dataclass
class Rig:
    """publish -> worker -> sender in this process, on one topology; each mention is answered with one
    write to its community's state (what a real handler does at the least) and one reply."""

    services: Services
    platform: RecordingPlatform
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    loops: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def on(cls, topo: Topology, redis_client: aioredis.Redis) -> Rig:
        services = Services(
            Settings(CHORUS_REDIS_URL=topo.url), redis_client, Bus(redis_client), registry.catalog()
        )

        async def answer(ev: Event, svc: Services) -> list[Action]:
            await svc.redis.hincrby(keys.community(ev.community_key, "bench", "usage"), "mentions", 1)
            return [reply_to_event(ev, "ok")]

        services.mention = answer
        return cls(services, RecordingPlatform("bench"))

    def start(self) -> None:
        self.loops = [
            asyncio.create_task(Worker(self.services.bus, Router(self.services)).run(self.stop)),
            asyncio.create_task(Sender(self.services.bus, self.platform).run(self.stop)),
        ]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.loops)


async def bus_traffic(
    topo: Topology, redis_client: aioredis.Redis, n: int, *, backlog: bool, rate: float | None = None
) -> tuple[float, float, float, float, list[int]]:
    """Events through publish -> worker -> sender. ``backlog``: all published before the worker and sender
    start (they read full batches: the regime of a busy deployment); else published while they run, as
    fast as they go or, with ``rate``, at that many Events/s in all.
    Returns Events/s, Redis CPU per Event on the masters and on the replicas and command time per Event on
    the masters (us), commands per master."""
    rig = Rig.on(topo, redis_client)
    events = [_event(i) for i in range(n)]
    cmds0, cpu0, rcpu0, t0 = topo.commands(), topo.cpu(), topo.cpu(topo.replicas), topo.command_time()
    start = time.perf_counter()

    async def publisher(share: list[Event], offset: int) -> None:
        for i, ev in enumerate(share):
            if rate is not None:  # Event k of all is due at start + k / rate
                await asyncio.sleep(max(0.0, start + (i * PUBLISHERS + offset) / rate - time.perf_counter()))
            await rig.services.bus.publish(ev)

    if not backlog:
        rig.start()
    await asyncio.gather(*(publisher(events[i::PUBLISHERS], i) for i in range(PUBLISHERS)))
    if backlog:
        rig.start()
    while len(rig.platform.sent) < n:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    await rig.finish()
    return (
        n / elapsed,
        (topo.cpu() - cpu0 - topo.idle_cpu_per_s * elapsed) / n * 1e6,
        (topo.cpu(topo.replicas) - rcpu0 - topo.idle_replica_cpu_per_s * elapsed) / n * 1e6,
        (topo.command_time() - t0) / n * 1e6,
        [b - a for a, b in zip(cmds0, topo.commands(), strict=True)],
    )


async def lone_latency(topo: Topology, redis_client: aioredis.Redis, f: Figures) -> None:
    """Mentions one at a time into an idle worker and sender: publish to sent, median and worst (ms)."""
    rig = Rig.on(topo, redis_client)
    rig.start()
    await asyncio.sleep(1.0)  # both idle, every partition's read waiting
    samples = []
    for i in range(N_LONE):
        sent = len(rig.platform.sent)
        start = time.perf_counter()
        await rig.services.bus.publish(_event(i))
        while len(rig.platform.sent) == sent:
            await asyncio.sleep(0.0005)
        samples.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.05 + (i % 7) * 0.013)  # idle again, at uneven moments
    await rig.finish()
    f.lone_ms, f.lone_worst_ms = statistics.median(samples), max(samples)


async def wait_cost(redis_client: aioredis.Redis, f: Figures) -> None:
    """Sequential publishes (latency, not throughput), without and with WAIT 1."""
    for wait in (0, 1):
        bus = Bus(redis_client, wait_replicas=wait, wait_timeout_ms=1000)
        samples = []
        for i in range(N_WAIT):
            t = time.perf_counter()
            await bus.publish(_event(i))
            samples.append(time.perf_counter() - t)
        median = statistics.median(samples) * 1e6
        if wait:
            f.publish_wait_us, f.under_replicated = median, bus.under_replicated
        else:
            f.publish_us = median


async def feed_ingest(topo: Topology, redis_client: aioredis.Redis, f: Figures) -> None:
    corpus = Corpus()
    items = list(corpus.items(N_ITEMS))
    for i, item in enumerate(items):
        item.community = f"{item.platform}-c{i % (COMMUNITIES // 3)}"
    store = FeedStore(redis_client)
    cmds0, cpu0, t0 = topo.commands(), topo.cpu(), topo.command_time()
    start = time.perf_counter()
    for n in range(0, N_ITEMS, 1000):
        await store.ingest(items[n : n + 1000])
    elapsed = time.perf_counter() - start
    f.ingest_rate = N_ITEMS / elapsed
    f.ingest_cpu_us = (topo.cpu() - cpu0 - topo.idle_cpu_per_s * elapsed) / N_ITEMS * 1e6
    f.ingest_cmd_us = (topo.command_time() - t0) / N_ITEMS * 1e6
    f.all_commands = [a + b - c for a, b, c in zip(f.bus_commands, topo.commands(), cmds0, strict=True)]
    f.all_keys = topo.key_counts()


async def measure(topo: Topology) -> Figures:
    f = Figures()
    stage(f"{topo.name}: idle")
    topo.measure_idle()
    f.idle_ms_per_s = topo.idle_cpu_per_s * 1000
    client = connect(topo.url)
    try:
        await client.flushall()
        stage(f"{topo.name}: bus, live")
        f.bus_rate, f.bus_cpu_us, f.bus_replica_cpu_us, f.bus_cmd_us, f.bus_commands = await bus_traffic(
            topo, client, N_EVENTS, backlog=False
        )
        stage(f"{topo.name}: bus, backlog")
        f.drain_rate, f.drain_cpu_us, f.drain_replica_cpu_us, f.drain_cmd_us, drained = await bus_traffic(
            topo, client, N_BACKLOG, backlog=True
        )
        f.bus_commands = [a + b for a, b in zip(f.bus_commands, drained, strict=True)]
        stage(f"{topo.name}: bus, paced at {PACED_RATE:.0f} Events/s")
        f.paced_rate, f.paced_cpu_us, _, f.paced_cmd_us, paced = await bus_traffic(
            topo, client, N_PACED, backlog=False, rate=PACED_RATE
        )
        f.bus_commands = [a + b for a, b in zip(f.bus_commands, paced, strict=True)]
        f.bus_keys = topo.key_counts()
        stage(f"{topo.name}: lone mentions")
        await lone_latency(topo, client, f)
        stage(f"{topo.name}: WAIT")
        await wait_cost(client, f)
        stage(f"{topo.name}: feed ingest")
        await feed_ingest(topo, client, f)
    finally:
        await client.aclose()
    return f


def share(values: list[int]) -> str:
    total = sum(values) or 1
    parts = "/".join(f"{v / total:.0%}" for v in sorted(values, reverse=True))
    return f"busiest {max(values) / total:5.1%}  ({parts})"


ROWS = [  # (label, Figures field, format)
    ("idle: masters' CPU, ms per second (subtracted)", "idle_ms_per_s", "{:,.1f}"),
    ("bus live: Events/s (this process is the limit)", "bus_rate", "{:,.0f}"),
    ("bus live: Redis CPU per Event, masters (us)", "bus_cpu_us", "{:,.1f}"),
    ("bus live: Redis CPU per Event, replicas (us)", "bus_replica_cpu_us", "{:,.1f}"),
    ("bus live: command time per Event, masters (us)", "bus_cmd_us", "{:,.1f}"),
    ("bus backlog: Events/s", "drain_rate", "{:,.0f}"),
    ("bus backlog: Redis CPU per Event, masters (us)", "drain_cpu_us", "{:,.1f}"),
    ("bus backlog: CPU per Event, replicas (us)", "drain_replica_cpu_us", "{:,.1f}"),
    ("bus backlog: command time per Event (us)", "drain_cmd_us", "{:,.1f}"),
    (f"bus paced ({PACED_RATE:.0f}/s): Events/s", "paced_rate", "{:,.0f}"),
    ("bus paced: Redis CPU per Event, masters (us)", "paced_cpu_us", "{:,.1f}"),
    ("bus paced: command time per Event (us)", "paced_cmd_us", "{:,.1f}"),
    ("lone mention, publish to sent: median (ms)", "lone_ms", "{:,.1f}"),
    ("lone mention, publish to sent: worst (ms)", "lone_worst_ms", "{:,.1f}"),
    ("publish latency, median (us)", "publish_us", "{:,.0f}"),
    ("publish + WAIT 1 latency, median (us)", "publish_wait_us", "{:,.0f}"),
    ("feed ingest: items/s", "ingest_rate", "{:,.0f}"),
    ("feed ingest: Redis CPU per item (us)", "ingest_cpu_us", "{:,.1f}"),
    ("feed ingest: command time per item (us)", "ingest_cmd_us", "{:,.1f}"),
]


def ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}" if a else "-"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with single_server(Path(tmp)) as topo:
            one = await measure(topo)
        with cluster(Path(tmp), masters=1) as topo:
            mode = await measure(topo)
        with cluster(Path(tmp)) as topo:
            three = await measure(topo)
    print(f"== Redis Cluster: one server vs 3 masters (each with a replica), {COMMUNITIES:,} communities ==")
    print(f"server: {redis_server_binary(SERVER)}")
    print(
        f"bus partitions: {keys.DEFAULT_PARTITIONS}; Events {N_EVENTS:,} live + {N_BACKLOG:,} backlog + "
        f"{N_PACED:,} paced; feed items {N_ITEMS:,}"
    )
    print("(A) one server; (B) the same in cluster mode, one master holding every slot; (C) 3 masters")
    print(f"{'':48}{'(A)':>10}{'(B)':>10}{'(C)':>10}{'C/A':>7}{'B/A':>7}{'C/B':>7}")
    for label, name, fmt in ROWS:
        a, b, c = (getattr(f, name) for f in (one, mode, three))
        cells = "".join(f"{fmt.format(v):>10}" for v in (a, b, c))
        print(f"{label:48}{cells}{ratio(a, c):>7}{ratio(a, b):>7}{ratio(b, c):>7}")
    print(
        "WAIT fell short of 1 replica: "
        + " / ".join(str(f.under_replicated) for f in (one, mode, three))
        + f" of {N_WAIT} publishes"
    )
    print("\nLoad spread over the 3 masters (goal: busiest <= 40 %):")
    print(f"  bus traffic      keys      {share(three.bus_keys)}")
    print(f"  bus traffic      commands  {share(three.bus_commands)}")
    print(f"  bus + feed       keys      {share(three.all_keys)}")
    print(f"  bus + feed       commands  {share(three.all_commands)}")


if __name__ == "__main__":
    asyncio.run(main())
