"""ChatPacer through the real python-telegram-bot against the loopback Bot API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from bots.telegram.pacing import ChatPacer
from tests.bots.telegram.stack import TOKEN
from tests.fakes.telegram_api import FakeTelegram


def _bot(tg: FakeTelegram, pacer: ChatPacer) -> ExtBot[Any]:
    return ExtBot(TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url, rate_limiter=pacer)


async def test_a_429_on_one_chat_does_not_pause_the_others(tg: FakeTelegram) -> None:
    busy, quiet = tg.add_chat(title="Busy")["id"], tg.add_chat(title="Quiet")["id"]
    tg.fail_next("sendMessage", retry_after=5)
    async with _bot(tg, ChatPacer(30, 20)) as bot:
        started = time.monotonic()
        with pytest.raises(RetryAfter):  # handed straight back: the Sender waits on that chat's lane
            await bot.send_message(busy, "first")
        await bot.send_message(quiet, "meanwhile")
        assert time.monotonic() - started < 2.0  # PTB's AIORateLimiter would have paused 5 s here
    assert [m.text for m in tg.bot_messages(quiet)] == ["meanwhile"]


async def test_group_budget_is_kept_and_typing_does_not_spend_it(tg: FakeTelegram) -> None:
    group = tg.add_chat(title="Group")["id"]
    async with _bot(tg, ChatPacer(1000, 3)) as bot:
        for _ in range(5):
            await bot.send_chat_action(group, "typing")  # not messages: no budget used
        started = time.monotonic()
        for i in range(3):
            await bot.send_message(group, f"m{i}")
        assert time.monotonic() - started < 2.0
        fourth = asyncio.create_task(bot.send_message(group, "m3"))
        await asyncio.sleep(1.5)
        assert not fourth.done()  # the fourth message of the minute waits for the group's budget
        fourth.cancel()
