"""Numbered choices: where a platform has no buttons, ``degrade`` turns OfferChoices into a numbered list
answered with ``/choose N``. The sender remembers the offered payloads per conversation when it delivers the
list; ``/choose`` reads them back. The record's format lives here only."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from core import keys
from core.contract import Event, OfferChoices, conversation_key

TTL_S = 86400


class NumberedChoices:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def remember(self, action: OfferChoices) -> None:
        """The last list offered in the Action's conversation replaces the one before."""
        where = conversation_key(action.platform, action.community, action.channel, action.thread)
        payloads = [c.payload for c in action.choices]
        await self.redis.set(keys.choices(where), json.dumps(payloads), ex=TTL_S)

    async def pick(self, event: Event, number: int) -> str | None:
        """The payload of choice ``number`` (from 1) of the list last offered where ``event`` was sent."""
        raw = await self.redis.get(keys.choices(event.conversation_key))
        payloads: list[str] = json.loads(raw) if raw else []
        return payloads[number - 1] if 0 < number <= len(payloads) else None
