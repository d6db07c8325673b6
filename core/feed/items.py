"""The normalised feed item and story, and how an item is laid out in Redis.

An item is one string value: a few ``\\x1f``-separated prefix fields the Lua scripts read and update
(time, community, channel, engagement, story) then ``\\x1e`` and a compact JSON of what only Python reads
(text, author, media, remix). One key per item keeps memory small; the prefix keeps engagement updates
atomic without JSON parsing in Lua.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from core.catalog import PlatformCatalog
from core.feed import keys as fk

SEP = "\x1f"
HEAD_END = "\x1e"
_CONTROL = re.compile(r"[\x00-\x1f]")

# Prefix field positions (0-based in Python; Lua adds one).
CREATED, COMMUNITY_KEY, CHANNEL, SOURCE, REACTIONS, REPLIES, REPOSTS, VIEWS, NORM, STORY = range(10)

Media = tuple[str, str]
"""(kind, url): ``image``, ``video``, ``file`` or ``audio`` and where the platform keeps it."""


def item_id(platform: str, community: str, channel: str, message_id: str) -> str:
    """Deterministic: the same platform message is the same item, so ingest is idempotent and edits,
    deletions and reactions find their item without a lookup table. The first two characters are the
    community's code, which says the id's feed partition (core/feed/keys.py)."""
    raw = SEP.join((platform, community, channel, message_id)).encode()
    digest = base64.urlsafe_b64encode(hashlib.blake2b(raw, digest_size=8).digest())[:11].decode()
    return fk.community_code(f"{platform}:{community}") + digest


def safe(value: str) -> str:
    """Without control characters (they separate the stored fields)."""
    return _CONTROL.sub("", value)


@dataclass(slots=True)
class FeedItem:
    """One post or message in the feed, whatever platform it came from."""

    platform: str
    community: str
    channel: str
    message_id: str
    author_id: str
    author_name: str = ""
    text: str = ""
    created_at: float = 0.0
    url: str = ""  # set when the source knows it; else derived from the platform's facts (``link``)
    media: tuple[Media, ...] = ()
    reactions: int = 0
    replies: int = 0
    reposts: int = 0
    views: int = 0
    remix: str = ""  # for bot posts: the request that made it
    is_bot: bool = False
    source: str = ""  # baseline bucket; default ``<platform>:<community>:<channel>``
    # filled when read back
    norm: float = 0.0  # engagement normalised against the source's baseline
    story: str = ""
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            self.id = item_id(self.platform, self.community, self.channel, self.message_id)

    @property
    def community_key(self) -> str:
        return f"{self.platform}:{self.community}"

    @property
    def author_key(self) -> str:
        return f"{self.platform}:{self.author_id}"

    def link(self, platforms: PlatformCatalog) -> str:
        return self.url or platforms.permalink(self.platform, self.community, self.channel, self.message_id)

    def body(self) -> str:
        """The JSON half of the stored value (only non-empty fields, short names)."""
        data: dict[str, Any] = {"m": self.message_id, "a": self.author_id, "x": self.text}
        if self.author_name:
            data["an"] = self.author_name
        if self.url:
            data["u"] = self.url
        if self.media:
            data["md"] = [list(m) for m in self.media]
        if self.remix:
            data["rx"] = self.remix
        if self.is_bot:
            data["b"] = 1
        return orjson.dumps(data).decode()

    def as_dict(self, platforms: PlatformCatalog) -> dict[str, Any]:
        """The public shape (exports, JSON Feed extension, API)."""
        return {
            "id": self.id,
            "platform": self.platform,
            "community": self.community,
            "channel": self.channel,
            "message_id": self.message_id,
            "author": {"id": self.author_id, "name": self.author_name, "bot": self.is_bot},
            "text": self.text,
            "url": self.link(platforms),
            "media": [{"kind": k, "url": u} for k, u in self.media],
            "created_at": self.created_at,
            "engagement": {
                "reactions": self.reactions,
                "replies": self.replies,
                "reposts": self.reposts,
                "views": self.views,
                "normalised": round(self.norm, 4),
            },
            "story": self.story or self.id,
            "remix": self.remix or None,
        }


# decode() builds FeedItems positionally (a page decodes fifty; keywords cost a fifth of the time): it
# relies on this field order, which import checks.
_ORDER = [
    "platform", "community", "channel", "message_id", "author_id", "author_name", "text", "created_at", "url",
    "media", "reactions", "replies", "reposts", "views", "remix", "is_bot", "source", "norm", "story", "id",
]  # fmt: skip
if [f.name for f in fields(FeedItem)] != _ORDER:
    raise RuntimeError("FeedItem's fields changed: update decode(), which builds it positionally")


def decode(item_id_: str, raw: bytes | str) -> FeedItem:
    """Parse a stored value back into a FeedItem."""
    value = raw.encode() if isinstance(raw, str) else raw
    cut = value.index(b"\x1e")
    created, ck, channel, source, reactions, replies, reposts, views, norm, story = (
        value[:cut].decode().split(SEP)
    )
    platform, _, community = ck.partition(":")
    data = orjson.loads(value[cut + 1 :])
    get = data.get
    media = get("md")
    return FeedItem(
        platform,
        community,
        channel,
        data["m"],
        data["a"],
        get("an", ""),
        get("x", ""),
        float(created),
        get("u", ""),
        tuple((str(k), str(u)) for k, u in media) if media else (),
        int(reactions),
        int(replies),
        int(reposts),
        int(views),
        get("rx", ""),
        bool(get("b")),
        source,
        float(norm),
        story or item_id_,
        item_id_,
    )


def prefix_fields(item: FeedItem) -> tuple[str, str, str, str]:
    """The fields the ingest script stores in front of the JSON (engagement and story are its own)."""
    default_source = f"{item.community_key}:{item.channel}"
    source = "" if not item.source or item.source == default_source else safe(item.source)
    return f"{item.created_at:.3f}", safe(item.community_key), safe(item.channel), source


@dataclass(slots=True)
class Story:
    """Near-duplicate items (the same announcement on several platforms) shown and ranked as one."""

    id: str
    score: float
    items: list[FeedItem]

    @property
    def lead(self) -> FeedItem:
        """The earliest item: where the story first appeared."""
        return min(self.items, key=lambda i: (i.created_at, i.id))

    @property
    def fullest(self) -> FeedItem:
        """The longest text: what a summary should read."""
        return max(self.items, key=lambda i: (len(i.text), -i.created_at))

    @property
    def created_at(self) -> float:
        return min(i.created_at for i in self.items)

    @property
    def updated_at(self) -> float:
        return max(i.created_at for i in self.items)

    @property
    def platforms(self) -> list[str]:
        return sorted({i.platform for i in self.items})

    @property
    def engagement(self) -> dict[str, int]:
        return {
            "reactions": sum(i.reactions for i in self.items),
            "replies": sum(i.replies for i in self.items),
            "reposts": sum(i.reposts for i in self.items),
            "views": sum(i.views for i in self.items),
        }

    @property
    def norm(self) -> float:
        return sum(i.norm for i in self.items)

    def as_dict(self, platforms: PlatformCatalog) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "platforms": self.platforms,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "engagement": self.engagement,
            "items": [i.as_dict(platforms) for i in sorted(self.items, key=lambda i: (i.created_at, i.id))],
        }
