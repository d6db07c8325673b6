from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import feedparser

from core.feed.http import FeedHttp, feed_http_runner
from core.feed.service import FeedService
from core.services import Services
from core.web.visibility import set_visibility
from tests.core.feed.helpers import item


async def _serve(services: Services) -> tuple[FeedService, FeedHttp, str]:
    feed = FeedService(services)
    now = time.time()
    await feed.store.ingest(
        [
            item(
                f"Post number {n} about the weekly release train and its {n} changes.",
                platform=p,
                created_at=now - n,
            )
            for n, p in enumerate(["x", "telegram", "discord"] * 5)
        ]
    )
    await set_visibility(services.redis, "telegram:-1001", "public")  # the items' community; private by default
    for p in ("x", "discord"):
        await set_visibility(services.redis, f"{p}:-1001", "public")
    server = FeedHttp(feed, "127.0.0.1", 0)
    port = await server.start()
    return feed, server, f"http://127.0.0.1:{port}"


async def test_feeds_over_http_with_pagination(services: Services) -> None:
    _, server, base = await _serve(services)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/feed.rss?scope=all&order=new&limit=4") as r:
                assert r.status == 200 and r.content_type == "application/rss+xml"
                rss = feedparser.parse(await r.read())
            assert len(rss.entries) == 4 and rss.entries[0].title.startswith("Post number 0 ")
            async with http.get(f"{base}/feed.atom?scope=platform:telegram&order=new") as r:
                atom = feedparser.parse(await r.read())
                assert r.content_type == "application/atom+xml"
            assert len(atom.entries) == 5 and atom.feed.title == "Chorus — new in Telegram"
            url = f"{base}/feed.json?scope=all&order=new&limit=6"
            seen = []
            while url:
                async with http.get(url) as r:
                    assert r.content_type == "application/feed+json"
                    page = await r.json(content_type=None)
                seen += [i["title"] for i in page["items"]]
                url = page.get("next_url")
            assert len(seen) == 15 and len(set(seen)) == 15
            story_id = page["items"][0]["_chorus"]["id"]
            async with http.get(f"{base}/stories/{story_id}") as r:
                assert (await r.json())["id"] == story_id
            for bad in ("scope=community:", "order=best", "limit=x", "period=year", "cursor=nope"):
                async with http.get(f"{base}/feed.json?{bad}") as r:
                    assert r.status == 400 and "error" in await r.json()
            async with http.get(f"{base}/stories/unknown") as r:
                assert r.status == 404
            async with http.get(f"{base}/healthz") as r:
                assert await r.text() == "ok"
    finally:
        await server.stop()


async def test_runner_is_disabled_by_port_zero_and_survives_a_busy_port(services: Services) -> None:
    feed = FeedService(services)
    for port in (0, None):
        if port is None:
            busy = socket.socket()
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
        services.settings = services.settings.model_copy(update={"http_port": port})
        stop = asyncio.Event()
        task = asyncio.create_task(feed_http_runner(services, feed)(stop))
        await asyncio.sleep(0.2)
        assert not task.done()  # a background part that returned early would stop `chorus run`
        stop.set()
        await asyncio.wait_for(task, 5)
    busy.close()


async def test_runner_serves_until_stopped(services: Services) -> None:
    feed = FeedService(services)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    services.settings = services.settings.model_copy(update={"http_port": port})
    stop = asyncio.Event()
    task = asyncio.create_task(feed_http_runner(services, feed)(stop))
    async with aiohttp.ClientSession() as http:
        for _ in range(50):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    assert await r.text() == "ok"
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the endpoint never answered")
    stop.set()
    await asyncio.wait_for(task, 5)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # closed on stop
