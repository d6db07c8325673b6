"""Interactions the adapter acknowledged, so the answers produced later arrive as their follow-ups.

Discord wants an answer to a slash command or button within 3 seconds; the core's answer comes later,
through the bus. So the adapter acknowledges at once (a "thinking…" placeholder for commands, a silent
acknowledgement for buttons), publishes the Event, and records the interaction here under the Event's id.
When an Action answering that Event is delivered within the 15 minutes Discord allows, it is sent as a
follow-up (the first one replaces the placeholder); later it goes to the channel as a normal message, or
as a DM if the answer was private. Records live in Redis (``chorus:{discord}:ix:<event id>``, one day) so
a restarted process still answers in place.
"""

from __future__ import annotations

import time
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel

FOLLOWUP_S = 14 * 60  # Discord accepts follow-ups for 15 minutes; keep a margin
TTL_S = 86400  # kept longer: a late private answer must still be known as private (it becomes a DM)


class Deferred(BaseModel):
    event_id: str
    interaction_id: int
    application_id: int
    token: str
    channel: str  # the channel (or thread) id the interaction came from
    user_id: str  # who ran the command or pressed
    mode: Literal["thinking", "update"]  # a "thinking…" placeholder to replace, or nothing visible
    ephemeral: bool = False
    command: str | None = None  # the slash command answered (a /digest answer is shown as a digest)
    created: float = 0.0

    @property
    def fresh(self) -> bool:
        return time.time() - self.created < FOLLOWUP_S


def key(event_id: str) -> str:
    return f"chorus:{{discord}}:ix:{event_id}"


class InteractionStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def save(self, deferred: Deferred) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key(deferred.event_id), mapping={"d": deferred.model_dump_json(), "n": 0})
            pipe.expire(key(deferred.event_id), TTL_S)
            await pipe.execute()

    async def get(self, event_id: str) -> tuple[Deferred, int] | None:
        """The record and how many follow-ups were sent for it so far."""
        raw = await self.redis.hmget(key(event_id), ["d", "n"])
        if not raw or raw[0] is None:
            return None
        return Deferred.model_validate_json(raw[0]), int(raw[1] or 0)

    async def answered(self, event_id: str) -> None:
        await self.redis.hincrby(key(event_id), "n", 1)
