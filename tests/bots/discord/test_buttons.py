from __future__ import annotations

import redis.asyncio as aioredis

from bots.discord.buttons import (
    HASHED,
    MAX_CUSTOM_ID,
    Pressed,
    custom_id_for,
    decode,
    encode,
    resolve,
    style_name,
)


def test_custom_id_carries_payload_and_who_may_press() -> None:
    custom_id = encode("share:0123456789abcdef:telegram:-100123", "1200000000000000009")
    assert custom_id == "chorus|1200000000000000009|share:0123456789abcdef:telegram:-100123"
    assert decode(custom_id) == Pressed("share:0123456789abcdef:telegram:-100123", "1200000000000000009")
    anyone = encode("approve:0123456789abcdef", None)
    assert anyone is not None and decode(anyone) == Pressed("approve:0123456789abcdef", None)


def test_foreign_or_malformed_ids_are_not_ours() -> None:
    assert decode("someone-elses-button") is None
    assert decode("chorus|only-one-part") is None
    assert decode("chorus|123|") is None


async def test_long_payloads_are_kept_in_redis(redis: aioredis.Redis) -> None:
    payload = "share:0123456789abcdef:discord:" + "9" * 90
    assert encode(payload, "1") is None
    custom_id = await custom_id_for(redis, payload, "1")
    assert custom_id.startswith(HASHED) and len(custom_id) <= MAX_CUSTOM_ID
    assert await resolve(redis, custom_id) == Pressed(payload, "1")
    assert await resolve(redis, HASHED + "0" * 32) is None  # expired or unknown
    short = await custom_id_for(redis, "post:abc", None)
    assert await resolve(redis, short) == Pressed("post:abc", None)


def test_styles_follow_the_verb() -> None:
    assert [style_name(p) for p in ("post:x", "approve:x", "share:x:y", "revise:x", "image:x")] == [
        "success",
        "success",
        "primary",
        "secondary",
        "secondary",
    ]
