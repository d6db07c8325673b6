"""Conversation context per thread, in Redis with a TTL, so follow-ups ("now one about the party") work.

The key is built from the Event's own community and conversation (``keys.community(event.community_key,
"ctx", channel, thread)``): two communities can never read each other's turns, and neither can two threads.
Turns are appended and trimmed in one transaction; each turn is capped so a long message cannot crowd out
the rest.
"""

from __future__ import annotations

import json
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel

from core import keys
from core.contract import Event

Role = Literal["user", "assistant"]
TURN_MAX_CHARS = 1500


class Turn(BaseModel):
    role: Role
    text: str


class ConversationContext:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = 6 * 3600, max_turns: int = 8) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.max_turns = max_turns

    @staticmethod
    def key(event: Event) -> str:
        return keys.community(event.community_key, "ctx", event.channel, event.thread or "-")

    async def add(self, event: Event, role: Role, text: str) -> None:
        if not text.strip():
            return
        turn = Turn(role=role, text=text[:TURN_MAX_CHARS])
        key = self.key(event)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, turn.model_dump_json())
            pipe.ltrim(key, -self.max_turns, -1)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def history(self, event: Event, limit: int | None = None) -> list[Turn]:
        """Oldest first; at most ``limit`` (default ``max_turns``) recent turns."""
        n = min(limit or self.max_turns, self.max_turns)
        raw = await self.redis.lrange(self.key(event), -n, -1)
        out = []
        for item in raw:
            try:
                out.append(Turn.model_validate(json.loads(item)))
            except (ValueError, TypeError):
                continue  # a corrupt entry costs one turn, not the conversation
        return out

    async def clear(self, event: Event) -> None:
        await self.redis.delete(self.key(event))
