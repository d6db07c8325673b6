"""Web app benchmarks, each beside a raw baseline measured in the same run on the same server.

1. A feed page of 50 stories, server-rendered HTML fetched over loopback HTTP (the session-less reader: the
   visibility check, the merge of the visible communities' timelines, the stories, the template), with
   1,000,000 items in Redis: p50/p99 against the raw timeline read of the same page (ZREVRANGEBYSCORE 50 +
   MGET of the items) from redis-py. Three pages: one community's; "all" when every community is public
   (nothing hidden: the global per-platform timelines are read); and "all" with one of the 60 communities
   private (the anonymous reader's page merges the 59 visible communities' timelines).
   Then where a page's time goes, in process, for the one-community page and the 59-of-60 page: the
   reader's visible and hidden sets, the page read (``VisibleTimelines.visible_page``), the feed's own
   timeline read of the same scope (``Timelines.page``, core/feed/timelines.py), the 50 cards, the template.
2. The first load of the feed page in Chromium on loopback (Playwright): time to ``load``, and the bytes
   transferred without images (HTML + CSS; the feed page has no script).

Items are made and loaded with bench/feed.py's corpus and ``FeedStore.ingest``. Run:
``.venv/bin/python bench/web.py`` (a few minutes on 2 cores; CHORUS_BENCH_ITEMS=200000 for a quick run).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
from feed import N_ITEMS, PLATFORMS, Corpus, pct, stage  # noqa: E402

from bots import registry  # noqa: E402
from core.bus import Bus  # noqa: E402
from core.feed import keys as fk  # noqa: E402
from core.feed.http import FeedHttp  # noqa: E402
from core.feed.ingest import FeedStore  # noqa: E402
from core.feed.service import FeedService  # noqa: E402
from core.feed.timelines import Scope  # noqa: E402
from core.redis_server import EmbeddedRedis, connect  # noqa: E402
from core.services import Services  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.web.cards import cards  # noqa: E402
from core.web.reading import VisibleTimelines  # noqa: E402
from core.web.render import ENV  # noqa: E402
from core.web.visibility import set_visibility  # noqa: E402
from tests.core.web.stack import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - one launch recipe for tests and benches

N_REQUESTS = int(os.environ.get("CHORUS_BENCH_PAGES", "400"))
COMMUNITY = "telegram:telegram-c3"


async def load(url: str) -> None:
    redis = connect(url)
    store = FeedStore(redis)
    corpus = Corpus()
    produced = 0
    t0 = time.perf_counter()
    while produced < N_ITEMS:
        batch = list(corpus.items(min(50_000, N_ITEMS - produced), produced))
        produced += len(batch)
        for i in range(0, len(batch), 10_000):
            await store.ingest(batch[i : i + 10_000])
        stage(f"{produced:,} items ({produced / (time.perf_counter() - t0):,.0f}/s)")
    for platform in PLATFORMS:
        for n in range(20):
            await set_visibility(redis, f"{platform}:{platform}-c{n}", "public")
    while True:  # let an AOF rewrite forked by the load finish: steady state
        persistence = await redis.info("persistence")
        if not (int(persistence["aof_rewrite_in_progress"]) or int(persistence["aof_rewrite_scheduled"])):
            break
        await asyncio.sleep(0.5)
    await redis.aclose()


async def bench_pages(url: str, tmp: Path) -> tuple[dict[str, list[float]], str, FeedHttp, Any]:
    redis = connect(url)
    settings = Settings(CHORUS_DATA_DIR=tmp / "data", CHORUS_REDIS_URL=url)
    services = Services(settings=settings, redis=redis, bus=Bus(redis), platforms=registry.catalog())
    feed = FeedService(services)
    server = FeedHttp(feed, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{await server.start()}"
    results: dict[str, list[float]] = {}
    gc.collect()
    async with aiohttp.ClientSession() as http:
        for label, path, hidden in (
            (
                "page: one community, hot, 50 stories (HTML over HTTP)",
                f"/?scope=community:{COMMUNITY}",
                False,
            ),
            ("page: all, 60 of 60 communities public (global timelines)", "/?scope=all", False),
            ("page: all, 59 of 60 public (global timelines, hidden dropped)", "/?scope=all", True),
        ):
            await set_visibility(redis, "x:x-c19", "private" if hidden else "public")
            async with http.get(base + path) as r:  # warm: templates compiled, scripts loaded
                assert r.status == 200 and (await r.text()).count('class="card"') == 50, path
            lat = []
            for _ in range(N_REQUESTS):
                t0 = time.perf_counter()
                async with http.get(base + path) as r:
                    await r.read()
                lat.append(time.perf_counter() - t0)
            results[label] = lat
    for label, scope in (
        ("raw: ZREVRANGEBYSCORE 50 + MGET, the community's timeline", Scope.parse(f"community:{COMMUNITY}")),
        ("raw: ZREVRANGEBYSCORE 50 + MGET, one platform's timeline", Scope("platform", "telegram")),
    ):
        # the feed is in partitions: the raw read of a page is each partition's timeline (one pipelined
        # ZREVRANGEBYSCORE each), the 50 best merged by score, and their items (MGET per partition)
        sources = await feed.timelines.timeline_keys(scope, "hot")
        lat = []
        for _ in range(N_REQUESTS):
            t0 = time.perf_counter()
            async with redis.pipeline(transaction=False) as pipe:
                for _part, keys in sources:
                    for key in keys:
                        pipe.zrevrangebyscore(key, "+inf", "-inf", start=0, num=50, withscores=True)
                found = await pipe.execute()
            best = sorted((row for rows in found for row in rows), key=lambda r: -r[1])[:50]
            by_part: dict[int, list[str]] = {}
            for i, _ in best:
                by_part.setdefault(fk.part_of(i.decode()), []).append(fk.item(i.decode()))
            async with redis.pipeline(transaction=False) as pipe:
                for keys in by_part.values():
                    pipe.mget(keys)
                await pipe.execute()
            lat.append(time.perf_counter() - t0)
        results[label] = lat
    for label, scope, hidden in (
        ("one community", Scope.parse(f"community:{COMMUNITY}"), False),
        ("all, 59 of 60 public", Scope.parse("all"), True),
    ):
        await set_visibility(redis, "x:x-c19", "private" if hidden else "public")
        stages: dict[str, list[float]] = {}
        for _ in range(N_REQUESTS // 2):
            t0 = time.perf_counter()
            reader = await VisibleTimelines.for_reader(feed.timelines, redis)
            t1 = time.perf_counter()
            page = await reader.visible_page(scope, "hot", 50)
            t2 = time.perf_counter()
            html = cards(page.stories, services.platforms)
            t3 = time.perf_counter()
            ENV.get_template("feed.html").render(
                session=None, csrf="", base="", title="Chorus feed", cards=html, cursor=page.cursor,
                order="hot", orders=("hot", "new", "top"), scope="all", scopes=[("all", "All communities")],
            )  # fmt: skip
            t4 = time.perf_counter()
            await feed.timelines.page(scope, "hot", 50)
            t5 = time.perf_counter()
            for name, took in (
                ("visible and hidden sets", t1 - t0),
                ("the page read (visible_page)", t2 - t1),
                ("50 cards", t3 - t2),
                ("the template", t4 - t3),
                ("feed's Timelines.page, same scope", t5 - t4),
            ):
                stages.setdefault(f"stage [{label}]: {name}", []).append(took)
        results.update(stages)
    return results, base, server, services


async def bench_browser(base: str) -> dict[str, float] | None:
    if not Path(CHROMIUM).exists():
        print("  (no /usr/bin/chromium: browser figures skipped)")
        return None
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        try:
            loads, sizes = [], []
            for _ in range(5):
                context = await browser.new_context()  # a cold cache each time: a first visit
                page = await context.new_page()
                sizes_now: list[int] = []

                async def count(response: Any, into: list[int] = sizes_now) -> None:
                    if response.request.resource_type != "image":
                        into.append(len(await response.body()))

                page.on("response", count)
                t0 = time.perf_counter()
                await page.goto(base + "/?scope=all", wait_until="load")  # 50 stories
                loads.append(time.perf_counter() - t0)
                await asyncio.sleep(0.1)
                sizes.append(sum(sizes_now))
                await context.close()
        finally:
            await browser.close()
    return {"load_p50_ms": pct(loads, 50), "load_max_ms": max(loads) * 1000, "bytes": float(max(sizes))}


async def main() -> None:
    print(f"== Web benchmarks (items {N_ITEMS:,}; {N_REQUESTS} requests per figure) ==", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        server.ensure_running()
        try:
            stage("loading items")
            await load(server.url)
            stage("pages")
            results, base, http, services = await bench_pages(server.url, Path(tmp))
            try:
                print("\nFeed page of 50 stories, client-side latency (ms):")
                for label, lat in results.items():
                    print(f"  {label:<68} p50 {pct(lat, 50):7.2f}   p99 {pct(lat, 99):7.2f}")
                labels = list(results)
                for page_label, raw_label in (
                    (labels[0], labels[3]),
                    (labels[1], labels[4]),
                    (labels[2], labels[4]),
                ):
                    ratio = pct(results[page_label], 99) / pct(results[raw_label], 99)
                    print(
                        f"  p99 {page_label.split(':')[1].split('(')[0].strip()!r} / "
                        f"{raw_label.split(', ')[1]!r}: {ratio:.1f}x (goal 3x)"
                    )
                stage("browser")
                figures = await bench_browser(base)
                if figures:
                    print("\nFirst load of the feed page in Chromium (loopback, cold cache, 5 loads):")
                    print(f"  load: p50 {figures['load_p50_ms']:.0f} ms, max {figures['load_max_ms']:.0f} ms")
                    print(
                        f"  bytes transferred without images: {figures['bytes'] / 1024:.1f} KB (goal 300 KB)"
                    )
            finally:
                await http.stop()
                await services.redis.aclose()
        finally:
            server.release()


if __name__ == "__main__":
    asyncio.run(main())
