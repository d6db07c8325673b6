"""Community settings that several features read; moderators change them with ``/prompt approval``.

Kept apart from the prompt feature so that the assistant can ask "does publishing to X need approval
here?" without depending on how prompts are stored. Writes (audited) go through
``core.prompts.store.PromptStore.set_setting``.
"""

from __future__ import annotations

from typing import Literal

import redis.asyncio as aioredis

from core import keys
from core.catalog import PlatformFacts
from core.decode import as_str

APPROVAL = "approval"

Approval = Literal["on", "off"]


def settings_key(community_key: str) -> str:
    """The community's settings hash (inside its hash tag)."""
    return keys.community(community_key, "settings")


async def approval_setting(redis: aioredis.Redis, community_key: str) -> Approval | None:
    """``on``/``off`` as the moderators chose, or None for the default."""
    raw = await redis.hget(settings_key(community_key), APPROVAL)
    value = as_str(raw) if raw is not None else None
    if value == "on":
        return "on"
    return "off" if value == "off" else None


async def approval_required(redis: aioredis.Redis, community_key: str, target: PlatformFacts) -> bool:
    """Must a moderator approve a draft of this community before it is published to ``target``?"""
    value = await approval_setting(redis, community_key)
    if value is None:
        return target.approval_by_default
    return value == "on"
