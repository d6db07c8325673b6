"""Sign-in links and sessions, without passwords: chat vouches for who someone is.

``/dashboard`` issues a one-time link (a few minutes, single use) bound to the platform, community, user and
role at issue time; opening it starts a session (a cookie holding ``<community>.<secret>``; Redis holds only
the secret's SHA-256, under the community's hash tag). A session expires, ends on ``/dashboard signout``,
and on platforms with their own roles (Telegram, Discord) its moderator right is re-checked through the
adapter's ``RoleCheck`` (``Services.roles``) once ``ROLE_CACHE_S`` have passed: a "no" turns the session into
a member's for good (a demoted moderator loses write access), and while the platform cannot be asked (no
answer, or its adapter does not run in this process) moderator rights are refused, nothing cached. On
platforms without roles (console, X) the role given at sign-in stands. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as aioredis
from pydantic import BaseModel

from core import keys
from core.ports import RoleChecks
from core.web.signing import b64, digest, unb64

LINK_TTL_S = 300
SESSION_TTL_S = 8 * 3600
ROLE_CACHE_S = 60.0
ROLE_TIMEOUT_S = 5.0  # a platform slower than this "cannot tell": the page answers without moderator rights
COOKIE = "chorus_session"


class Identity(BaseModel):
    """Who a link or session speaks for; ``moderator`` is the role the platform gave at issue time."""

    platform: str
    community: str
    user: str
    name: str = ""
    moderator: bool = False

    @property
    def community_key(self) -> str:
        return f"{self.platform}:{self.community}"


class Session(Identity):
    created: float
    expires: float
    checked_at: float
    digest: str = ""  # of the cookie's secret part (not stored in the record)
    unconfirmed: bool = False  # a moderator the platform could not confirm just now (not stored either)


def _split(token: str) -> tuple[str, str] | None:
    """``<base64 community key>.<secret>`` -> (community key, secret)."""
    head, _, secret = token.partition(".")
    raw = unb64(head) if 0 < len(head) <= 200 and 20 <= len(secret) <= 64 else None
    if raw is None:
        return None
    community_key = raw.decode(errors="replace")
    return (community_key, secret) if ":" in community_key else None


def _token(community_key: str) -> tuple[str, str]:
    secret = secrets.token_urlsafe(24)
    return f"{b64(community_key.encode())}.{secret}", digest(secret)


class Auth:
    def __init__(self, redis: aioredis.Redis, roles: RoleChecks | None = None) -> None:
        self.redis = redis
        self.roles = roles if roles is not None else RoleChecks(())

    async def issue_link(self, who: Identity) -> str:
        token, hashed = _token(who.community_key)
        await self.redis.set(
            keys.signin_link(who.community_key, hashed), who.model_dump_json(), ex=LINK_TTL_S
        )
        return token

    async def redeem(self, link_token: str) -> tuple[str, Session] | None:
        """Use a link once: returns the new session's cookie value and the session, or None."""
        parts = _split(link_token)
        if parts is None:
            return None
        community_key, secret = parts
        raw = await self.redis.getdel(keys.signin_link(community_key, digest(secret)))
        if raw is None:
            return None
        who = Identity.model_validate_json(raw)
        if who.community_key != community_key:
            return None
        now = time.time()
        cookie, hashed = _token(community_key)
        session = Session(
            **who.model_dump(), created=now, expires=now + SESSION_TTL_S, checked_at=now, digest=hashed
        )
        await self._save(session)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.web_user_sessions(community_key, who.user), hashed)
            pipe.expire(keys.web_user_sessions(community_key, who.user), SESSION_TTL_S)
            await pipe.execute()
        return cookie, session

    async def session(self, cookie: str) -> Session | None:
        """The live session of a cookie, its moderator right re-checked when the cache is stale."""
        parts = _split(cookie)
        if parts is None:
            return None
        community_key, secret = parts
        hashed = digest(secret)
        raw = await self.redis.get(keys.web_session(community_key, hashed))
        if raw is None:
            return None
        session = Session.model_validate_json(raw)
        session.digest = hashed
        now = time.time()
        if session.community_key != community_key or session.expires <= now:
            return None
        await self._recheck(session, now)
        return session

    async def _recheck(self, session: Session, now: float) -> None:
        slot = self.roles.slot(session.platform)
        if not session.moderator or slot is None or now - session.checked_at <= ROLE_CACHE_S:
            return
        check, still = slot.optional(), None
        if check is not None:
            try:
                async with asyncio.timeout(ROLE_TIMEOUT_S):
                    still = await check(session.community, session.user)
            except TimeoutError:
                still = None
        if still is None:  # fail closed for this request; ask again on the next one
            session.moderator, session.unconfirmed = False, True
            return
        session.checked_at = now
        session.moderator = still
        await self._save(session)

    async def _save(self, session: Session) -> None:
        ttl = max(1, int(session.expires - time.time()))
        record = session.model_dump_json(exclude={"digest", "unconfirmed"})
        await self.redis.set(keys.web_session(session.community_key, session.digest), record, ex=ttl)

    async def end(self, session: Session) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.web_session(session.community_key, session.digest))
            pipe.srem(keys.web_user_sessions(session.community_key, session.user), session.digest)
            await pipe.execute()

    async def end_all(self, community_key: str, user: str) -> int:
        """End every session of a person in a community; returns how many there were."""
        index = keys.web_user_sessions(community_key, user)
        digests = [d.decode() if isinstance(d, bytes) else d for d in await self.redis.smembers(index)]
        async with self.redis.pipeline(transaction=True) as pipe:
            for hashed in digests:
                pipe.delete(keys.web_session(community_key, hashed))
            pipe.delete(index)
            results = await pipe.execute()
        return sum(int(r) for r in results[:-1])


async def allow(redis: aioredis.Redis, bucket: str, who: str, limit: int, window_s: int) -> bool:
    """A fixed-window rate limit: at most ``limit`` attempts per ``window_s`` for ``who``."""
    key = keys.web_rate(bucket, who)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=window_s, nx=True)
        pipe.incr(key)
        _, count = await pipe.execute()
    return int(count) <= limit
