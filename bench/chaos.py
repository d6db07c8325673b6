"""Chaos: mentions through the real processes while workers, the adapter and Redis are killed.

The scenario of issue 15: ``--mentions`` mentions at ``--rate`` per second, sent by people in ``--groups``
groups, on Telegram (``--platform telegram``: the loopback Bot API, tests/fakes/telegram_api.py, that
python-telegram-bot talks to over HTTP) or Discord (``--platform discord``: the loopback gateway and REST
API, tests/fakes/discord_api.py, that discord.py talks to; one guild per group); ``chorus run --platform
<p> --no-worker`` and two ``chorus worker`` processes on a real redis-server with AOF (appendfsync
``--fsync``); 10 % of sends answered 429 (retry after 1 s; on Discord with its real headers and body, a
tenth of them the global limit) and 5 % 5xx (Telegram 502; Discord 502, which discord.py retries itself,
or 503, which reaches the Sender); a worker SIGKILLed (and started again) every 10 s, the adapter SIGKILLed
once, redis-server SIGKILLed and restarted once. The model is the loopback OpenAI fake answering at once,
so the figures measure the bus.

Per mention it counts: answered (the whole answer: the draft and its buttons), lost (nothing, not
dead-lettered, and nothing left in the streams), duplicated (any message of the answer twice),
dead-lettered, and time to answer (from the mention to the last message of its answer) p50/p95, beside the
baseline of the same size without faults (``--baseline``).

Run: ``python bench/chaos.py`` (1,000 mentions: about 4 minutes a run: 200 s of mentions, start-up and
drain); ``--runs 10 --baseline`` for the recorded figures (one table at the end), ``--platform discord``
for Discord, ``--keep-logs DIR`` to read what each process said; ``--fsync-cost`` measures what
``appendfsync always`` costs against ``everysec`` on this disk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from core.bus import Bus, Delivery  # noqa: E402
from core.contract import Author, Event, EventKind, reply_to_event  # noqa: E402
from core.redis_server import EmbeddedRedis, connect  # noqa: E402
from tests.fakes.discord_api import FakeDiscord  # noqa: E402
from tests.fakes.openai_api import FakeOpenAI  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

TELEGRAM_TOKEN = "7000001:AAF-fake-token-for-chorus-chaos-0123456789"  # noqa: S105 - the fake's token
DISCORD_TOKEN = "discord-chaos-token"  # noqa: S105 - the fake's token
WORKER_KILL_EVERY_S = 10.0
SETTLE_S = 2.0  # after the streams are empty: sends in flight land


@dataclass
class Options:
    platform: str = "telegram"
    mentions: int = 1000
    rate: float = 5.0
    groups: int = 100
    rate_429: float = 0.10
    rate_5xx: float = 0.05
    faults: bool = True  # kills and restarts
    fsync: str = "everysec"
    claim_idle_ms: int = 30_000
    answer_timeout_s: float = 600.0
    seed: int = 1
    keep_logs: Path | None = None  # copy the processes' logs here
    trace: bool = False  # print the backlog every 5 s


@dataclass
class Figures:
    mentions: int
    answered: int
    lost: int
    duplicated: int
    dead_lettered: int
    partial: int
    p50_s: float
    p95_s: float
    max_s: float
    wall_s: float
    injected_429: int
    injected_5xx: int
    kills: dict[str, int] = field(default_factory=dict)
    log_warnings: int = 0
    tracebacks: int = 0
    unfinished: int = 0  # still queued when the run gave up waiting (too slow, not lost)
    startup_median_s: float = 0.0
    startup_max_s: float = 0.0
    absorbed: int = 0  # resends the platform itself answered with the first message (Discord's nonce)
    lost_ids: list[str] = field(default_factory=list)
    duplicated_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sent:
    """One message (or edit) the bot posted in answer to a mention, as the platform recorded it."""

    shown: tuple[object, ...]  # what a person sees; the same twice in new messages is a duplicate
    buttons: bool
    at: float  # time.monotonic() when the platform accepted it
    new: bool  # a new message (an edit is not a second message)


class Side:
    """The platform end of a run: its loopback fake, how a person mentions the bot, what the bot posted."""

    name: str

    async def open(self, opts: Options) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def ready(self) -> bool:
        """The adapter is receiving (polling, or connected to the gateway)."""
        raise NotImplementedError

    async def mention(self, i: int) -> tuple[int, int]:
        """Person ``i`` mentions the bot in group ``i``; the (chat, message) the answer replies to."""
        raise NotImplementedError

    def answers(self) -> dict[tuple[int, int], list[Sent]]:
        raise NotImplementedError

    def injected(self) -> tuple[int, int]:
        """429s and 5xx injected so far."""
        raise NotImplementedError

    def absorbed(self) -> int:
        return 0

    def calls(self) -> str:
        return ""


class TelegramSide(Side):
    name = "telegram"

    async def open(self, opts: Options) -> None:
        self.tg = FakeTelegram(token=TELEGRAM_TOKEN, bot_username="chorus_bot")
        await self.tg.start()
        self.faults = self.tg.inject_faults(
            rate_429=opts.rate_429, rate_5xx=opts.rate_5xx, retry_after=1, seed=opts.seed
        )
        self.groups = [self.tg.add_chat("supergroup", title=f"Chaos {g}")["id"] for g in range(opts.groups)]
        self.people = [self.tg.add_user(f"Person{u}")["id"] for u in range(opts.groups * 5)]

    async def close(self) -> None:
        await self.tg.stop()

    def env(self) -> dict[str, str]:
        return {
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_API_BASE_URL": self.tg.base_url,
            "TELEGRAM_FILE_BASE_URL": self.tg.base_file_url,
        }

    def ready(self) -> bool:
        return bool(self.tg.calls("getUpdates"))

    async def mention(self, i: int) -> tuple[int, int]:
        chat, person = self.groups[i % len(self.groups)], self.people[i % len(self.people)]
        update = self.tg.user_message(chat, person, f"@chorus_bot write a short post about topic {i}")
        return chat, update["message"]["message_id"]

    def answers(self) -> dict[tuple[int, int], list[Sent]]:
        return {
            key: [
                Sent((m.raw_text or m.text or m.caption,), m.reply_markup is not None, m.sent_at, True)
                for m in sent
            ]
            for key, sent in self.tg.posted_per_mention().items()
        }

    def injected(self) -> tuple[int, int]:
        return self.faults.injected_429, self.faults.injected_5xx

    def calls(self) -> str:
        calls = Counter(c.method for c in self.tg.requests)
        return f"sendMessage={calls['sendMessage']} sendChatAction={calls['sendChatAction']}"


class DiscordSide(Side):
    name = "discord"
    GLOBAL_SHARE = 0.1  # of the injected 429s, the global limit (every request of the bot waits)

    async def open(self, opts: Options) -> None:
        self.dc = FakeDiscord(token=DISCORD_TOKEN, bot_name="Chorus")
        await self.dc.start()
        self.faults = self.dc.inject_faults(
            rate_429=opts.rate_429, rate_5xx=opts.rate_5xx, retry_after=1.0,
            global_share=self.GLOBAL_SHARE, seed=opts.seed,
        )  # fmt: skip
        self.channels: list[int] = []
        self.people: list[list[int]] = []
        for g in range(opts.groups):
            guild = self.dc.add_guild(name=f"Chaos {g}")
            self.channels.append(self.dc.add_channel(guild, "general"))
            self.people.append([self.dc.add_member(guild, username=f"person{g}-{u}") for u in range(5)])

    async def close(self) -> None:
        await self.dc.close()

    def env(self) -> dict[str, str]:
        return {
            "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
            "DISCORD_API_BASE_URL": self.dc.api_base,
            "DISCORD_GATEWAY_URL": self.dc.gateway_url,
        }

    def ready(self) -> bool:
        return self.dc.identify_count > 0

    async def mention(self, i: int) -> tuple[int, int]:
        g = i % len(self.channels)
        person = self.people[g][(i // len(self.channels)) % len(self.people[g])]
        text = f"<@{self.dc.bot_id}> write a short post about topic {i}"
        message = await self.dc.message_create(self.channels[g], person, text)
        return self.channels[g], int(message["id"])

    def answers(self) -> dict[tuple[int, int], list[Sent]]:
        out: dict[tuple[int, int], list[Sent]] = {}
        for key, records in self.dc.posted_per_mention().items():
            out[key] = [
                Sent(
                    (r.content, tuple(e.get("description") for e in r.embeds)),
                    bool(r.components),
                    r.at,
                    r.action == "create",
                )
                for r in records
            ]
        return out

    def injected(self) -> tuple[int, int]:
        return self.faults.injected_429, self.faults.injected_5xx

    def absorbed(self) -> int:
        return self.dc.nonce_hits

    def calls(self) -> str:
        posts = sum(1 for r in self.dc.requests if r.method == "POST" and r.path.endswith("/messages"))
        return f"POST messages={posts} gateway connections={len(self.dc.gateway_connections)}"


SIDES: dict[str, type[Side]] = {"telegram": TelegramSide, "discord": DiscordSide}


class Fleet:
    """The Chorus processes of one run, started as an operator would, each logging to its own file."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: Counter[str] = Counter()
        self.started_at: dict[str, float] = {}  # log file name -> when its process was started
        self.running_at: dict[str, float] = {}  # log file name -> when the bench saw it running
        self.kills: Counter[str] = Counter()

    def start(self, role: str, args: list[str]) -> None:
        self.started[role] += 1
        self.started_at[f"{role}.{self.started[role]}.log"] = time.time()
        log = open(self.logs / f"{role}.{self.started[role]}.log", "wb")  # noqa: SIM115 - the process owns it
        self.procs[role] = subprocess.Popen(
            [sys.executable, "-m", "core.cli", *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def log_tail(self, role: str, lines: int = 15) -> str:
        path = self.logs / f"{role}.{self.started[role]}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def startup_times(self) -> list[float]:
        """Seconds from starting each process to its "running" line (imports, connecting, features)."""
        out = []
        for name, at in self.started_at.items():
            for line in (self.logs / name).read_text(errors="replace").splitlines():
                if "core.app: running" in line:
                    logged = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    out.append(logged - at)
                    break
        return sorted(out)

    def running(self, role: str) -> bool:
        """Started up: past its imports and connected (it said so in its log)."""
        return self.running_for(role) is not None

    def running_for(self, role: str) -> float | None:
        """Seconds since the current process of ``role`` said it is running (None: still starting). Its log
        is read only until then (a worker's log grows by thousands of lines a run)."""
        name = f"{role}.{self.started[role]}.log"
        if name not in self.running_at:
            if "core.app: running" not in (self.logs / name).read_text(errors="replace"):
                return None
            self.running_at[name] = time.monotonic()
        return time.monotonic() - self.running_at[name]

    def kill(self, role: str) -> None:
        proc = self.procs[role]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills[role.rstrip("0123456789")] += 1

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def alive(self) -> dict[str, bool]:
        return {role: proc.poll() is None for role, proc in self.procs.items()}


WORKER = ["worker", "--metrics-port", "0"]  # two workers on one machine: no port of their own here


async def run_once(opts: Options) -> Figures:
    with tempfile.TemporaryDirectory(prefix="chorus-chaos-") as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "logs").mkdir()
        server = EmbeddedRedis(tmp / "redis-data")
        server.ensure_running()
        await _set_fsync(server, opts.fsync)
        side = SIDES[opts.platform]()
        await side.open(opts)
        try:
            async with FakeOpenAI(echo=False) as ai:
                return await _drive(opts, tmp, server, side, ai)
        finally:
            await side.close()
            server.release()
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
                server.process.wait()


async def _drive(opts: Options, tmp: Path, server: EmbeddedRedis, side: Side, ai: FakeOpenAI) -> Figures:
    adapter = ["run", "--platform", side.name, "--no-worker"]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHORUS_", "OPENAI_", "TELEGRAM_", "DISCORD_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        NO_PROXY="127.0.0.1,localhost",
        CHORUS_REDIS_URL=server.url,
        CHORUS_DATA_DIR=str(tmp / "data"),
        CHORUS_CLAIM_IDLE_MS=str(opts.claim_idle_ms),
        CHORUS_AUTO_IMAGE="false",
        CHORUS_HTTP_PORT="0",
        OPENAI_API_KEY=ai.api_key or "",
        OPENAI_BASE_URL=ai.base_url,
        **side.env(),
    )
    fleet = Fleet(env, tmp / "logs")
    fleet.start("adapter", adapter)
    fleet.start("worker0", WORKER)
    fleet.start("worker1", WORKER)
    redis = connect(server.url)
    try:
        await _ready(side, fleet)
        posted: dict[tuple[int, int], float] = {}
        window = opts.mentions / opts.rate
        chaos = asyncio.create_task(_chaos(fleet, server, window, adapter)) if opts.faults else None
        start = time.monotonic()
        tracer = asyncio.create_task(_trace(side, redis, posted, start)) if opts.trace else None
        for i in range(opts.mentions):
            await asyncio.sleep(max(0.0, start + i / opts.rate - time.monotonic()))
            at = time.monotonic()
            posted[await side.mention(i)] = at
        if chaos is not None:
            await chaos
        # until everything is answered, or nothing is left in the streams (what is unanswered then is lost);
        # what is still queued at the deadline is counted as unfinished, not lost
        deadline = time.monotonic() + opts.answer_timeout_s
        idle_since: float | None = None
        while time.monotonic() < deadline and _unanswered(side, posted):
            await asyncio.sleep(1.0)
            if await _in_flight(redis, side.name):
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 15:
                break
        unfinished = await _in_flight(redis, side.name)
        # Anything still in a stream could be sent (again) later: wait until the streams are empty (an
        # acknowledged entry is deleted, so nothing can come back), at most one idle-claim period.
        drained_by = time.monotonic() + opts.claim_idle_ms / 1000 + 5
        while time.monotonic() < drained_by and await _in_flight(redis, side.name):
            await asyncio.sleep(0.5)
        await asyncio.sleep(SETTLE_S)
        dead = await _dead_letters(redis)
        wall = time.monotonic() - start
        if tracer is not None:
            tracer.cancel()
    finally:
        fleet.stop_all()
        await redis.aclose()
        if opts.keep_logs is not None:
            shutil.copytree(tmp / "logs", opts.keep_logs, dirs_exist_ok=True)
    figures = _figures(side, posted, dead, wall, fleet, tmp / "logs")
    if unfinished:  # the run ended with work queued: its unanswered mentions were late, not lost
        figures.unfinished, figures.lost = figures.lost, 0
    return figures


async def _set_fsync(server: EmbeddedRedis, policy: str) -> None:
    client = connect(server.url)
    try:
        await client.config_set("appendfsync", policy)
    finally:
        await client.aclose()


async def _ready(side: Side, fleet: Fleet, timeout: float = 120.0) -> None:
    """The adapter receives and every process says it is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not all(fleet.alive().values()):
            raise RuntimeError(f"a process exited during start-up: {fleet.alive()}; logs in {fleet.logs}")
        running = all(fleet.running(role) for role in fleet.procs)
        if running and side.ready():
            return
        await asyncio.sleep(0.2)
    tails = "\n".join(f"--- {role}\n{fleet.log_tail(role)}" for role in fleet.procs)
    raise RuntimeError(f"the fleet did not start in time (receiving: {side.ready()})\n{tails}")


async def _chaos(fleet: Fleet, server: EmbeddedRedis, window: float, adapter: list[str]) -> None:
    """A worker SIGKILLed every 10 s (and started again), the adapter once, redis-server once.

    The worker killed is one that has been running for at least those 10 s: where start-up is quick (a
    few seconds on an idle machine) this is exactly one kill every 10 s; where it is slower than that
    (a loaded machine: 30-70 s), killing a worker as soon as it had started would leave no worker running
    at all, which measures the machine's load, not the crash a worker suffers every 10 s of its life."""
    start = time.monotonic()
    adapter_at, redis_at = window * 0.35, window * 0.65
    adapter_done = redis_done = False
    turn = 0
    next_worker = WORKER_KILL_EVERY_S
    while True:
        now = time.monotonic() - start
        role = f"worker{turn % 2}"
        up = fleet.running_for(role)
        if now >= next_worker and up is not None and up >= WORKER_KILL_EVERY_S:
            fleet.kill(role)
            fleet.start(role, WORKER)
            turn += 1
            next_worker = now + WORKER_KILL_EVERY_S
        if not adapter_done and now >= adapter_at:
            fleet.kill("adapter")
            await asyncio.sleep(1.0)
            fleet.start("adapter", adapter)
            adapter_done = True
        if not redis_done and now >= redis_at:
            assert server.process is not None
            server.process.kill()
            server.process.wait()
            fleet.kills["redis"] += 1
            await asyncio.sleep(2.0)
            await asyncio.to_thread(server.ensure_running)
            redis_done = True
        if now >= window and adapter_done and redis_done:
            return
        await asyncio.sleep(0.1)


async def _in_flight(redis: aioredis.Redis, platform: str) -> int:
    """Events and Actions still in the streams (a processed Event or delivered Action is deleted)."""
    try:
        bus = Bus(redis)  # the default partitions, as the fleet under test uses
        return await bus.backlog() + len(await bus.outbox(platform))
    except Exception:  # Redis restarting: count it as busy
        return 1


async def _trace(
    side: Side, redis: aioredis.Redis, posted: dict[tuple[int, int], float], start: float
) -> None:
    while True:
        await asyncio.sleep(5)
        try:
            bus = Bus(redis)
            events, outbox = await bus.backlog(), len(await bus.outbox(side.name))
        except Exception as exc:  # Redis is being killed
            events = outbox = type(exc).__name__  # type: ignore[assignment]
        print(
            f"t={time.monotonic() - start:6.1f}s posted={len(posted)} unanswered={_unanswered(side, posted)} "
            f"events={events} outbox={outbox} {side.calls()}",
            flush=True,
        )


def _unanswered(side: Side, posted: dict[tuple[int, int], float]) -> int:
    replies = side.answers()
    return sum(1 for key in posted if not any(m.buttons for m in replies.get(key, [])))


async def _dead_letters(redis: aioredis.Redis) -> set[tuple[int, int]]:
    """Which mentions ended in the dead-letter stream (their Event, or an Action answering them)."""
    out: set[tuple[int, int]] = set()
    for fields in await Bus(redis).dead():
        data = json.loads(fields[b"payload"])
        ref = data.get("message_id") if fields[b"stream"].endswith(b":events") else data.get("reply_to")
        if ref:
            chat, _, message = str(ref).partition(":")
            out.add((int(chat), int(message.split(":")[0])))
    return out


def _figures(
    side: Side,
    posted: dict[tuple[int, int], float],
    dead: set[tuple[int, int]],
    wall: float,
    fleet: Fleet,
    logs: Path,
) -> Figures:
    replies = side.answers()
    times: list[float] = []
    answered = lost = duplicated = partial = 0
    lost_ids: list[str] = []
    dup_ids: list[str] = []
    for key, at in posted.items():
        sent = replies.get(key, [])
        seen = Counter((m.shown, m.buttons) for m in sent if m.new)
        if any(n > 1 for n in seen.values()):
            duplicated += 1
            dup_ids.append(f"{key[0]}:{key[1]}")
        if any(m.buttons for m in sent):
            answered += 1
            times.append(max(m.at for m in sent) - at)
        elif sent:
            partial += 1
        elif key not in dead:
            lost += 1
            lost_ids.append(f"{key[0]}:{key[1]}")
    text = "".join(p.read_text(errors="replace") for p in logs.glob("*.log"))
    startups = fleet.startup_times()
    times.sort()
    injected_429, injected_5xx = side.injected()
    return Figures(
        mentions=len(posted),
        answered=answered,
        lost=lost,
        duplicated=duplicated,
        dead_lettered=len(dead & set(posted)),
        partial=partial,
        p50_s=_pct(times, 50),
        p95_s=_pct(times, 95),
        max_s=times[-1] if times else float("nan"),
        wall_s=wall,
        injected_429=injected_429,
        injected_5xx=injected_5xx,
        kills=dict(fleet.kills),
        log_warnings=text.count(" WARNING "),
        tracebacks=text.count("Traceback"),
        startup_median_s=statistics.median(startups) if startups else 0.0,
        startup_max_s=max(startups, default=0.0),
        absorbed=side.absorbed(),
        lost_ids=lost_ids[:20],
        duplicated_ids=dup_ids[:20],
    )


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# -- what appendfsync always costs ------------------------------------------------------------------
async def fsync_cost(n: int = 3000, concurrency: int = 16) -> dict[str, dict[str, float]]:
    """Events through the bus (publish, then the worker's complete transaction) per second, and a raw SET
    baseline, with appendfsync everysec and always, on this machine's disk."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="chorus-fsync-") as tmp_dir:
        server = EmbeddedRedis(Path(tmp_dir))
        server.ensure_running()
        redis = connect(server.url)
        try:
            for policy in ("everysec", "always"):
                await redis.config_set("appendfsync", policy)
                await redis.flushall()
                out[policy] = await _fsync_figures(redis, policy, n, concurrency)
        finally:
            await redis.aclose()
            server.release()
    return out


async def _fsync_figures(redis: aioredis.Redis, policy: str, n: int, concurrency: int) -> dict[str, float]:
    bus = Bus(redis)

    async def raw(i: int) -> None:
        await redis.set(f"k{i}", "v")

    async def event(i: int) -> None:
        await _event_round(bus, i, policy)

    async def event_alone(i: int) -> None:
        await _event_round(bus, i, f"{policy}-alone")

    return {
        "raw SET/s": await _rate(n, concurrency, raw),
        "bus events/s": await _rate(n, concurrency, event),
        "bus events/s, 1 client": await _rate(n // 3, 1, event_alone),
    }


async def _event_round(bus: Bus, i: int, tag: str) -> None:
    """What each mention costs the bus in writes: publish (dedupe + XADD), then complete (MULTI/EXEC)."""
    event = Event(
        kind=EventKind.MENTION, platform="telegram", community="c", channel="g",
        message_id=f"{tag}-{i}", author=Author(id="u"), text="hi",
    )  # fmt: skip
    stream_id = await bus.publish(event)
    assert stream_id is not None
    await bus.complete(Delivery(stream_id, b""), event.id, [reply_to_event(event, "answer")])


async def _rate(n: int, concurrency: int, op: Callable[[int], Awaitable[None]]) -> float:
    counter = iter(range(n))

    async def runner() -> None:
        for i in counter:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


# -- reporting --------------------------------------------------------------------------------------
def summary(runs: list[Figures]) -> str:
    lines = [
        "run  mentions answered lost dup dead partial unfinished   p50 s   p95 s   max s  429s  5xx  kills"
        "                       warnings tracebacks  start-up s (median/max)  absorbed  wall s"
    ]
    for i, f in enumerate(runs, 1):
        kills = ",".join(f"{k}={v}" for k, v in sorted(f.kills.items()))
        lines.append(
            f"{i:>3} {f.mentions:>9} {f.answered:>8} {f.lost:>4} {f.duplicated:>3} {f.dead_lettered:>4} "
            f"{f.partial:>7} {f.unfinished:>10} {f.p50_s:>7.2f} {f.p95_s:>7.2f} {f.max_s:>7.2f} {f.injected_429:>5} "
            f"{f.injected_5xx:>4}  {kills:<26} {f.log_warnings:>8} {f.tracebacks:>10}  "
            f"{f.startup_median_s:>10.1f}/{f.startup_max_s:<13.1f} {f.absorbed:>8} {f.wall_s:>7.0f}"
        )
    if len(runs) > 1:
        lines.append(
            f"all {sum(f.mentions for f in runs):>9} {sum(f.answered for f in runs):>8} "
            f"{sum(f.lost for f in runs):>4} {sum(f.duplicated for f in runs):>3} "
            f"{sum(f.dead_lettered for f in runs):>4} {sum(f.partial for f in runs):>7} "
            f"{sum(f.unfinished for f in runs):>10} "
            f"{statistics.median(f.p50_s for f in runs):>7.2f} {max(f.p95_s for f in runs):>7.2f} "
            f"{max(f.max_s for f in runs):>7.2f}   (p50: median of runs; p95, max: worst run)"
        )
    for i, f in enumerate(runs, 1):
        if f.lost_ids or f.duplicated_ids:
            lines.append(f"run {i}: lost {f.lost_ids} duplicated {f.duplicated_ids}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--platform", choices=sorted(SIDES), default="telegram")
    p.add_argument("--mentions", type=int, default=1000)
    p.add_argument("--rate", type=float, default=5.0, help="mentions per second")
    p.add_argument("--groups", type=int, default=100)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--fsync", choices=("everysec", "always"), default="everysec")
    p.add_argument("--claim-idle-ms", type=int, default=30_000)
    p.add_argument(
        "--baseline", action="store_true", help="also one run without faults (no kills, no 429/5xx)"
    )
    p.add_argument(
        "--fsync-cost", action="store_true", help="only measure appendfsync always against everysec"
    )
    p.add_argument("--json", type=Path, help="append each run's figures as a JSON line")
    p.add_argument("--keep-logs", type=Path, help="copy the processes' logs here")
    p.add_argument("--trace", action="store_true", help="print the backlog every 5 s")
    args = p.parse_args()
    if args.fsync_cost:
        for policy, figures in asyncio.run(fsync_cost()).items():
            print(policy, {k: round(v) for k, v in figures.items()})
        return
    print("command: python " + " ".join(sys.argv), flush=True)
    print(
        f"load at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}",
        flush=True,
    )
    opts = Options(
        platform=args.platform, mentions=args.mentions, rate=args.rate, groups=args.groups, fsync=args.fsync,
        claim_idle_ms=args.claim_idle_ms, keep_logs=args.keep_logs, trace=args.trace,
    )  # fmt: skip
    if args.baseline:
        calm = asyncio.run(
            run_once(Options(**{**asdict(opts), "faults": False, "rate_429": 0.0, "rate_5xx": 0.0}))
        )
        print("baseline (no kills, no 429/5xx):")
        print(summary([calm]), flush=True)
    runs: list[Figures] = []
    for i in range(args.runs):
        figures = asyncio.run(run_once(Options(**{**asdict(opts), "seed": i + 1})))
        runs.append(figures)
        if args.json:
            with args.json.open("a") as out:
                out.write(json.dumps({"fsync": args.fsync, **asdict(figures)}) + "\n")
        print(summary([figures]).splitlines()[1], flush=True)
    print(
        f"chaos, {args.platform}, {args.fsync}, {args.mentions} mentions at {args.rate}/s in {args.groups} groups"
        f" (load at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}):"
    )
    print(summary(runs))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so a SIGTERM stops the fleet and redis-server on the way out


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        main()
