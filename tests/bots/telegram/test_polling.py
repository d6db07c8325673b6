"""Long polling with the offset in Redis: every update is handled, once, across failures and restarts."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis
from telegram import Bot, Update

from bots.telegram.polling import ALLOWED_UPDATES, Poller, offset_key
from tests.bots.telegram.stack import BOT_ID
from tests.fakes.telegram_api import FakeTelegram


async def test_updates_are_handled_once_across_failures_and_restarts(
    tg: FakeTelegram, bot: Bot, redis: aioredis.Redis
) -> None:
    alice = int(tg.add_user("Alice")["id"])
    group = int(tg.add_chat("supergroup", members=[alice])["id"])
    handled: list[int] = []
    failures = {"left": 1}

    async def handle(update: Update) -> None:
        assert update.message is not None
        if update.message.text == "two" and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("redis is down for a moment")
        handled.append(update.update_id)

    for text in ("one", "two", "three"):
        tg.user_message(group, alice, text)
    tg.fail_next("getUpdates", status=409, description="Conflict: terminated by other getUpdates request")
    poller = Poller(bot, redis, handle, timeout_s=1, backoff_s=0.05)
    task = asyncio.create_task(poller.run())
    await tg.wait_for(lambda: len(handled) == 3 or None, what="three updates handled")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert handled == sorted(set(handled)) and len(handled) == 3  # in order, none twice, none lost
    assert await poller.offset() == handled[-1] + 1 == int(await redis.get(offset_key(BOT_ID)))
    polls = tg.calls("getUpdates")
    assert all(json.loads(p["allowed_updates"]) == list(ALLOWED_UPDATES) for p in polls)
    assert "message_reaction" in ALLOWED_UPDATES and "message_reaction_count" in ALLOWED_UPDATES

    tg.user_message(group, alice, "four")  # while nobody polls
    polls_before = len(tg.calls("getUpdates"))
    again = Poller(bot, redis, handle, timeout_s=1, backoff_s=0.05)
    task = asyncio.create_task(again.run())
    await tg.wait_for(lambda: len(handled) == 4 or None, what="the update sent while stopped")
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(handled) == len(set(handled)) == 4
    assert tg.calls("getUpdates")[polls_before]["offset"] == str(handled[2] + 1)  # resumed from Redis
