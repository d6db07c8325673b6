"""Moderators are the chat's administrators and creator, asked from Telegram over HTTP and cached."""

from __future__ import annotations

import redis.asyncio as aioredis
from telegram import Bot, Chat, User

from bots.telegram.moderators import Moderators
from tests.fakes.telegram_api import FakeTelegram


async def test_admins_and_creators_moderate_members_do_not(
    tg: FakeTelegram, bot: Bot, redis: aioredis.Redis
) -> None:
    owner, admin, member = (int(tg.add_user(n)["id"]) for n in ("Olga", "Bob", "Carol"))
    group = int(tg.add_chat("supergroup", members=[owner, admin, member])["id"])
    tg.set_admin(group, owner, "creator")
    tg.set_admin(group, admin)
    chat = Chat(group, Chat.SUPERGROUP)
    mods = Moderators(bot, redis, ttl_s=60)
    assert await mods.is_moderator(chat, User(owner, "Olga", False))
    assert await mods.is_moderator(chat, User(admin, "Bob", False))
    assert not await mods.is_moderator(chat, User(member, "Carol", False))
    assert await mods.is_moderator(chat, None, sender_chat=chat)  # an anonymous admin posts as the group
    assert not await mods.is_moderator(
        chat, None, sender_chat=Chat(-100777, Chat.CHANNEL)
    )  # a linked channel
    assert await mods.is_moderator(Chat(member, Chat.PRIVATE), User(member, "Carol", False))
    assert len(tg.calls("getChatAdministrators")) == 1  # one call answered all of them
    tg.set_member(group, admin, "member")  # demoted
    await mods.forget(group)
    assert not await mods.is_moderator(chat, User(admin, "Bob", False))
    assert len(tg.calls("getChatAdministrators")) == 2


async def test_when_telegram_cannot_answer_nobody_is_a_moderator_and_nothing_is_cached(
    tg: FakeTelegram, bot: Bot, redis: aioredis.Redis
) -> None:
    admin = int(tg.add_user("Bob")["id"])
    group = int(tg.add_chat("supergroup", members=[admin])["id"])
    tg.set_admin(group, admin)
    mods = Moderators(bot, redis, ttl_s=60)
    tg.fail_next("getChatAdministrators", status=502)
    assert not await mods.is_moderator(Chat(group, Chat.SUPERGROUP), User(admin, "Bob", False))
    assert await mods.is_moderator(Chat(group, Chat.SUPERGROUP), User(admin, "Bob", False))
