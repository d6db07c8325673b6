"""The server key (kept in Redis, made once) and what it signs: CSRF tokens and personal feed tokens.

Personal feed tokens are ``<payload>.<signature>`` with the payload ``community key, user, generation``;
``/feed token revoke`` bumps the person's generation, so every URL given before stops working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

import redis.asyncio as aioredis

from core import keys

SIGNATURE_CHARS = 32


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def digest(secret_part: str) -> str:
    """How a link or session secret is stored: its SHA-256, never the secret itself."""
    return hashlib.sha256(secret_part.encode()).hexdigest()


async def server_key(redis: aioredis.Redis) -> bytes:
    """The key shared by every Chorus process on this Redis (the first one to ask creates it)."""
    await redis.set(keys.WEB_SECRET, secrets.token_hex(32), nx=True)
    raw = await redis.get(keys.WEB_SECRET)
    return raw if isinstance(raw, bytes) else str(raw).encode()


def sign(key: bytes, purpose: str, message: str) -> str:
    mac = hmac.new(key, f"{purpose}\n{message}".encode(), hashlib.sha256).digest()
    return b64(mac)[:SIGNATURE_CHARS]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def feed_token(redis: aioredis.Redis, community_key: str, user: str) -> str:
    raw = await redis.get(keys.feed_token_generation(community_key, user))
    generation = int(raw or 0)
    payload = b64(f"{community_key}\n{user}\n{generation}".encode())
    return f"{payload}.{sign(await server_key(redis), 'feed', payload)}"


async def revoke_feed_tokens(redis: aioredis.Redis, community_key: str, user: str) -> None:
    await redis.incr(keys.feed_token_generation(community_key, user))


async def feed_token_community(redis: aioredis.Redis, token: str) -> str | None:
    """The community a personal feed token lets its holder read, or None if it is forged or revoked."""
    holder = await feed_token_holder(redis, token)
    return holder[0] if holder else None


async def feed_token_holder(redis: aioredis.Redis, token: str) -> tuple[str, str] | None:
    """(community key, user) of a personal feed token (whose preferences its feed applies), or None if it
    is forged or revoked."""
    payload, _, signature = token.partition(".")
    if not payload or len(token) > 400 or not same(signature, sign(await server_key(redis), "feed", payload)):
        return None
    raw = unb64(payload)
    fields = raw.decode(errors="replace").split("\n") if raw else []
    if len(fields) != 3 or not fields[2].isdigit():
        return None
    community_key, user, generation = fields
    current = await redis.get(keys.feed_token_generation(community_key, user))
    return (community_key, user) if int(current or 0) == int(generation) else None
