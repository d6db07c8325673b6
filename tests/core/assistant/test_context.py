from __future__ import annotations

import redis.asyncio as aioredis

from core.assistant.context import ConversationContext
from tests.support import event


async def test_turns_are_kept_per_thread_oldest_first_and_trimmed(redis: aioredis.Redis) -> None:
    ctx = ConversationContext(redis, ttl_s=60, max_turns=3)
    e = event(channel="general", thread="t1")
    for i in range(5):
        await ctx.add(e, "user" if i % 2 == 0 else "assistant", f"turn {i}")
    history = await ctx.history(e)
    assert [t.text for t in history] == ["turn 2", "turn 3", "turn 4"]
    assert [t.role for t in history] == ["user", "assistant", "user"]
    assert [t.text for t in await ctx.history(e, 1)] == ["turn 4"]
    assert 0 < await redis.ttl(ctx.key(e)) <= 60


async def test_context_is_never_shared_between_communities_or_threads(redis: aioredis.Redis) -> None:
    ctx = ConversationContext(redis)
    here = event(community="c1", channel="general")
    await ctx.add(here, "user", "secret plans of c1")
    assert await ctx.history(event(community="c2", channel="general")) == []
    assert await ctx.history(event(community="c1", channel="general", thread="other")) == []
    assert await ctx.history(event(platform="discord", community="c1", channel="general")) == []
    assert ctx.key(here).startswith("chorus:{c:test:c1}:")


async def test_long_turns_are_capped_and_empty_ones_skipped(redis: aioredis.Redis) -> None:
    ctx = ConversationContext(redis)
    e = event()
    await ctx.add(e, "user", "x" * 50_000)
    await ctx.add(e, "assistant", "   ")
    [turn] = await ctx.history(e)
    assert len(turn.text) == 1500
    await redis.rpush(ctx.key(e), b"not json")
    assert len(await ctx.history(e)) == 1
    await ctx.clear(e)
    assert await ctx.history(e) == []
