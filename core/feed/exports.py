"""Feed outputs: RSS 2.0 and Atom (feedgen), JSON Feed 1.1, and a JSON-lines export of every item.

Each entry is a story: its lead item's text as the title and content, every source with its link, its
platforms as categories. Opted-out authors' items are purged from the store, and the export also skips
any that a concurrent ingest might still hold.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import redis.asyncio as aioredis
from feedgen.feed import FeedGenerator
from tqdm import tqdm

from core.catalog import PlatformCatalog
from core.decode import as_str
from core.feed import keys as fk
from core.feed.items import Story
from core.feed.reasons import Reason
from core.feed.timelines import Timelines
from core.text import clean, truncate

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
EXPORT_CHUNK = 500


@dataclass(frozen=True, slots=True)
class FeedMeta:
    title: str
    description: str
    home_url: str  # the HTTP endpoint's root
    self_url: str  # this feed's own URL
    platforms: PlatformCatalog  # labels and links of the stories' platforms
    next_url: str | None = None  # the next page (JSON Feed ``next_url``; Atom/RSS ``rel=next`` link)
    reasons: Callable[[Story], Reason] | None = None  # "why it is here" (``reasons.explain``), when known


def _time(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def story_title(story: Story, platforms: PlatformCatalog) -> str:
    first = clean(story.lead.text).strip().split("\n", 1)[0]
    return truncate(" ".join(first.split()), 100) or f"Post on {platforms.label(story.lead.platform)}"


def story_link(story: Story, home_url: str, platforms: PlatformCatalog) -> str:
    return story.lead.link(platforms) or f"{home_url.rstrip('/')}/stories/{story.id}"


def story_text(story: Story, platforms: PlatformCatalog) -> str:
    lines = [clean(story.fullest.text).strip(), "", "Sources:"]
    for item in sorted(story.items, key=lambda i: (i.created_at, i.id)):
        who = f" ({item.author_name})" if item.author_name else ""
        lines.append(f"- {platforms.label(item.platform)}{who}: {item.link(platforms) or '#' + item.channel}")
    return "\n".join(lines)


def _authors(story: Story) -> list[str]:
    names: list[str] = []
    for item in story.items:
        if item.author_name and item.author_name not in names:
            names.append(item.author_name)
    return names


def _generator(stories: Sequence[Story], meta: FeedMeta) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc")
    fg.id(meta.self_url)
    fg.title(meta.title)
    fg.subtitle(meta.description)  # also RSS <description>
    fg.link(href=meta.home_url, rel="alternate")
    fg.link(href=meta.self_url, rel="self")
    if meta.next_url:
        fg.link(href=meta.next_url, rel="next")
    fg.generator("Chorus")
    fg.updated(_time(max((s.updated_at for s in stories), default=0.0)))
    for story in stories:
        fe = fg.add_entry(order="append")
        fe.id(f"urn:chorus:story:{story.id}")
        fe.guid(f"urn:chorus:story:{story.id}", permalink=False)
        fe.title(story_title(story, meta.platforms))
        fe.link(href=story_link(story, meta.home_url, meta.platforms))
        text = story_text(story, meta.platforms)
        if meta.reasons is not None:  # readers show the content: the reason ends it, like a footnote
            text += "\n\nWhy it is here: " + meta.reasons(story).text(meta.platforms)
        fe.description(html.escape(text).replace("\n", "<br/>"))  # RSS descriptions are read as HTML
        fe.content(text, type="text")
        fe.published(_time(story.created_at))
        fe.updated(_time(story.updated_at))
        for name in _authors(story):
            fe.author({"name": name})
            fe.dc.dc_creator(name)
        for platform in story.platforms:
            fe.category(term=platform, label=meta.platforms.label(platform))
    return fg


def render_rss(stories: Sequence[Story], meta: FeedMeta) -> bytes:
    return bytes(_generator(stories, meta).rss_str(pretty=False))


def render_atom(stories: Sequence[Story], meta: FeedMeta) -> bytes:
    return bytes(_generator(stories, meta).atom_str(pretty=False))


def render_json_feed(stories: Sequence[Story], meta: FeedMeta) -> dict[str, Any]:
    """JSON Feed 1.1; Chorus' own data (score, sources, engagement, remix) is under ``_chorus``."""
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": meta.title,
        "description": meta.description,
        "home_page_url": meta.home_url,
        "feed_url": meta.self_url,
        "items": [],
    }
    if meta.next_url:
        feed["next_url"] = meta.next_url
    for story in stories:
        entry: dict[str, Any] = {
            "id": f"urn:chorus:story:{story.id}",
            "url": story_link(story, meta.home_url, meta.platforms),
            "title": story_title(story, meta.platforms),
            "content_text": story_text(story, meta.platforms),
            "date_published": _time(story.created_at).isoformat(),
            "date_modified": _time(story.updated_at).isoformat(),
            "tags": story.platforms,
            "_chorus": story.as_dict(meta.platforms),
        }
        if meta.reasons is not None:
            entry["_chorus"]["reason"] = meta.reasons(story).as_dict(meta.platforms)
        authors = _authors(story)
        if authors:
            entry["authors"] = [{"name": n} for n in authors]
        images = [u for i in story.items for k, u in i.media if k == "image" and u.startswith("http")]
        if images:
            entry["image"] = images[0]
        feed["items"].append(entry)
    return feed


async def export_jsonl(
    redis: aioredis.Redis, out: TextIO, catalog: PlatformCatalog, *, progress: bool = True, platform: str = ""
) -> int:
    """Write every item (one JSON object per line) and return how many; a progress bar on stderr."""
    timelines = Timelines(redis)
    optout = {as_str(a) for a in await redis.smembers(fk.optout(0))}
    # every partition's platform timelines: a story is in its home partition's only
    sources: list[tuple[str, str]] = []
    for part in range(fk.PARTITIONS):
        for name in sorted(as_str(n) for n in await redis.smembers(fk.platforms(part))):
            if not platform or name == platform:
                sources.append((name, fk.timeline(part, "new", "p", name)))
    total = 0
    for _, key in sources:
        total += int(await redis.zcard(key))
    written = 0
    with tqdm(total=total, unit="story", disable=not progress, desc="export") as bar:
        for p, key in sources:
            start = 0
            while True:
                ids = [as_str(i) for i in await redis.zrange(key, start, start + EXPORT_CHUNK - 1)]
                if not ids:
                    break
                start += len(ids)
                for story in await timelines.stories(ids):
                    for item in story.items:
                        # an item belongs to one platform: export it from that platform's timeline only
                        if item.platform == p and item.author_key not in optout:
                            out.write(json.dumps(item.as_dict(catalog), ensure_ascii=False) + "\n")
                            written += 1
                bar.update(len(ids))
    return written
