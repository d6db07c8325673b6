"""Actions -> Bot API calls against FakeTelegram (strict HTML, UTF-16 limits), through the real PTB."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from telegram import Bot

from bots.telegram.buttons import Buttons
from bots.telegram.config import FACTS
from bots.telegram.deliver import MAX_CAPTION, Deliverer, caption_html
from core.contract import Action, Choice, DirectMessage, Edit, OfferChoices, Post, Receipt, Reply, SendImage
from core.errors import DeliveryRejected, PlatformUnavailable
from core.platform import degrade
from tests.bots.contract import PNG_1PX
from tests.bots.telegram.stack import TOKEN
from tests.fakes.telegram_api import FakeTelegram, parse_html, utf16_len


@pytest.fixture
def receipts() -> dict[str, Receipt]:
    return {}


@pytest.fixture
def deliverer(bot: Bot, redis: aioredis.Redis, receipts: dict[str, Receipt]) -> Deliverer:
    async def receipt(action_id: str) -> Receipt | None:
        return receipts.get(action_id)

    return Deliverer(bot, Buttons(redis, 600), receipt, TOKEN)


async def _blob(blob_id: str) -> bytes:
    if blob_id == "gone":
        raise KeyError(blob_id)
    return PNG_1PX


async def _send(d: Deliverer, action: Action, receipts: dict[str, Receipt] | None = None) -> list[Receipt]:
    out = []
    for part in degrade(action, FACTS.capabilities):
        receipt = await d.deliver(part, _blob)
        if receipts is not None:
            receipts[part.id] = receipt
        out.append(receipt)
    return out


async def test_edits_change_texts_and_captions_and_tolerate_no_change(
    tg: FakeTelegram, deliverer: Deliverer, receipts: dict[str, Receipt]
) -> None:
    group = int(tg.add_chat("supergroup")["id"])
    where = {"platform": "telegram", "community": str(group), "channel": str(group)}
    text = Reply(id="t1", **where, text="Draft <v1>")
    image = SendImage(id="i1", **where, blob="b", caption="Card")
    await _send(deliverer, text, receipts)
    await _send(deliverer, image, receipts)
    [edited] = await _send(deliverer, Edit(**where, target_action="t1", text="Draft <v2> & more"))
    await _send(deliverer, Edit(**where, target_action="t1", text="Draft <v2> & more"))  # unchanged: fine
    await _send(deliverer, Edit(**where, target_action="i1", text="New caption"))
    first, photo = tg.bot_messages(group)
    assert (first.text, first.edits) == ("Draft <v2> & more", 1)
    assert (photo.caption, photo.edits) == ("New caption", 1)
    assert edited.message_ids == receipts["t1"].message_ids
    with pytest.raises(DeliveryRejected, match="never delivered"):
        await deliverer.deliver(Edit(**where, target_action="nope", text="x"), _blob)


async def test_direct_messages_blocked_users_and_expired_images_fail_for_good(
    tg: FakeTelegram, deliverer: Deliverer
) -> None:
    alice = int(tg.add_user("Alice")["id"])
    [receipt] = await _send(deliverer, DirectMessage(platform="telegram", community="x", channel="x",
                                                     user=str(alice), text="Your digest"))  # fmt: skip
    assert receipt.message_ids[0].startswith(f"{alice}:") and tg.bot_messages(alice)[0].text == "Your digest"
    tg.block_bot(alice)
    with pytest.raises(DeliveryRejected, match="blocked"):
        await deliverer.deliver(DirectMessage(platform="telegram", community="x", channel="x",
                                              user=str(alice), text="again"), _blob)  # fmt: skip
    group = int(tg.add_chat("supergroup")["id"])
    with pytest.raises(DeliveryRejected, match="expired"):
        await deliverer.deliver(
            SendImage(platform="telegram", community="g", channel=str(group), blob="gone"), _blob
        )
    tg.fail_next("sendMessage", status=502)
    with pytest.raises(PlatformUnavailable):
        await deliverer.deliver(
            Reply(platform="telegram", community="g", channel=str(group), text="hi"), _blob
        )
    with pytest.raises(DeliveryRejected, match="not found"):
        await deliverer.deliver(Reply(platform="telegram", community="g", channel="-1009", text="hi"), _blob)


async def test_utf16_heavy_text_is_split_under_telegrams_count(
    tg: FakeTelegram, deliverer: Deliverer
) -> None:
    group = int(tg.add_chat("supergroup")["id"])
    text = " ".join("🎉🎉" for _ in range(1000))  # 2999 characters (one message by length) but 4999 units
    receipts = await _send(deliverer, Post(platform="telegram", community="g", channel=str(group), text=text))
    parts = tg.bot_messages(group)
    assert len(receipts) == len(parts) == 2
    assert all(utf16_len(m.text or "") <= 4096 for m in parts)
    assert " ".join(m.text or "" for m in parts) == text


async def test_replies_stay_in_their_topic_and_answer_in_place(
    tg: FakeTelegram, deliverer: Deliverer
) -> None:
    alice = int(tg.add_user("Alice")["id"])
    forum = int(tg.add_chat("supergroup", is_forum=True, members=[alice])["id"])
    topic = tg.add_topic(forum, "Launch")
    asked = tg.user_message(forum, alice, "@chorus_bot hi", message_thread_id=topic)["message"]["message_id"]
    where = {"platform": "telegram", "community": str(forum), "channel": str(forum), "thread": str(topic)}
    await _send(deliverer, Reply(**where, text="hello", reply_to=f"{forum}:{asked}"))
    await _send(deliverer, Reply(**where, text="gone", reply_to=f"{forum}:999"))  # deleted meanwhile
    await _send(deliverer, Reply(**where, text="elsewhere", reply_to=f"-42:{asked}"))  # not this chat
    hello, gone, elsewhere = tg.bot_messages(forum)
    assert (hello.reply_to_message_id, hello.message_thread_id) == (asked, topic)
    assert gone.reply_to_message_id is None and gone.message_thread_id == topic
    assert elsewhere.reply_to_message_id is None


async def test_choices_are_inline_buttons_and_captions_keep_alt_text(
    tg: FakeTelegram, deliverer: Deliverer, redis: aioredis.Redis
) -> None:
    group = int(tg.add_chat("supergroup")["id"])
    choices = (
        Choice(label="<b>Post</b> & go", payload="post:d1"),
        Choice(label="Share", payload="share:d1:x:m"),
    )
    await _send(deliverer, OfferChoices(platform="telegram", community=str(group), channel=str(group),
                                        text="Draft <ready>", choices=choices, allowed_user="5"))  # fmt: skip
    [message] = tg.bot_messages(group)
    rows = (message.reply_markup or {})["inline_keyboard"]
    assert [b["text"] for row in rows for b in row] == ["<b>Post</b> & go", "Share"]
    pressed = await Buttons(redis, 600).resolve(group, message.message_id, rows[1][0]["callback_data"])
    assert pressed is not None and (pressed.payload, pressed.allowed_user) == ("share:d1:x:m", "5")
    html = caption_html("Card <1>", "A cat & a dog")
    assert parse_html(html)[0] == "Card <1>\n\nImage description: A cat & a dog"
    assert parse_html(caption_html("", "Only alt"))[0] == "Image description: Only alt"
    long_caption = "x" * 1000
    assert parse_html(caption_html(long_caption, "alt " * 50))[0] == long_caption  # alt only when it fits
    crowded = "@abc " * 200  # 1000 characters: silencing 200 mentions would make it 1200
    assert utf16_len(parse_html(caption_html(crowded, ""))[0]) <= MAX_CAPTION
