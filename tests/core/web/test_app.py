"""The feed pages over HTTP (aiohttp client): pagination by cursor, story pages, headers on every response."""

from __future__ import annotations

import re
import time

import aiohttp

from core.feed.http import FeedHttp
from core.services import Services
from core.web.render import CSP
from core.web.visibility import set_visibility
from tests.core.feed.helpers import item
from tests.support import feed_of


async def test_pages_follow_cursors_and_every_response_carries_the_policy(services: Services) -> None:
    now = time.time()
    await feed_of(services).store.ingest(
        [
            item(
                f"Story {n:02d}: {' '.join(f'w{n}x{k}' for k in range(8))}",
                community="-1001",
                created_at=now - n,
            )
            for n in range(60)
        ]
    )
    await set_visibility(services.redis, "telegram:-1001", "public")
    server = FeedHttp(feed_of(services), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{await server.start()}"
    try:
        async with aiohttp.ClientSession() as http:
            seen: list[str] = []
            url: str | None = base + "/?order=new&scope=platform:telegram"
            pages = 0
            while url:
                async with http.get(url) as r:
                    assert r.status == 200 and r.headers["Content-Security-Policy"] == CSP
                    assert (
                        r.headers["X-Content-Type-Options"] == "nosniff"
                        and r.headers["Cache-Control"] == "no-store"
                    )
                    page = await r.text()
                seen += re.findall(r"Story (\d\d):", page)
                more = re.search(r'rel="next" href="([^"]+)"', page)
                url = base + more.group(1).replace("&amp;", "&") if more else None
                pages += 1
            assert pages == 2 and seen == [f"{n:02d}" for n in range(60)]
            story = re.search(r'href="/story/([^"]+)"', page).group(1)  # type: ignore[union-attr]
            async with http.get(f"{base}/story/{story}") as r:
                assert r.status == 200 and "Story 50:" in await r.text()  # the first of the last page
            for path in ("/feed.json", "/static/chorus.css", "/story/nope", "/m/test/c1", "/healthz"):
                async with http.get(base + path) as r:
                    assert r.headers["Content-Security-Policy"] == CSP, path
                    assert r.headers["Referrer-Policy"] == "no-referrer", path
            async with http.get(base + "/m/test/c1") as r:
                assert r.status == 403 and "Sign in first" in await r.text()
            async with http.get(base + "/?cursor=nonsense") as r:
                assert r.status == 400 and "not valid" in await r.text()
    finally:
        await server.stop()
