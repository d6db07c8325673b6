"""Who may read which community's feed: private by default, public when its moderators say so.

The set ``chorus:{feed}:public`` is what every reader path consults (feeds, story pages, HTML pages); the
change itself is audited in the community's audit log by ``/feed visibility``. A reader's visible
communities are the public ones plus the one their session or personal feed token belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import redis.asyncio as aioredis

from core.feed import keys as fk

Visibility = Literal["public", "private"]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def public_communities(redis: aioredis.Redis) -> frozenset[str]:
    return frozenset(_s(v) for v in await redis.smembers(fk.PUBLIC))


async def is_public(redis: aioredis.Redis, community_key: str) -> bool:
    return bool(await redis.sismember(fk.PUBLIC, community_key))


async def set_visibility(redis: aioredis.Redis, community_key: str, visibility: Visibility) -> bool:
    """Make a community's feed public or private; True if that changed anything."""
    if visibility == "public":
        return bool(await redis.sadd(fk.PUBLIC, community_key))
    return bool(await redis.srem(fk.PUBLIC, community_key))


async def visible_to(redis: aioredis.Redis, own: Iterable[str] = ()) -> frozenset[str]:
    """The communities a reader may see: the public ones and their own (a session's, a token's)."""
    return (await public_communities(redis)) | frozenset(own)
