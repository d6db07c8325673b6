"""Chat actions while an Event is being answered: repeated until settled, never after the answer."""

from __future__ import annotations

import asyncio

from telegram import Bot

from bots.telegram.working import Working
from core.contract import Author, Event, EventKind, Reply, SendImage
from tests.fakes.telegram_api import FakeTelegram


def _event(chat: int, **kw: object) -> Event:
    return Event(platform="telegram", community=str(chat), channel=str(chat), author=Author(id="1"), **kw)  # type: ignore[arg-type]


async def test_typing_repeats_until_the_event_is_settled(tg: FakeTelegram, bot: Bot) -> None:
    group = int(tg.add_chat("supergroup")["id"])
    settled: set[str] = set()

    async def is_settled(event_id: str) -> bool:
        return event_id in settled

    working = Working(bot, is_settled, interval_s=0.1, max_s=10, delay_s=0.05)
    mention = _event(group, kind=EventKind.MENTION, text="write")
    working.begin(mention)
    working.begin(_event(group, kind=EventKind.MESSAGE, text="feed only"))  # nothing to wait for
    await tg.wait_for(lambda: len(tg.calls("sendChatAction")) >= 3, what="repeated chat actions")
    settled.add(mention.id)
    await asyncio.sleep(0.3)
    count = len(tg.calls("sendChatAction"))
    await asyncio.sleep(0.3)
    assert len(tg.calls("sendChatAction")) == count  # stopped once settled
    assert {c["action"] for c in tg.calls("sendChatAction")} == {"typing"}
    await working.stop()


async def test_images_upload_photo_and_nothing_right_after_a_delivery(tg: FakeTelegram, bot: Bot) -> None:
    forum = int(tg.add_chat("supergroup", is_forum=True)["id"])
    topic = tg.add_topic(forum, "Art")

    async def never(event_id: str) -> bool:
        return False

    working = Working(bot, never, interval_s=0.2, max_s=1.5, delay_s=0.05)
    image = _event(forum, kind=EventKind.COMMAND, command="image", thread=str(topic))
    working.begin(image)
    await tg.wait_for(lambda: tg.calls("sendChatAction"), what="a chat action")
    assert tg.calls("sendChatAction")[0]["action"] == "upload_photo"
    assert tg.calls("sendChatAction")[0]["message_thread_id"] == str(topic)
    group = int(tg.add_chat("supergroup")["id"])
    mention = _event(group, kind=EventKind.MENTION, text="draft")
    working.begin(mention)

    def in_group() -> list[str]:
        return [c["action"] for c in tg.calls("sendChatAction") if c["chat_id"] == str(group)]

    await tg.wait_for(lambda: in_group(), what="typing in the group")
    working.delivered(Reply(platform="telegram", community="c", channel="c", event_id=mention.id, text="x"))
    before = len(in_group())
    await asyncio.sleep(0.15)  # within one interval of the delivery: no action at all
    assert len(in_group()) == before
    await tg.wait_for(lambda: len(in_group()) > before, what="the next action")
    assert in_group()[0] == "typing" and in_group()[-1] == "upload_photo"  # what is left is the image
    working.delivered(SendImage(platform="telegram", community="c", channel="c", event_id="other", blob="b"))
    await asyncio.sleep(1.8)  # max_s passed: every loop ended by itself
    assert not working._tasks
    await working.stop()
