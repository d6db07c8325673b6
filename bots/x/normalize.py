"""X's JSON (a tweet plus its response's ``includes``) as core Events and feed items; pure functions.

On X the community is the bot's own account (its numeric id), a conversation (``conversation_id``) is the
channel, and a tweet id is the message id. X returns text HTML-escaped (``&amp;``) and prefixes replies with
the handles of everyone in the conversation; both are undone so the core sees what the person typed.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bots.x.api import Me
from core.contract import Attachment, Author, Event, EventKind, ReplyContext
from core.feed.items import FeedItem
from core.text import clean

JSON = dict[str, Any]
_LEADING_HANDLES = re.compile(r"^(?:\s*[@＠][A-Za-z0-9_]{1,15}\b)+\s*")
_SPACES = re.compile(r"[ \t]{2,}")
_MEDIA_KIND: dict[str, Literal["image", "video"]] = {
    "photo": "image",
    "video": "video",
    "animated_gif": "video",
}


@dataclass(frozen=True, slots=True)
class Includes:
    """A response's ``includes``, indexed by id (users, tweets) and media key."""

    users: Mapping[str, JSON] = field(default_factory=dict)
    tweets: Mapping[str, JSON] = field(default_factory=dict)
    media: Mapping[str, JSON] = field(default_factory=dict)

    @classmethod
    def of(cls, payload: JSON) -> Includes:
        inc = payload.get("includes") or {}
        return cls(
            users={str(u["id"]): u for u in inc.get("users", [])},
            tweets={str(t["id"]): t for t in inc.get("tweets", [])},
            media={str(m["media_key"]): m for m in inc.get("media", [])},
        )


class Accounts:
    """A configured set of accounts, given as usernames (``@`` optional) or numeric ids."""

    def __init__(self, entries: Iterable[str]) -> None:
        cleaned = [e.strip().lstrip("@").lower() for e in entries if e.strip()]
        self.ids = frozenset(e for e in cleaned if e.isdigit())
        self.usernames = frozenset(e for e in cleaned if not e.isdigit())

    def __contains__(self, user: tuple[str, str]) -> bool:
        """``(id, username)`` of a user."""
        user_id, username = user
        return user_id in self.ids or username.lower() in self.usernames

    def __bool__(self) -> bool:
        return bool(self.ids or self.usernames)


def tweet_text(tweet: JSON) -> str:
    """The full text (long posts carry it in ``note_tweet``), unescaped and without invisible controls."""
    note = tweet.get("note_tweet")
    text = note.get("text", "") if isinstance(note, dict) else tweet.get("text", "")
    return clean(html.unescape(str(text)))


def request_text(text: str, me_username: str) -> str:
    """What was asked: the reply prefix of handles and the bot's own handle removed."""
    text = _LEADING_HANDLES.sub("", text)
    ours = re.compile(rf"(?<![\w@])[@＠]{re.escape(me_username)}\b", re.IGNORECASE)
    while (shorter := ours.sub("", text)) != text:  # "@bot@bot": removing one makes the next a handle
        text = shorter
    return _SPACES.sub(" ", text).strip()


def addressed(tweet: JSON, me: Me) -> bool:
    """Was the bot asked? X puts the handles of everyone in a conversation in front of a reply, so a reply
    to someone else only addresses the bot if its handle is in the typed text (``display_text_range``)."""
    if referenced(tweet, "replied_to") is None or str(tweet.get("in_reply_to_user_id")) == me.id:
        return True
    shown = tweet.get("display_text_range")
    if not (isinstance(shown, list) and shown):
        return True  # not told where the typed text starts: the other rails still apply
    typed = str(tweet.get("text", ""))[int(shown[0]) :]
    return re.search(rf"(?<![\w@])[@＠]{re.escape(me.username)}\b", typed, re.IGNORECASE) is not None


def created_ts(tweet: JSON) -> float:
    raw = tweet.get("created_at")
    if not raw:
        return time.time()
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def referenced(tweet: JSON, kind: str) -> str | None:
    """Id of the ``replied_to`` / ``quoted`` / ``retweeted`` tweet."""
    for ref in tweet.get("referenced_tweets") or ():
        if ref.get("type") == kind:
            return str(ref["id"])
    return None


def username_of(user_id: str, includes: Includes) -> str:
    return str(includes.users.get(user_id, {}).get("username", ""))


def attachments(tweet: JSON, includes: Includes) -> tuple[Attachment, ...]:
    out: list[Attachment] = []
    for key in (tweet.get("attachments") or {}).get("media_keys", []):
        media = includes.media.get(str(key))
        if media is None:
            continue
        out.append(
            Attachment(
                kind=_MEDIA_KIND.get(str(media.get("type")), "file"),
                url=str(media.get("url") or media.get("preview_image_url") or ""),
                name=str(media.get("alt_text") or "")[:200],
            )
        )
    return tuple(out)


def _context(tweet_id: str, includes: Includes, me: Me, *, fallback_author: str = "") -> ReplyContext:
    parent = includes.tweets.get(tweet_id)
    if parent is None:  # deleted or protected: X leaves it out of includes
        return ReplyContext(message_id=tweet_id, author_id=fallback_author, from_bot=fallback_author == me.id)
    author = str(parent.get("author_id", fallback_author))
    quoted = referenced(parent, "quoted")
    chain = (tweet_text(includes.tweets[quoted]),) if quoted and quoted in includes.tweets else ()
    return ReplyContext(
        message_id=tweet_id,
        author_id=author,
        text=tweet_text(parent),
        from_bot=author == me.id,
        chain=chain,
    )


def mention_event(tweet: JSON, includes: Includes, *, me: Me, owners: Accounts) -> Event:
    """A mention (or a reply to the bot) as a MENTION Event; the router finds commands in its text."""
    author_id = str(tweet.get("author_id", ""))
    username = username_of(author_id, includes)
    parent = referenced(tweet, "replied_to")
    quoted = referenced(tweet, "quoted")
    if parent is not None:
        context: ReplyContext | None = _context(
            parent, includes, me, fallback_author=str(tweet.get("in_reply_to_user_id", ""))
        )
    elif quoted is not None:  # "@bot reply to this" on a quote: the quoted post is the context
        context = _context(quoted, includes, me)
    else:
        context = None
    return Event(
        kind=EventKind.MENTION,
        platform="x",
        community=me.id,
        channel=str(tweet.get("conversation_id") or tweet["id"]),
        message_id=str(tweet["id"]),
        author=Author(
            id=author_id,
            name=username or author_id,
            is_moderator=(author_id, username) in owners,
        ),
        text=request_text(tweet_text(tweet), me.username),
        reply_to=context,
        attachments=attachments(tweet, includes),
        created_at=created_ts(tweet),
    )


def feed_item(tweet: JSON, includes: Includes, *, community: str, source: str) -> FeedItem:
    """A polled tweet as a feed item; its public metrics are the item's engagement (absolute counts)."""
    author_id = str(tweet.get("author_id", ""))
    username = username_of(author_id, includes)
    metrics = tweet.get("public_metrics") or {}
    tweet_id = str(tweet["id"])
    return FeedItem(
        platform="x",
        community=community,
        channel=feed_channel(username or author_id),
        message_id=tweet_id,
        author_id=author_id,
        author_name=username,
        text=tweet_text(tweet),
        created_at=created_ts(tweet),
        url=f"https://x.com/{username}/status/{tweet_id}" if username else "",
        media=tuple((a.kind, a.url) for a in attachments(tweet, includes) if a.url),
        reactions=int(metrics.get("like_count", 0)),
        replies=int(metrics.get("reply_count", 0)),
        reposts=int(metrics.get("retweet_count", 0)) + int(metrics.get("quote_count", 0)),
        views=int(metrics.get("impression_count", 0)),
        source=source,
    )


def feed_channel(username: str) -> str:
    """Polled posts are filed under their author, so one post found by two sources is one feed item."""
    return f"@{username.lower()}"
