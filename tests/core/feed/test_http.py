from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import aiohttp
import feedparser

from core.feed.http import FeedHttp, feed_http_runner
from core.feed.preferences import EMPTY
from core.feed.service import FeedService
from core.feed.timelines import Scope
from core.services import Services
from core.web.signing import feed_token, revoke_feed_tokens
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
    await set_visibility(
        services.redis, "telegram:-1001", "public"
    )  # the items' community; private by default
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


# -- privacy: every format and scope serves only what the reader may see ----------------------------------
PUBLIC, PRIVATE = "telegram:-1001", "telegram:-2002"


async def _two_communities(services: Services) -> tuple[FeedHttp, str, str]:
    """A public and a private community on one platform, and one story both of them carry."""
    feed = FeedService(services)
    now = time.time()
    shared = "The harbour festival moves to Saturday because of the storm warning for Friday night."
    await feed.store.ingest(
        [
            item(
                "Public news: the library opens a new reading room next week.",
                community="-1001",
                created_at=now - 30,
            ),
            item(
                "PRIVATE secret: the board votes on the merger tonight, keep it quiet.",
                community="-2002",
                created_at=now - 20,
            ),
            item(shared, community="-1001", created_at=now - 10),
            item(shared + " PRIVATE", community="-2002", created_at=now - 5),
        ]
    )
    await set_visibility(services.redis, PUBLIC, "public")
    server = FeedHttp(feed, "127.0.0.1", 0)
    port = await server.start()
    stories = await feed.timelines.page(Scope("community", PRIVATE), "new", 10)
    private_only = next(s.id for s in stories.stories if all(i.community_key == PRIVATE for i in s.items))
    assert any(len({i.community_key for i in s.items}) == 2 for s in stories.stories)  # the shared story
    return server, f"http://127.0.0.1:{port}", private_only


def _texts(fmt: str, body: bytes) -> list[str]:
    if fmt == "json":
        return [i["content_text"] for i in json.loads(body)["items"]]
    parsed = feedparser.parse(body)
    return [e.get("summary", "") + e.get("title", "") for e in parsed.entries]


async def test_anonymous_readers_get_only_public_communities_in_every_format_and_scope(
    services: Services,
) -> None:
    server, base, private_story = await _two_communities(services)
    try:
        async with aiohttp.ClientSession() as http:
            for fmt in ("rss", "atom", "json"):
                for scope in ("all", "platform:telegram", f"community:{PUBLIC}"):
                    for order in ("hot", "new", "top"):
                        async with http.get(f"{base}/feed.{fmt}?scope={scope}&order={order}") as r:
                            assert r.status == 200, (fmt, scope, order)
                            texts = _texts(fmt, await r.read())
                        assert any("library" in t for t in texts), (fmt, scope, order, texts)
                        assert not any("PRIVATE" in t for t in texts), (fmt, scope, order, texts)
                async with http.get(f"{base}/feed.{fmt}?scope=community:{PRIVATE}") as r:
                    assert r.status == 404 and "PRIVATE" not in await r.text()
            async with http.get(f"{base}/stories/{private_story}") as r:
                assert r.status == 404
            async with http.get(f"{base}/feed.json?scope=all&order=new") as r:
                page = await r.json(content_type=None)
            for entry in page["items"]:  # a story both carry shows only the public community's item
                async with http.get(f"{base}/stories/{entry['_chorus']['id']}") as r:
                    story = await r.json()
                assert {i["community"] for i in story["items"]} == {"-1001"}
            # HTML pages: the same rule
            async with http.get(f"{base}/?scope=all&order=new") as r:
                page_html = await r.text()
            assert "library" in page_html and "PRIVATE" not in page_html
            async with http.get(f"{base}/story/{private_story}") as r:
                assert r.status == 404
            async with http.get(f"{base}/?scope=community:{PRIVATE}") as r:
                assert r.status == 404 and "PRIVATE" not in await r.text()
    finally:
        await server.stop()


async def test_personal_feed_tokens_open_their_community_until_revoked(services: Services) -> None:
    server, base, private_story = await _two_communities(services)
    token = await feed_token(services.redis, PRIVATE, "u7")
    try:
        async with aiohttp.ClientSession() as http:
            for fmt in ("rss", "atom", "json"):
                async with http.get(f"{base}/feed.{fmt}?scope=all&order=new&token={token}") as r:
                    texts = _texts(fmt, await r.read())
                assert any("board votes" in t for t in texts) and any("library" in t for t in texts), fmt
            forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
            other = await feed_token(services.redis, PUBLIC, "u7")
            tampered = other.split(".")[0] + "." + token.split(".")[1]  # B's signature on A's payload
            for bad in (forged, tampered, "nonsense"):
                async with http.get(f"{base}/feed.rss?scope=community:{PRIVATE}&token={bad}") as r:
                    assert r.status == 403
            await revoke_feed_tokens(services.redis, PRIVATE, "u7")
            async with http.get(f"{base}/feed.atom?scope=community:{PRIVATE}&token={token}") as r:
                assert r.status == 403 and "board votes" not in await r.text()
            fresh = await feed_token(services.redis, PRIVATE, "u7")
            async with http.get(f"{base}/stories/{private_story}?token={fresh}") as r:
                assert r.status == 200 and "board votes" in await r.text()
    finally:
        await server.stop()


# -- a personal token's feed is its holder's: their mutes and default order ---------------------------------
MUTED = {  # what each kind of mute hides, and a story only that mute hides
    "word": ("zeppelin", "A zeppelin flies over the harbour at dawn, photographers gather on the pier."),
    "author": ("grace", "The bakery on the square sells sourdough again from Monday, says its owner."),
    "channel": ("offtopic", "Quiz night at the old mill: teams of four, prizes for the best team name."),
    "platform": ("x", "Rocket launch window opens on Thursday, the countdown clock is already running."),
}


async def _people(services: Services) -> tuple[FeedService, FeedHttp, str]:
    """A private Telegram community whose members hold tokens, and a public X community (for a platform
    mute under scope=all): one story per kind of mute, and one nobody mutes."""
    feed = FeedService(services)
    now = time.time()
    await feed.store.ingest(
        [
            item(MUTED["word"][1], community="-2002", created_at=now - 50),
            item(
                MUTED["author"][1],
                community="-2002",
                author_id="u9",
                author_name="Grace",
                created_at=now - 40,
            ),
            item(MUTED["channel"][1], community="-2002", channel="offtopic", created_at=now - 30),
            item(MUTED["platform"][1], platform="x", community="3003", created_at=now - 20),
            item(
                "The library opens a new reading room with late hours next week.",
                community="-2002",
                created_at=now - 10,
            ),
        ]
    )
    await set_visibility(services.redis, "x:3003", "public")
    server = FeedHttp(feed, "127.0.0.1", 0)
    port = await server.start()
    return feed, server, f"http://127.0.0.1:{port}"


async def test_token_feeds_apply_their_holders_mutes_in_every_format(services: Services) -> None:
    feed, server, base = await _people(services)
    mine = await feed_token(services.redis, PRIVATE, "u7")
    theirs = await feed_token(services.redis, PRIVATE, "u8")
    try:
        async with aiohttp.ClientSession() as http:
            for kind, (value, text) in MUTED.items():
                await feed.preferences.save(PRIVATE, "u7", EMPTY.muted(kind, [value]))  # type: ignore[arg-type]
                marker = text.split(" ")[1]  # "zeppelin", "bakery", …
                for fmt in ("rss", "atom", "json"):
                    for token, present in ((mine, False), (theirs, True)):
                        async with http.get(f"{base}/feed.{fmt}?scope=all&token={token}") as r:
                            assert r.status == 200
                            texts = _texts(fmt, await r.read())
                        assert any("library" in t for t in texts), (kind, fmt)
                        assert any(marker in t for t in texts) is present, (kind, fmt, token == mine, texts)
                    # without a token nobody's preferences apply (the public X story is there)
                    async with http.get(f"{base}/feed.{fmt}?scope=all") as r:
                        assert any("Rocket" in t for t in _texts(fmt, await r.read()))
    finally:
        await server.stop()


async def test_token_feeds_follow_their_holders_default_order_and_weights(services: Services) -> None:
    feed, server, base = await _people(services)
    mine = await feed_token(services.redis, PRIVATE, "u7")
    theirs = await feed_token(services.redis, PRIVATE, "u8")
    stories = (await feed.timelines.page(Scope("community", PRIVATE), "new", 10)).stories
    await feed.store.engage(stories[-1].items[0].id, reactions=40)  # the oldest is hot, the newest is new
    await feed.preferences.save(PRIVATE, "u7", EMPTY.with_order("new"))

    async def read(fmt: str, token: str, extra: str = "") -> list[dict[str, Any]]:
        async with http.get(f"{base}/feed.{fmt}?scope=community:{PRIVATE}&token={token}{extra}") as r:
            body = await r.read()
        if fmt == "json":
            return [
                {
                    "text": i["content_text"],
                    "order": i["_chorus"]["reason"]["order"],
                    "personal": i["_chorus"]["reason"].get("personal"),
                }
                for i in json.loads(body)["items"]
            ]
        return [
            {"text": e.get("summary", ""), "order": None, "personal": None}
            for e in feedparser.parse(body).entries
        ]

    try:
        async with aiohttp.ClientSession() as http:
            for fmt in ("rss", "atom", "json"):
                new, hot = await read(fmt, mine), await read(fmt, theirs)
                assert "library" in new[0]["text"] and "zeppelin" in new[-1]["text"], fmt
                assert "zeppelin" in hot[0]["text"], fmt  # the other person keeps the hot order
                assert [e["text"] for e in await read(fmt, mine, "&order=hot")] == [e["text"] for e in hot]
                if fmt == "json":
                    assert {e["order"] for e in new} == {"new"} and {e["order"] for e in hot} == {"hot"}
            # learned weights lift a story in the holder's hot feed and say why
            await feed.preferences.save(PRIVATE, "u7", EMPTY.learned(more=["library"], step=3.0))
            boosted = await read("json", mine)
            assert "library" in boosted[0]["text"] and boosted[0]["personal"] == {
                "more": ["library"],
                "less": [],
            }
            assert "zeppelin" in (await read("json", theirs))[0]["text"]
    finally:
        await server.stop()
