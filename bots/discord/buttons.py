"""Button custom ids that survive a restart: the pressed payload and who may press, in the id itself.

A custom id is ``chorus|<allowed user id or empty>|<payload>``, so a press is understood without any
state kept in the process (Discord keeps the id on the message for as long as the message exists). A
payload too long for Discord's 100 characters is kept in Redis and the id carries its hash instead
(``chorus#<hash>``). Who may press is checked twice: here, for a quick private refusal, and by the core.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis.asyncio as aioredis

PREFIX = "chorus|"
HASHED = "chorus#"
MAX_CUSTOM_ID = 100
STORED_TTL_S = 30 * 86400
# Green for publishing, blue for sharing, grey for the rest (revise, new image, vary...).
_STYLES = {"post": "success", "approve": "success", "share": "primary"}


@dataclass(frozen=True, slots=True)
class Pressed:
    payload: str
    allowed_user: str | None  # None: anyone in the chat may press


def stored_key(digest: str) -> str:
    """Long payloads, under the Discord adapter's own hash tag."""
    return f"chorus:{{discord}}:button:{digest}"


def encode(payload: str, allowed_user: str | None) -> str | None:
    """The custom id for a button, or None when it does not fit (use ``store``)."""
    custom_id = f"{PREFIX}{allowed_user or ''}|{payload}"
    return custom_id if len(custom_id) <= MAX_CUSTOM_ID else None


def decode(custom_id: str) -> Pressed | None:
    """The press carried by a custom id; None for ids that are not ours or need a lookup (``HASHED``)."""
    if not custom_id.startswith(PREFIX):
        return None
    allowed, sep, payload = custom_id[len(PREFIX) :].partition("|")
    if not sep or not payload:
        return None
    return Pressed(payload=payload, allowed_user=allowed or None)


async def store(redis: aioredis.Redis, payload: str, allowed_user: str | None) -> str:
    """Keep a long payload in Redis; returns the short custom id that finds it again."""
    raw = json.dumps({"p": payload, "u": allowed_user})
    digest = hashlib.sha256(raw.encode()).hexdigest()[:32]
    await redis.set(stored_key(digest), raw, ex=STORED_TTL_S)
    return HASHED + digest


async def custom_id_for(redis: aioredis.Redis, payload: str, allowed_user: str | None) -> str:
    return encode(payload, allowed_user) or await store(redis, payload, allowed_user)


async def resolve(redis: aioredis.Redis, custom_id: str) -> Pressed | None:
    """Decode a custom id, looking long payloads up in Redis (None if unknown or expired)."""
    if not custom_id.startswith(HASHED):
        return decode(custom_id)
    raw = await redis.get(stored_key(custom_id[len(HASHED) :]))
    if raw is None:
        return None
    data = json.loads(raw)
    return Pressed(payload=str(data["p"]), allowed_user=data.get("u"))


def style_name(payload: str) -> str:
    """``success``, ``primary`` or ``secondary`` by the payload's verb."""
    return _STYLES.get(payload.partition(":")[0], "secondary")
