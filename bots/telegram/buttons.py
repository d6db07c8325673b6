"""Inline-button callback data that survives restarts and cannot be forged or replayed elsewhere.

Telegram lets any client send arbitrary callback data for a bot message, and allows only 64 bytes of it,
while core payloads (``share:<draft>:<platform>:<channel>``) can be longer. So a button carries only a
random token (``c1.`` + 128 bits, URL-safe); the payload, who may press and which message carries the
button are stored in Redis under the chat's community hash tag with a TTL. A press resolves only in the
chat that got the button, on that message, before the TTL: anything else is forged or stale.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from core import keys
from core.contract import Choice

PREFIX = "c1."
PLATFORM = "telegram"


@dataclass(frozen=True, slots=True)
class Pressed:
    payload: str
    allowed_user: str | None


def _key(chat_id: int | str, token: str) -> str:
    return keys.community(f"{PLATFORM}:{chat_id}", "tg-button", token)


class Buttons:
    def __init__(self, redis: aioredis.Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def issue(
        self, chat_id: int | str, choices: Sequence[Choice], allowed_user: str | None
    ) -> list[str]:
        """Callback data for each choice, stored before the message is sent."""
        tokens = [secrets.token_urlsafe(16) for _ in choices]
        async with self.redis.pipeline(transaction=True) as pipe:
            for token, choice in zip(tokens, choices, strict=True):
                pipe.hset(_key(chat_id, token), "payload", choice.payload)
                pipe.hset(_key(chat_id, token), "user", allowed_user or "")
                pipe.expire(_key(chat_id, token), self.ttl_s)
            await pipe.execute()
        return [PREFIX + t for t in tokens]

    async def bind(self, chat_id: int | str, data: Sequence[str], message_id: int) -> None:
        """Record which message carries the buttons (a press on any other message is forged)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for item in data:
                key = _key(chat_id, item.removeprefix(PREFIX))
                pipe.hset(key, "message", str(message_id))
                pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def resolve(self, chat_id: int, message_id: int, data: str | None) -> Pressed | None:
        """The pressed choice, or None when the data is forged, from another chat or message, or expired."""
        if not data or not data.startswith(PREFIX) or len(data) > 64:
            return None
        token = data.removeprefix(PREFIX)
        if not token.replace("-", "").replace("_", "").isalnum():
            return None
        raw = await self.redis.hgetall(_key(chat_id, token))
        stored = {_s(k): _s(v) for k, v in raw.items()}
        if "payload" not in stored:
            return None
        if stored.get("message") and stored["message"] != str(message_id):
            return None
        return Pressed(stored["payload"], stored.get("user") or None)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
