"""Actions as tweets: replies, chained threads, images with alt text, posts on the account's timeline.

Where a tweet goes:

* a channel that is a conversation id (digits): answers reply to the last tweet the bot posted for the
  same Event there (so a draft, its image and its choices read as one thread under the mention), else to
  the Action's ``reply_to``, else to the latest mention in that conversation;
* any other channel name (share targets use ``timeline``) is the account's own timeline: the
  first tweet stands alone (with ``X_REPLY_SETTINGS``), the rest of the Event's tweets chain under it.

Multi-tweet Actions remember which tweets went out, so a retry after a failure (429, 5xx) continues the
thread instead of posting it again. X refuses a text the account already posted: publishing a draft
deletes its preview tweet with that text first, and a repeated short answer gets a reference appended.

Text is plain on X; ``@handles`` are made inert (a word joiner after the ``@``) unless
``X_ALLOW_MENTIONS``, so the bot never pings people, and every tweet is cut to X's weighted length as a
last guard (the core already fitted it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re

import redis.asyncio as aioredis

from bots.x.api import Me, XApi
from bots.x.config import XSettings
from bots.x.mentions import CHAIN_TTL_S, chain_key, conversation_key
from bots.x.rails import PostBudget, x_key
from core.contract import (
    Action,
    DirectMessage,
    DraftRef,
    Edit,
    OfferChoices,
    Post,
    Receipt,
    Reply,
    SendImage,
)
from core.decode import as_str
from core.errors import DeliveryRejected, PlatformError, PlatformRateLimited
from core.platform import BlobReader
from core.text import defuse_mentions, split_text, truncate, x_weighted_length

log = logging.getLogger(__name__)

MAX_WEIGHT = 280
PROGRESS_TTL_S = 86400
PREVIEW_TTL_S = 7 * 86400  # as long as drafts live
_HANDLE = re.compile(r"(?<![\w@＠])([@＠])(?=[A-Za-z0-9_])")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _draft_of(action: Action) -> tuple[str, bool]:
    """(draft id, is a preview) of an Action delivering a draft: replies and image answers show a draft
    (preview), Posts and their images publish it; ("", False) for anything else."""
    parsed = DraftRef.parse(action.ref)
    if parsed is None:
        return "", False
    draft, image = parsed.draft_id, parsed.image
    if isinstance(action, Post):
        return draft, False
    if isinstance(action, SendImage):
        return draft, image  # a published draft's image carries the draft's own ref
    return draft, isinstance(action, Reply)


def _preview_key(me: Me, draft: str, text: str) -> str:
    return x_key(me, "preview", draft, hashlib.sha256(text.encode()).hexdigest()[:16])


def inert_handles(text: str) -> str:
    """``@name`` -> ``@\u2060name``: reads the same, but X links and notifies nobody."""
    return _HANDLE.sub(lambda m: m.group(1) + "\u2060", text)


def _as_is(text: str) -> str:
    return text


def image_mime(data: bytes) -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise DeliveryRejected("the image is not a PNG, JPEG, GIF or WebP file")


class Deliverer:
    def __init__(
        self, api: XApi, redis: aioredis.Redis, settings: XSettings, me: Me, budget: PostBudget
    ) -> None:
        self.api = api
        self.redis = redis
        self.settings = settings
        self.me = me
        self.budget = budget

    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        match action:
            case SendImage():
                ids = await self._image(action, blobs)
            case Post():
                ids = await self._tweets(action, list(action.parts) or [action.text])
            case Reply() | OfferChoices() | Edit():  # the last two only if the core did not degrade them
                ids = await self._tweets(action, [action.text])
            case DirectMessage():
                raise DeliveryRejected("the X adapter sends no direct messages")
            case _:
                raise DeliveryRejected(f"unsupported action {type(action).__name__}")
        return Receipt(message_ids=tuple(ids))

    # -- text ------------------------------------------------------------------------------------
    def fit(self, text: str) -> list[str]:
        """Tweet-sized pieces of ``text``: handles inert, within X's weighted length."""
        text = defuse_mentions(text.strip())
        if not text:
            return []
        inert = _as_is if self.settings.allow_mentions else inert_handles
        if x_weighted_length(inert(text)) <= MAX_WEIGHT:
            return [inert(text)]
        # handles are made inert piece by piece: a cut inside "me@name" must not start a tweet with "@name"
        pieces = split_text(text, MAX_WEIGHT, lambda piece: x_weighted_length(inert(piece)))
        return [inert(piece) for piece in pieces]

    async def _tweets(self, action: Action, texts: list[str]) -> list[str]:
        pieces = [piece for text in texts for piece in self.fit(text)]
        if not pieces:
            return []
        done = await self._progress(action.id)
        target = done[-1] if done else await self._reply_target(action)
        standalone = target is None
        for index in range(len(done), len(pieces)):
            tweet_id = await self._create(
                action,
                pieces[index],
                reply_to=target,
                reply_settings=self.settings.reply_settings if standalone and index == 0 else None,
            )
            done.append(tweet_id)
            target = tweet_id
            await self._record(action, done, multi=len(pieces) > 1)
        return done

    # -- images ----------------------------------------------------------------------------------
    async def _image(self, action: SendImage, blobs: BlobReader) -> list[str]:
        try:
            data = await blobs(action.blob)
        except KeyError:
            raise DeliveryRejected(f"image {action.blob} expired before it could be posted") from None
        media_id = await self.api.upload_image(data, image_mime(data), action.alt_text)
        caption = self.fit(action.caption)
        text = truncate(" ".join(caption), MAX_WEIGHT, x_weighted_length) if caption else ""
        target = await self._reply_target(action)
        tweet_id = await self._create(
            action,
            text,
            reply_to=target,
            media_ids=[media_id],
            reply_settings=self.settings.reply_settings if target is None else None,
        )
        await self._record(action, [tweet_id], multi=False)
        return [tweet_id]

    # -- where -----------------------------------------------------------------------------------
    def is_timeline(self, channel: str) -> bool:
        return not channel.isdigit()

    async def _reply_target(self, action: Action) -> str | None:
        """The tweet this Action's first tweet answers; None for a new post on the timeline."""
        if action.event_id:
            tail = await self.redis.get(chain_key(self.me, action.event_id, action.channel))
            if tail:
                return as_str(tail)
        if self.is_timeline(action.channel):
            return None
        explicit = getattr(action, "reply_to", None)
        if explicit:
            return str(explicit)
        latest = await self.redis.get(conversation_key(self.me, action.channel))
        if latest:
            return as_str(latest)
        return action.channel  # the conversation's first tweet

    # -- posting -----------------------------------------------------------------------------------
    async def _create(
        self,
        action: Action,
        text: str,
        *,
        reply_to: str | None,
        media_ids: list[str] | None = None,
        reply_settings: str | None = None,
    ) -> str:
        """Post one tweet within the daily budget, getting past X's "duplicate content" refusal.

        X refuses a text the account already posted. Two cases are expected: publishing a draft whose
        preview (the draft as shown in a reply) has the same text, where the preview is deleted first;
        and the same short answer to two people, which goes out once more with a reference appended.
        """
        slot, wait = await self.budget.take()
        if not slot:
            raise PlatformRateLimited("the daily post budget (X_POSTS_PER_DAY) is spent", retry_after=wait)
        draft, preview = _draft_of(action)
        try:
            try:
                tweet_id = await self.api.create_tweet(
                    text, reply_to=reply_to, media_ids=media_ids, reply_settings=reply_settings
                )
            except DeliveryRejected as exc:
                if "duplicate" not in str(exc).lower():
                    raise
                if draft and not preview and await self._drop_preview(draft, text):
                    retry = text
                elif not isinstance(action, Post):
                    suffix = f" (ref {action.id[:8]})"
                    retry = truncate(text, MAX_WEIGHT - x_weighted_length(suffix), x_weighted_length) + suffix
                else:
                    raise
                tweet_id = await self.api.create_tweet(
                    retry, reply_to=reply_to, media_ids=media_ids, reply_settings=reply_settings
                )
        except PlatformError:
            await self.budget.give_back(slot)
            raise
        if draft and preview:
            await self.redis.set(_preview_key(self.me, draft, text), tweet_id, ex=PREVIEW_TTL_S)
        return tweet_id

    async def _drop_preview(self, draft: str, text: str) -> bool:
        """Delete the preview tweet of ``draft`` with this text; True if there was one."""
        key = _preview_key(self.me, draft, text)
        preview = await self.redis.get(key)
        if not preview:
            return False
        with contextlib.suppress(DeliveryRejected):  # already deleted: fine
            await self.api.delete_tweet(as_str(preview))
        await self.redis.delete(key)
        log.info("x: deleted the preview of draft %s to publish it", draft)
        return True

    # -- progress ----------------------------------------------------------------------------------
    async def _progress(self, action_id: str) -> list[str]:
        raw = await self.redis.get(x_key(self.me, "progress", action_id))
        return list(json.loads(raw)) if raw else []

    async def _record(self, action: Action, done: list[str], *, multi: bool) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            if multi:
                pipe.set(x_key(self.me, "progress", action.id), json.dumps(done), ex=PROGRESS_TTL_S)
            if action.event_id:
                pipe.set(chain_key(self.me, action.event_id, action.channel), done[-1], ex=CHAIN_TTL_S)
            await pipe.execute()
