"""A story card, rendered straight to HTML in Python: a feed page renders 50, and a Jinja2 macro call per
card with its attribute lookups and escape calls cost as much as the page's timeline read.

Everything a person wrote (text, names, links) goes through ``html.escape`` (quotes included: the same five
characters Jinja2's autoescape replaces); only http(s) links become links and only https URLs become images
(``core.web.render``). The markup is the one the stylesheet and the tests know (``article.card``,
``.grouped``, ``.text`` with ``dir="auto"`` and ``<bdi>`` for names).
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from core.catalog import PlatformCatalog
from core.feed.items import FeedItem, Story
from core.text import truncate
from core.web.render import image_url, safe_url, when

CARD_CHARS = 600
SOURCE_CHARS = 160
FULL_CHARS = 20_000
LINK = 'rel="noopener noreferrer nofollow"'


def _badge(name: str, platforms: PlatformCatalog) -> str:
    return f'<span class="badge badge-{escape(name)}">{escape(platforms.label(name))}</span>'


def _source(item: FeedItem, chars: int, platforms: PlatformCatalog) -> str:
    link = safe_url(item.link(platforms))
    original = f' <a href="{escape(link)}" {LINK}>original</a>' if link else ""
    return (
        f"<li>{_badge(item.platform, platforms)} <bdi>{escape(item.author_name or item.author_id)}</bdi>: "
        f'<span class="text" dir="auto">{escape(truncate(item.text, chars))}</span>{original}</li>'
    )


def card(story: Story, platforms: PlatformCatalog, *, full: bool = False) -> Markup:
    """The card of a story: its lead item, engagement, links, and its grouped sources when it has several
    (all of them, at full length, on the story page: ``full``)."""
    lead = story.lead
    e = story.engagement
    engagement = f"{e['reactions']} reactions · {e['replies']} replies · {e['reposts']} reposts"
    if e["views"]:
        engagement += f" · {e['views']} views"
    if len(story.items) > 1:
        engagement += f" · {len(story.items)} sources"
    image = next((u for kind, url in lead.media if kind == "image" and (u := image_url(url))), "")
    link = safe_url(lead.link(platforms))
    chars = FULL_CHARS if full else CARD_CHARS
    out = [
        f'<article class="card" id="s-{escape(story.id)}">\n  <header>\n    <span class="platforms">',
        *(_badge(p, platforms) for p in story.platforms),
        f'</span>\n    <span class="author"><bdi>{escape(lead.author_name or lead.author_id)}</bdi></span>\n'
        f"    <time>{when(lead.created_at)}</time>\n  </header>\n",
    ]
    if image:
        out.append(
            f'  <img class="media" src="{escape(image)}" alt="Image from the original post" loading="lazy">\n'
        )
    out.append(f'  <p class="text" dir="auto">{escape(truncate(lead.text, chars))}</p>\n')
    if lead.remix:
        remix = escape(truncate(lead.remix, 200))
        out.append(f'  <p class="remix" dir="auto">Made from the request: <bdi>{remix}</bdi></p>\n')
    out.append(f'  <footer>\n    <span class="eng">{escape(engagement)}</span>\n')
    if link:
        label = escape(f"Original on {platforms.label(lead.platform)}")
        out.append(f'    <a href="{escape(link)}" {LINK}>{label}</a>\n')
    if not full:
        out.append(f'    <a href="/story/{escape(story.id)}">Story</a>\n')
    out.append("  </footer>\n")
    if full or len(story.items) > 1:
        sources = sorted(story.items, key=lambda i: (i.created_at, i.id))
        chars = FULL_CHARS if full else SOURCE_CHARS
        out.append('  <ul class="grouped">\n')
        out.extend(f"    {_source(i, chars, platforms)}\n" for i in sources)
        out.append("  </ul>\n")
    out.append("</article>\n")
    return Markup("".join(out))  # noqa: S704 - every value in it went through html.escape above


def cards(stories: list[Story], platforms: PlatformCatalog) -> Markup:
    return Markup("").join(card(s, platforms) for s in stories)
