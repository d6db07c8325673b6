"""Sign-in links and sessions against the real Redis: single use, expiry, forgery, revocation, role re-check."""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest
import redis.asyncio as aioredis

from core import keys
from core.contract import Author, DirectMessage, EventKind
from core.feed.http import FeedHttp
from core.ports import RoleChecks
from core.router import Router
from core.services import Services
from core.web import auth as auth_module
from core.web.auth import Auth, Identity, Session, allow
from core.web.signing import digest
from tests.support import event, feed_of

ADA = Identity(platform="test", community="c1", user="ada", name="Ada", moderator=True)


async def test_a_link_works_once_and_opens_a_session_bound_to_its_identity(redis: aioredis.Redis) -> None:
    auth = Auth(redis)
    link = await auth.issue_link(ADA)
    assert await redis.ttl(keys.signin_link("test:c1", digest(link.split(".")[1]))) <= auth_module.LINK_TTL_S
    assert link.split(".")[1].encode() not in b"".join(
        [await redis.get(k) or b"" for k in await redis.keys("*")]
    )
    redeemed = await auth.redeem(link)
    assert redeemed is not None
    cookie, session = redeemed
    assert (session.platform, session.community, session.user, session.moderator) == (
        "test",
        "c1",
        "ada",
        True,
    )
    assert await auth.redeem(link) is None  # used
    again = await auth.session(cookie)
    assert again is not None and again.user == "ada"
    # the stored session is keyed by the cookie secret's hash: the secret is nowhere in Redis
    secret = cookie.split(".")[1].encode()
    stored = [
        (k, await redis.get(k) or b"") for k in await redis.keys("*web*") if await redis.type(k) == b"string"
    ]
    assert stored and all(secret not in k and secret not in v for k, v in stored)


async def test_expired_forged_and_replayed_links_are_refused(redis: aioredis.Redis) -> None:
    auth = Auth(redis)
    expired = await auth.issue_link(ADA)
    await redis.pexpire(keys.signin_link("test:c1", digest(expired.split(".")[1])), 1)
    time.sleep(0.01)
    assert await auth.redeem(expired) is None
    good = await auth.issue_link(ADA)
    head, secret = good.split(".")
    other_head = (await auth.issue_link(ADA.model_copy(update={"community": "c2"}))).split(".")[0]
    for forged in (
        f"{head}.{secret[:-1]}x",
        f"{other_head}.{secret}",
        "x.y",
        "",
        "." * 50,
        f"{head}.{secret}.z",
    ):
        assert await auth.redeem(forged) is None, forged
    assert await auth.redeem(good) is not None  # forgeries did not use it up


async def test_sessions_end_on_signout_from_chat_and_expire(services: Services) -> None:
    auth = Auth(services.redis)
    cookies = []
    for _ in range(2):
        redeemed = await auth.redeem(await auth.issue_link(ADA))
        assert redeemed is not None
        cookies.append(redeemed[0])
    signout = event(
        EventKind.COMMAND, command="dashboard", args="signout", author=Author(id="ada", name="Ada")
    )
    [reply] = await Router(services).route(signout)
    assert reply.text == "Signed out: 2 web sessions ended."  # type: ignore[union-attr]
    assert [await auth.session(c) for c in cookies] == [None, None]
    redeemed = await auth.redeem(await auth.issue_link(ADA))
    assert redeemed is not None
    key = keys.web_session("test:c1", redeemed[1].digest)
    await services.redis.pexpire(key, 1)
    time.sleep(0.01)
    assert await auth.session(redeemed[0]) is None


async def test_a_demoted_moderator_loses_the_right_after_the_cache(redis: aioredis.Redis) -> None:
    answers: list[bool | None] = [None, True, False]

    async def still_moderator(community: str, user: str) -> bool | None:
        assert (community, user) == ("c1", "ada")
        return answers.pop(0)

    roles = RoleChecks(["test"])
    auth = Auth(redis, roles)
    redeemed = await auth.redeem(await auth.issue_link(ADA))
    assert redeemed is not None
    cookie, first = redeemed

    async def stale() -> Session | None:
        record = first.model_copy(update={"checked_at": time.time() - auth_module.ROLE_CACHE_S - 1})
        await auth._save(record)
        return await auth.session(cookie)

    session = await stale()  # the platform does not run here yet: refused for now, not cached
    assert session is not None and not session.moderator and session.unconfirmed
    roles.slot("test").provide(still_moderator)  # type: ignore[union-attr]
    session = await auth.session(cookie)  # the platform cannot tell: refused for this request only
    assert session is not None and not session.moderator and session.unconfirmed and answers == [True, False]
    session = await auth.session(cookie)  # asked again: still a moderator, cached
    assert session is not None and session.moderator and not session.unconfirmed and answers == [False]
    session = await auth.session(cookie)
    assert session is not None and session.moderator and answers == [False]  # within the cache: not asked
    session = await stale()  # the platform says no: a member's session for good
    assert session is not None and not session.moderator and not session.unconfirmed and answers == []
    session = await auth.session(cookie)
    assert session is not None and not session.moderator


async def test_a_platform_without_roles_keeps_the_role_given_at_sign_in(redis: aioredis.Redis) -> None:
    auth = Auth(redis, RoleChecks(["telegram", "discord"]))
    redeemed = await auth.redeem(await auth.issue_link(ADA.model_copy(update={"platform": "console"})))
    assert redeemed is not None
    record = redeemed[1].model_copy(update={"checked_at": 0.0})
    await auth._save(record)
    session = await auth.session(redeemed[0])
    assert session is not None and session.moderator and not session.unconfirmed


async def test_sign_in_attempts_are_rate_limited(services: Services) -> None:
    assert all([await allow(services.redis, "t", "me", 3, 60) for _ in range(3)])
    assert not await allow(services.redis, "t", "me", 3, 60)
    assert await allow(services.redis, "t", "someone else", 3, 60)
    server = FeedHttp(feed_of(services), "127.0.0.1", 0)
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(22):
                async with http.get(f"http://127.0.0.1:{port}/signin?t=abc") as r:
                    statuses.append(r.status)
        assert statuses[:20] == [200] * 20 and statuses[20:] == [429, 429]
    finally:
        await server.stop()


async def test_links_and_sessions_never_reach_the_logs(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    services.settings = services.settings.model_copy(update={"http_port": 1})  # only for the link's address
    ask = event(
        EventKind.COMMAND, command="dashboard", author=Author(id="ada", name="Ada", is_moderator=True)
    )
    actions = await Router(services).route(ask)
    dm = next(a for a in actions if isinstance(a, DirectMessage))
    token = dm.text.split("t=")[1]
    assert dm.user == "ada" and "http://127.0.0.1:1/signin?t=" in dm.text
    assert any(a.text == "I sent you a sign-in link in a private message." for a in actions if a is not dm)  # type: ignore[union-attr]
    server = FeedHttp(feed_of(services), "127.0.0.1", 0)
    port = await server.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"http://127.0.0.1:{port}/signin?t={token}") as r:
                page = await r.text()
            csrf = page.split('name="csrf" value="')[1].split('"')[0]
            async with http.post(
                f"http://127.0.0.1:{port}/signin", data={"t": token, "csrf": csrf}, allow_redirects=False
            ) as r:
                assert r.status == 303 and r.headers["Location"] == "/m/test/c1"
                cookie = r.cookies["chorus_session"]
                assert cookie["httponly"] and cookie["samesite"] == "Lax" and int(cookie["max-age"]) > 0
            async with http.get(f"http://127.0.0.1:{port}/m/test/c1/nope") as r:
                assert r.status == 404
    finally:
        await server.stop()
    secret = cookie.value.split(".")[1]
    assert token.split(".")[1] not in caplog.text and secret not in caplog.text
