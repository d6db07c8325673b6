from __future__ import annotations

import time

import redis.asyncio as aioredis

from bots.discord.interactions import FOLLOWUP_S, Deferred, InteractionStore, key


def _deferred(created: float, **extra: object) -> Deferred:
    return Deferred(
        event_id="e1",
        interaction_id=42,
        application_id=7,
        token="itok",
        channel="100",
        user_id="5",
        mode="thinking",
        created=created,
        **extra,  # type: ignore[arg-type]
    )


async def test_records_count_follow_ups_and_expire(redis: aioredis.Redis) -> None:
    store = InteractionStore(redis)
    assert await store.get("e1") is None
    await store.save(_deferred(time.time(), ephemeral=True, command="digest"))
    found = await store.get("e1")
    assert found is not None and found[1] == 0 and found[0].fresh and found[0].command == "digest"
    await store.answered("e1")
    assert (await store.get("e1"))[1] == 1  # type: ignore[index]
    assert 0 < await redis.ttl(key("e1")) <= 86400


def test_follow_ups_are_only_possible_for_fifteen_minutes() -> None:
    assert _deferred(time.time() - 60).fresh
    assert not _deferred(time.time() - FOLLOWUP_S - 1).fresh
