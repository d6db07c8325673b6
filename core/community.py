"""Community settings that several features read; moderators change them with ``/prompt approval``.

Kept apart from the prompt feature so that the assistant can ask "does publishing to X need approval
here?" without depending on how prompts are stored. Writes (audited) go through
``core.prompts.store.PromptStore.set_setting``.
"""

from __future__ import annotations

from typing import Literal

import redis.asyncio as aioredis

from core import keys

APPROVAL = "approval"
APPROVAL_BY_DEFAULT = frozenset({"x"})
"""Target platforms where publishing waits for a moderator unless the community turned approval off."""

Approval = Literal["on", "off"]


def settings_key(community_key: str) -> str:
    """The community's settings hash (inside its hash tag)."""
    return keys.community(community_key, "settings")


async def approval_setting(redis: aioredis.Redis, community_key: str) -> Approval | None:
    """``on``/``off`` as the moderators chose, or None for the default."""
    raw = await redis.hget(settings_key(community_key), APPROVAL)
    value = raw.decode() if isinstance(raw, bytes) else raw
    if value == "on":
        return "on"
    return "off" if value == "off" else None


async def approval_required(redis: aioredis.Redis, community_key: str, target_platform: str) -> bool:
    """Must a moderator approve a draft of this community before it is published to ``target_platform``?"""
    value = await approval_setting(redis, community_key)
    if value is None:
        return target_platform in APPROVAL_BY_DEFAULT
    return value == "on"
