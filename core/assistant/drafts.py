"""Drafts: what the assistant wrote, stored with an id so people can revise, approve and share it later.

A draft lives under its community's hash tag (``keys.community(community_key, "draft", id)``), so a draft id
from another community simply does not resolve. Drafts expire (``ttl_s``); publishing marks them with
``SET NX`` per target so two presses or two moderators never publish twice.
"""

from __future__ import annotations

import time
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from core import keys
from core.contract import DraftRef, new_id

DraftKind = Literal["post", "thread", "reply", "image"]
DRAFT_TTL_S = 7 * 86400


class ShareTarget(BaseModel):
    """Where a draft may be published: a platform, a community there, and a channel."""

    platform: str
    community: str
    channel: str

    @property
    def label(self) -> str:
        return f"{self.platform}:{self.community}/{self.channel}"

    @classmethod
    def parse(cls, text: str) -> ShareTarget:
        """``platform:community/channel`` (the format of ``CHORUS_SHARE_TARGETS`` and /share)."""
        platform, _, rest = text.partition(":")
        community, _, channel = rest.partition("/")
        if not (platform and community and channel):
            raise ValueError(f"not a share target (platform:community/channel): {text!r}")
        return cls(platform=platform, community=community, channel=channel)


class Draft(BaseModel):
    """A structured draft: text parts (one for a post, several for a thread), image and its alt text."""

    id: str = Field(default_factory=new_id)
    community_key: str  # ``<platform>:<community>`` it belongs to
    platform: str  # the platform it was written for (limits were applied for this one)
    channel: str
    thread: str | None = None
    author_id: str
    kind: DraftKind = "post"
    request: str = ""
    parts: list[str] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    image_prompt: str | None = None
    image_blob: str | None = None
    image_kind: str | None = None  # "openai" or "card" (from the image service)
    image_style: str | None = None  # the card style, so a reroll picks the next one
    image_label: str = ""  # caption label, e.g. "AI-generated image (gpt-image-1)" / "Text card (not AI art)"
    alt_text: str = ""
    written_by: str = ""  # the model that wrote the text (told to the person)
    skipped_models: list[str] = Field(default_factory=list)  # models of the chain that failed first
    parent: str | None = None  # the draft this one revises
    version: int = 1
    created_at: float = Field(default_factory=time.time)

    @property
    def text(self) -> str:
        return "\n\n".join(self.parts)

    @property
    def ref(self) -> str:
        """The ``ref`` of Actions that deliver this draft's text (bot_message lookups resolve it)."""
        return str(DraftRef(self.id))

    @property
    def image_ref(self) -> str:
        return str(DraftRef(self.id, image=True))


_TAKE = "local m = redis.call('SMEMBERS', KEYS[1]); redis.call('DEL', KEYS[1]); return m"


class DraftStore:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = DRAFT_TTL_S) -> None:
        # a script, not MULTI: redis-py 8.1's cluster transactions fail on SMEMBERS's reply callback
        self._take = redis.register_script(_TAKE)
        self.redis = redis
        self.ttl_s = ttl_s

    async def save(self, draft: Draft) -> Draft:
        key = keys.community(draft.community_key, "draft", draft.id)
        await self.redis.set(key, draft.model_dump_json(), ex=self.ttl_s)
        return draft

    async def get(self, community_key: str, draft_id: str) -> Draft | None:
        """The draft, if it exists in *this* community (ids from elsewhere do not resolve)."""
        if not _valid_id(draft_id):
            return None
        raw = await self.redis.get(keys.community(community_key, "draft", draft_id))
        return Draft.model_validate_json(raw) if raw else None

    async def add_pending(self, draft: Draft, target: ShareTarget) -> None:
        """Remember a share that waits for a moderator's approval."""
        key = keys.community(draft.community_key, "pending", draft.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, target.model_dump_json())
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def take_pending(self, community_key: str, draft_id: str) -> list[ShareTarget]:
        """Remove and return the shares waiting for approval, atomically (one approver gets them)."""
        key = keys.community(community_key, "pending", draft_id)
        members = await self._take(keys=[key])
        return sorted((ShareTarget.model_validate_json(m) for m in members), key=lambda t: t.label)

    async def pending(self, community_key: str, draft_id: str) -> list[ShareTarget]:
        members = await self.redis.smembers(keys.community(community_key, "pending", draft_id))
        return sorted((ShareTarget.model_validate_json(m) for m in members), key=lambda t: t.label)

    async def mark_published(self, draft: Draft, target: ShareTarget) -> bool:
        """True the first time this draft is published to ``target``; False if it already was."""
        key = keys.community(draft.community_key, "published", draft.id, target.label)
        return bool(await self.redis.set(key, str(time.time()), nx=True, ex=self.ttl_s))

    async def unmark_published(self, draft: Draft, target: ShareTarget) -> None:
        """Undo ``mark_published`` when enqueueing failed, so the share can be tried again."""
        await self.redis.delete(keys.community(draft.community_key, "published", draft.id, target.label))


def shown_id(draft_id: str) -> str:
    """A draft id for a message: echoed only if it looks like one (user text could hold a mass ping)."""
    draft_id = draft_id.strip()
    return f"“{draft_id}”" if _valid_id(draft_id) else "with that id"


def _valid_id(draft_id: str) -> bool:
    return 0 < len(draft_id) <= 32 and draft_id.isalnum()
