from __future__ import annotations

import io
import json
import time
from datetime import datetime
from urllib.parse import urlparse

import feedparser
import pytest
import redis.asyncio as aioredis

from core.feed.exports import FeedMeta, export_jsonl, render_atom, render_json_feed, render_rss
from core.feed.ingest import FeedStore
from core.feed.timelines import Scope, Timelines
from tests.core.feed.helpers import item
from tests.support import CATALOG

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

LAUNCH = "Chorus v2.0 is live! Faster digests, smarter summaries & a brand-new <console>. Try it today."
LAUNCH_TG = (
    "Chorus v2.0 is live: faster digests, smarter summaries & a brand-new <console>! Release notes inside."
)
META = FeedMeta(
    title="Chorus — hot in all communities",
    description="The hot stories",
    home_url="http://127.0.0.1:8088/",
    self_url="http://127.0.0.1:8088/feed.rss?scope=all",
    next_url="http://127.0.0.1:8088/feed.rss?scope=all&cursor=abc",
    platforms=CATALOG,
)


async def _stories(redis: aioredis.Redis) -> list:  # type: ignore[type-arg]
    store = FeedStore(redis)
    now = time.time()
    x = item(
        LAUNCH,
        platform="x",
        community="acct",
        message_id="1790000000000000001",
        author_name="Ada",
        created_at=now - 600,
    )
    tg = item(
        LAUNCH_TG,
        platform="telegram",
        community="-1001234",
        message_id="55",
        author_name="Bob",
        created_at=now - 300,
    )
    other = item(
        "Office hours move to Wednesdays at 16:00 CET starting next week.",
        platform="console",
        community="local",
        author_name="Cy",
        created_at=now - 60,
        media=(("image", "https://img.example/a.png"),),
    )
    await store.ingest([x, other])
    await store.ingest([tg])
    return (await Timelines(redis).page(Scope(), "new", 10)).stories


async def test_rss_round_trip(redis: aioredis.Redis) -> None:
    stories = await _stories(redis)
    parsed = feedparser.parse(render_rss(stories, META))
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "rss20" and parsed.feed.title == META.title
    assert len(parsed.entries) == 2
    launch = next(e for e in parsed.entries if "v2.0" in e.title)
    assert launch.link == "https://x.com/i/web/status/1790000000000000001"
    assert launch.id == f"urn:chorus:story:{stories[1].id}"
    assert "https://t.me/c/1234/55" in launch.description
    assert "&lt;console&gt;" in launch.description  # HTML-escaped: readers show the text, not a tag
    assert {t.term for t in launch.tags} == {"Telegram", "X"}
    assert launch.author in ("Ada", "Bob") and launch.published_parsed is not None
    console = next(e for e in parsed.entries if "Office hours" in e.title)
    assert console.link == f"http://127.0.0.1:8088/stories/{stories[0].id}"  # no platform link: ours


async def test_atom_round_trip(redis: aioredis.Redis) -> None:
    stories = await _stories(redis)
    parsed = feedparser.parse(render_atom(stories, META))
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.version == "atom10" and parsed.feed.title == META.title
    assert {link.rel for link in parsed.feed.links} >= {"self", "alternate", "next"}
    entry = next(e for e in parsed.entries if "v2.0" in e.title)
    assert {a.name for a in entry.authors} == {"Ada", "Bob"}
    assert entry.updated_parsed >= entry.published_parsed
    assert entry.content[0].value.startswith("Chorus v2.0 is live")


def _check_json_feed_1_1(feed: dict) -> None:  # type: ignore[type-arg]
    """The JSON Feed 1.1 rules (https://jsonfeed.org/version/1.1); feedparser 6.0 does not read JSON Feed."""
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(feed["title"], str) and feed["title"]
    for key in ("home_page_url", "feed_url", "next_url"):
        if key in feed:
            assert urlparse(feed[key]).scheme in ("http", "https")
    assert isinstance(feed["items"], list)
    for entry in feed["items"]:
        assert isinstance(entry["id"], str) and entry["id"]
        assert isinstance(entry.get("content_text", entry.get("content_html")), str)
        for key in ("date_published", "date_modified"):
            assert datetime.fromisoformat(entry[key]).tzinfo is not None  # RFC 3339 with an offset
        for author in entry.get("authors", []):
            assert set(author) <= {"name", "url", "avatar"} and author
        assert all(isinstance(t, str) for t in entry.get("tags", []))
        for key in ("url", "image"):
            if key in entry:
                assert urlparse(entry[key]).scheme in ("http", "https")
        assert all(k in KNOWN_ITEM_KEYS or k.startswith("_") for k in entry)


KNOWN_ITEM_KEYS = {
    "id",
    "url",
    "external_url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "image",
    "banner_image",
    "date_published",
    "date_modified",
    "authors",
    "tags",
    "language",
    "attachments",
}


async def test_json_feed_round_trip(redis: aioredis.Redis) -> None:
    stories = await _stories(redis)
    raw = json.loads(json.dumps(render_json_feed(stories, META)))
    _check_json_feed_1_1(raw)
    assert raw["title"] == META.title and raw["next_url"] == META.next_url
    launch = next(i for i in raw["items"] if "v2.0" in i["title"])
    assert launch["url"] == "https://x.com/i/web/status/1790000000000000001"
    assert launch["date_published"].endswith("+00:00") and set(launch["tags"]) == {"x", "telegram"}
    assert [s["platform"] for s in launch["_chorus"]["items"]] == ["x", "telegram"]
    assert "- Telegram (Bob): https://t.me/c/1234/55" in launch["content_text"]
    office = next(i for i in raw["items"] if "Office" in i["title"])
    assert office["image"] == "https://img.example/a.png"


async def test_jsonl_export_honours_optouts(redis: aioredis.Redis) -> None:
    await _stories(redis)
    store = FeedStore(redis)
    out = io.StringIO()
    assert await export_jsonl(redis, out, CATALOG, progress=False) == 3
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(r["platform"] for r in rows) == ["console", "telegram", "x"]
    assert len({r["story"] for r in rows}) == 2
    await store.optout("telegram", "u1")
    out = io.StringIO()
    assert await export_jsonl(redis, out, CATALOG, progress=False) == 2
    assert "telegram" not in out.getvalue()
    out = io.StringIO()
    assert await export_jsonl(redis, out, CATALOG, progress=False, platform="x") == 1
