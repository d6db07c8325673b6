"""Callback data: a stored token that resolves only in its chat, on its message, before it expires."""

from __future__ import annotations

import redis.asyncio as aioredis

from bots.telegram.buttons import Buttons
from core.contract import Choice

CHOICES = (Choice(label="Post", payload="post:d1"), Choice(label="Share", payload="share:d1:x:" + "c" * 80))


async def test_a_token_resolves_to_its_payload_even_after_a_restart(redis: aioredis.Redis) -> None:
    data = await Buttons(redis, 600).issue(-100, CHOICES, allowed_user="42")
    assert all(d.startswith("c1.") and len(d.encode()) <= 64 for d in data)  # long payloads stay server-side
    await Buttons(redis, 600).bind(-100, data, 7)
    restarted = Buttons(redis, 600)  # nothing in memory
    pressed = await restarted.resolve(-100, 7, data[1])
    assert pressed is not None and pressed.payload == CHOICES[1].payload and pressed.allowed_user == "42"


async def test_forged_misplaced_and_stale_data_resolve_to_nothing(redis: aioredis.Redis) -> None:
    buttons = Buttons(redis, 600)
    data = await buttons.issue(-100, CHOICES, allowed_user=None)
    await buttons.bind(-100, data, 7)
    assert await buttons.resolve(-200, 7, data[0]) is None  # another chat
    assert await buttons.resolve(-100, 8, data[0]) is None  # another message of the chat
    for forged in ("post:d1", "c1.", "c1.AAAAAAAAAAAAAAAAAAAAAA", "c1.../../x", None, "c1." + "a" * 70):
        assert await buttons.resolve(-100, 7, forged) is None
    keys = [k async for k in redis.scan_iter(match="*tg-button*")]
    assert keys and all(b"{c:telegram:-100}" in k for k in keys)  # under the chat's community hash tag
    assert all(0 < ttl <= 600 for ttl in [await redis.ttl(k) for k in keys])
    for key in keys:
        await redis.delete(key)  # what the TTL does after a week
    assert await buttons.resolve(-100, 7, data[0]) is None
    pressed = await buttons.resolve(-100, 7, (await buttons.issue(-100, CHOICES[:1], None))[0])
    assert pressed is not None and pressed.allowed_user is None  # unbound: any message of the chat
