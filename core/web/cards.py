"""What a story card shows, worked out once in Python (the template only prints it): a page renders 50."""

from __future__ import annotations

from dataclasses import dataclass

from core.catalog import PlatformCatalog
from core.feed.items import FeedItem, Story
from core.text import truncate
from core.web.render import image_url, safe_url, when

CARD_CHARS = 600
SOURCE_CHARS = 160
FULL_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class Source:
    platform: str
    label: str
    author: str
    text: str
    link: str


@dataclass(frozen=True, slots=True)
class Card:
    id: str
    platforms: tuple[tuple[str, str], ...]  # (name, label)
    author: str
    when: str
    image: str
    text: str
    remix: str
    engagement: str
    link: str
    link_label: str
    sources: tuple[Source, ...]  # the grouped items, shown when there are several (or on the story page)


def _source(item: FeedItem, chars: int, platforms: PlatformCatalog) -> Source:
    return Source(
        item.platform,
        platforms.label(item.platform),
        item.author_name or item.author_id,
        truncate(item.text, chars),
        safe_url(item.link(platforms)),
    )


def card(story: Story, platforms: PlatformCatalog, *, full: bool = False) -> Card:
    lead = story.lead
    e = story.engagement
    engagement = f"{e['reactions']} reactions · {e['replies']} replies · {e['reposts']} reposts"
    if e["views"]:
        engagement += f" · {e['views']} views"
    if len(story.items) > 1:
        engagement += f" · {len(story.items)} sources"
    image = next((u for kind, url in lead.media if kind == "image" and (u := image_url(url))), "")
    grouped = full or len(story.items) > 1
    return Card(
        id=story.id,
        platforms=tuple((p, platforms.label(p)) for p in story.platforms),
        author=lead.author_name or lead.author_id,
        when=when(lead.created_at),
        image=image,
        text=truncate(lead.text, FULL_CHARS if full else CARD_CHARS),
        remix=truncate(lead.remix, 200) if lead.remix else "",
        engagement=engagement,
        link=safe_url(lead.link(platforms)),
        link_label=f"Original on {platforms.label(lead.platform)}",
        sources=tuple(
            _source(i, FULL_CHARS if full else SOURCE_CHARS, platforms)
            for i in sorted(story.items, key=lambda i: (i.created_at, i.id))
        )
        if grouped
        else (),
    )
