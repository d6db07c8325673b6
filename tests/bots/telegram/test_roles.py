"""The web app re-checks a Telegram moderator with getChatMember (real PTB against the loopback Bot API), and
a demoted moderator's web session is refused the dashboard and its writes."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from telegram import Bot

from bots.telegram.moderators import Moderators
from bots.telegram.roles import TelegramRoles
from core import keys
from core.services import Services
from core.web import auth as auth_module
from core.web.auth import Identity
from core.web.visibility import is_public
from tests.bots.telegram.stack import Recorder, adapter
from tests.core.web.signin import signed_in
from tests.fakes.telegram_api import FakeTelegram


async def test_administrators_and_the_creator_are_moderators_others_not(
    tg: FakeTelegram, bot: Bot, redis: aioredis.Redis
) -> None:
    owner, admin, member, stranger = (int(tg.add_user(n)["id"]) for n in ("Olga", "Bob", "Carol", "Dan"))
    group = int(tg.add_chat("supergroup", members=[owner, admin, member])["id"])
    tg.set_admin(group, owner, "creator")
    tg.set_admin(group, admin)
    mods = Moderators(bot, redis, ttl_s=60)
    check = TelegramRoles(bot, mods)
    g = str(group)
    assert [await check(g, str(u)) for u in (owner, admin, member, stranger)] == [True, True, False, False]
    assert await check(str(member), str(member))  # their own private chat
    assert await check(g, g)  # an administrator who wrote as the group
    assert not await check(g, "999999999")  # a user Telegram does not know: "user not found"
    assert not await check("-100424242", str(admin))  # a chat the bot is not in: "chat not found"
    assert len(tg.calls("getChatMember")) == 6
    await mods.admin_ids(group)  # the chat commands' cache of admins
    tg.set_member(group, admin, "member")  # demoted on Telegram
    assert not await check(g, str(admin))
    assert await redis.get(keys.community(f"telegram:{group}", "tg-admins")) is None  # chat sees it at once
    tg.fail_next("getChatMember", status=502)
    assert await check(g, str(owner)) is None  # cannot tell: the web app refuses rights for now


async def test_a_demoted_moderators_web_session_is_refused_writes(
    tg: FakeTelegram, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = int(tg.add_user("Bob")["id"])
    group = int(tg.add_chat("supergroup", members=[admin])["id"])
    tg.set_admin(group, admin)
    assert services.roles.slot("telegram") is not None and not services.roles.slot("telegram").filled  # type: ignore[union-attr]
    monkeypatch.setattr(auth_module, "ROLE_CACHE_S", 0.0)  # re-check on every request
    who = Identity(platform="telegram", community=str(group), user=str(admin), name="Bob", moderator=True)
    community_key = f"telegram:{group}"
    async with adapter(services, tg, Recorder()):
        assert services.roles.slot("telegram").filled  # type: ignore[union-attr]
        async with signed_in(services, who) as web:
            page, status = await web.get(web.dashboard)
            assert status == 200 and "Feed visibility" in page
            assert (await web.post(web.dashboard + "/feed", {"action": "visibility", "value": "public"}))[
                1
            ] == 200
            assert await is_public(services.redis, community_key)

            tg.set_member(group, admin, "member")  # demoted on Telegram while signed in
            page, status = await web.post(
                web.dashboard + "/feed", {"action": "visibility", "value": "private"}
            )
            assert status == 403 and "Only moderators" in page
            assert await is_public(services.redis, community_key)  # the write did not happen
            page, status = await web.get(web.dashboard)
            assert status == 403 and "Feed visibility" not in page
            page, status = await web.get("/")
            assert status == 200 and web.dashboard not in page  # no link to the dashboard any more
    assert not services.roles.slot("telegram").filled  # type: ignore[union-attr]


async def test_while_telegram_cannot_answer_the_dashboard_is_refused_with_a_reason(
    tg: FakeTelegram, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = int(tg.add_user("Bob")["id"])
    group = int(tg.add_chat("supergroup", members=[admin])["id"])
    tg.set_admin(group, admin)
    monkeypatch.setattr(auth_module, "ROLE_CACHE_S", 0.0)
    who = Identity(platform="telegram", community=str(group), user=str(admin), name="Bob", moderator=True)
    async with adapter(services, tg, Recorder()), signed_in(services, who) as web:
        tg.fail_next("getChatMember", status=502)
        page, status = await web.get(web.dashboard)
        assert status == 403 and "did not confirm just now" in page
        page, status = await web.get(web.dashboard)  # nothing was cached: asked again, and confirmed
        assert status == 200 and "Feed visibility" in page
