"""Reasons are the ranking's own numbers: constructed engagement, known figures, the same in every output."""

from __future__ import annotations

import json
import math
import time

import aiohttp
import feedparser

from core.feed.http import FeedHttp
from core.feed.reasons import explain
from core.feed.service import FeedService
from core.feed.timelines import Scope
from core.services import Services
from tests.core.feed.helpers import item
from tests.support import CATALOG


async def _engaged(services: Services) -> tuple[FeedService, float]:
    """One Telegram post with 12 reactions in a fresh source: its baseline is (12 + 10) / (1 + 10) = 2
    reactions per item (scripts' priors), so its normalised engagement is exactly 12 / 2 = 6."""
    feed = FeedService(services)
    created = time.time() - 1800
    post = item("Volunteers planted forty apple trees along the river path this weekend.", created_at=created)
    await feed.store.ingest([post])
    assert await feed.store.engage(post.id, reactions=12)
    quiet = item("Reminder: the library closes early on Friday.", channel="notices", created_at=created - 60)
    await feed.store.ingest([quiet])
    return feed, created


async def test_hot_reason_is_the_hot_score_split_into_its_parts(services: Services) -> None:
    feed, created = await _engaged(services)
    tau = feed.settings.tau_s
    page = await feed.timelines.page(Scope("community", "telegram:-1001"), "hot", 10)
    top = page.stories[0]
    reason = explain(top, "hot", tau_s=tau, now=created + 1800)
    assert reason.normalised == 6.0 and reason.weighted == 12.0
    assert math.isclose(reason.engagement_term, math.log(7.0))
    assert math.isclose(reason.freshness_term, created / tau, rel_tol=1e-12)
    assert abs(reason.engagement_term + reason.freshness_term - top.score) < 1e-6  # the score itself
    assert reason.text(CATALOG) == "hot in Telegram · 12 reactions, 6.0× this chat's usual"
    quiet = page.stories[1]
    assert abs(math.log1p(0) + quiet.created_at / tau - quiet.score) < 1e-6
    assert (
        explain(quiet, "new", tau_s=tau, now=created + 1800).text(CATALOG) == "new in Telegram · 31 min ago"
    )


async def test_top_reason_is_the_windows_engagement(services: Services) -> None:
    feed, created = await _engaged(services)
    [story] = await feed.timelines.top(Scope(), created - 10, created + 10, 1)
    reason = explain(story, "top", tau_s=feed.settings.tau_s, now=created + 60)
    assert reason.normalised == 6.0
    assert math.isclose(story.score, 6.0, rel_tol=1e-9)  # the window reads it back from the hot score
    assert reason.as_dict(CATALOG)["normalised_engagement"] == 6.0


async def test_reasons_in_chat_and_in_every_feed_format(services: Services) -> None:
    from core.contract import EventKind, Reply
    from core.router import Router
    from core.web.visibility import set_visibility
    from tests.support import event, feed_of

    feed = feed_of(services)
    created = time.time() - 1800
    post = item("Volunteers planted forty apple trees along the river path this weekend.", created_at=created)
    await feed.store.ingest([post])
    await feed.store.engage(post.id, reactions=12)
    await set_visibility(services.redis, post.community_key, "public")  # read anonymously below
    actions = await Router(services).route(
        event(EventKind.COMMAND, "feed hot all", command="feed", args="hot all")
    )
    [reply] = [a for a in actions if isinstance(a, Reply)]
    assert "\n   why: hot in Telegram · 12 reactions, 6.0× this chat's usual" in reply.text

    server = FeedHttp(feed, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{await server.start()}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/feed.json?scope=all&order=hot") as r:
                data = json.loads(await r.read())
            async with http.get(f"{base}/feed.atom?scope=all&order=hot") as r:
                atom = feedparser.parse(await r.read())
            async with http.get(f"{base}/feed.rss?scope=all&order=hot") as r:
                rss = feedparser.parse(await r.read())
    finally:
        await server.stop()
    chorus = data["items"][0]["_chorus"]
    reason = chorus["reason"]
    assert reason["text"] == "hot in Telegram · 12 reactions, 6.0× this chat's usual"
    assert reason["engagement"] == {"reactions": 12} and reason["normalised_engagement"] == 6.0
    assert abs(reason["engagement_term"] + reason["freshness_term"] - chorus["score"]) < 1e-6
    assert "Why it is here: hot in Telegram · 12 reactions" in atom.entries[0].content[0].value
    assert "Why it is here: hot in Telegram · 12 reactions" in rss.entries[0].description
