"""FakeTelegram must behave like the Bot API as seen by the real python-telegram-bot SDK over HTTP.

Why: adapter tests trust this fake to reject what Telegram rejects (bad HTML, long texts, oversized
callback_data, flood control) and to deliver updates the way long polling really does.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from html import escape
from typing import Any

import aiohttp
import pytest
from PIL import Image
from telegram import (
    Bot,
    ChatMemberAdministrator,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.fakes.telegram_api import FakeTelegram, Upload

TOKEN = "123:ABC"
JSON = dict[str, Any]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback must bypass proxies; PTB_TIMEDELTA avoids PTB's deprecation warning on retry_after."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, bot_username="chorus_bot") as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url) as real_bot:
        yield real_bot


@pytest.fixture
def group(tg: FakeTelegram) -> int:
    return int(tg.add_chat("supergroup", title="Chorus HQ")["id"])


@pytest.fixture
def alice(tg: FakeTelegram) -> int:
    return int(tg.add_user("Alice", username="alice_w")["id"])


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def _spans(message: Any) -> list[tuple[str, int, int]]:
    return [(e.type, e.offset, e.length) for e in message.entities]


async def test_get_me_and_raw_wire_formats(tg: FakeTelegram, bot: Bot, group: int) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123, "chorus_bot", True)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}999:nope/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.get(f"{tg.base_url}{TOKEN}/noSuchMethod") as resp:
            assert (resp.status, (await resp.json())["description"]) == (404, "Not Found")
        markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
        body = {"chat_id": group, "text": "<b>json</b>", "parse_mode": "HTML", "reply_markup": markup}
        async with http.post(f"{tg.base_url}{TOKEN}/sendMessage", json=body) as resp:
            result = (await resp.json())["result"]
    assert result["entities"] == [{"type": "bold", "offset": 0, "length": 4}]
    assert tg.bot_messages(group)[0].reply_markup == markup
    wrong = Bot("999:nope", base_url=tg.base_url)
    async with wrong.request:  # closes the connection PTB opens for the failing call
        with pytest.raises(InvalidToken, match="Unauthorized"):
            await wrong.get_me()


async def test_send_message_with_valid_html_arrives(tg: FakeTelegram, bot: Bot, group: int) -> None:
    html = '<b>Hi</b> &lt;all&gt; 👋 <a href="https://example.org/x">docs</a> <tg-spoiler>s</tg-spoiler>'
    message = await bot.send_message(group, html, parse_mode=ParseMode.HTML)
    assert message.text == "Hi <all> 👋 docs s"
    # 👋 is two UTF-16 code units, so the link starts at 12 although it is str index 11.
    assert _spans(message) == [("bold", 0, 2), ("text_link", 12, 4), ("spoiler", 17, 1)]
    assert message.entities[1].url == "https://example.org/x"
    assert sorted(message.parse_entities().values()) == ["Hi", "docs", "s"]
    (sent,) = tg.bot_messages(group)
    assert (sent.message_id, sent.raw_text, sent.parse_mode) == (message.message_id, html, "HTML")
    assert tg.calls("sendMessage")[0]["chat_id"] == str(group)  # PTB posts form fields as strings


@pytest.mark.parametrize(
    ("markup", "detail"),
    [
        ("<foo>x</foo>", 'unsupported start tag "foo" at byte offset 0'),
        ("<b>bold", 'can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("1 < 2", 'unsupported start tag "" at byte offset 2'),
        ("é<br>", 'unsupported start tag "br" at byte offset 2'),
        ("AT&foo; ok", 'unsupported html entity "&foo;" at byte offset 2'),
        ('<span class="x">y</span>', 'tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_invalid_html_is_rejected(
    tg: FakeTelegram, bot: Bot, group: int, markup: str, detail: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(group, markup, parse_mode=ParseMode.HTML)
    assert caught.value.message.lower() == f"can't parse entities: {detail}"
    assert tg.bot_messages() == []


async def test_text_limits_count_utf16_after_parsing(bot: Bot, group: int) -> None:
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(group, "x" * 5000)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(group, "😀" * 2049)  # 2049 code points but 4098 UTF-16 units
    assert (await bot.send_message(group, "x" * 4096)).text == "x" * 4096
    tagged = await bot.send_message(group, f"<b>{'x' * 4096}</b>", parse_mode=ParseMode.HTML)
    assert _spans(tagged) == [("bold", 0, 4096)]
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(group, "<b></b>", parse_mode=ParseMode.HTML)


async def test_flood_control_and_server_error_injection(tg: FakeTelegram, bot: Bot, group: int) -> None:
    tg.fail_next("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(group, "hi")
    assert caught.value.retry_after == timedelta(seconds=3)
    assert tg.bot_messages() == []  # the throttled call did not act
    assert (await bot.send_message(group, "hi")).text == "hi"

    tg.fail_next("sendChatAction", times=2)
    for _ in range(2):
        with pytest.raises(RetryAfter):
            await bot.send_chat_action(group, ChatAction.TYPING)
    assert await bot.send_chat_action(group, ChatAction.TYPING) is True

    tg.fail_next("sendMessage", status=500)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(group, "again")
    tg.fail_next("*", status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.get_me()
    tg.delay_next("getMe", 0.3)
    started = asyncio.get_running_loop().time()
    await bot.get_me()
    assert asyncio.get_running_loop().time() - started >= 0.3


async def test_random_faults_at_rates_and_replies_reported_per_message(
    tg: FakeTelegram, bot: Bot, group: int
) -> None:
    tg.flood_control = False  # 200 sends to one group: only the injected faults may answer 429 here
    user = tg.add_user("Ann")["id"]
    asked = tg.user_message(group, user, "@chorus_bot hello")["message"]["message_id"]
    faults = tg.inject_faults(rate_429=0.2, rate_5xx=0.1, seed=3)
    outcomes: list[str] = []
    for i in range(200):
        try:
            await bot.send_message(group, f"answer {i}", reply_parameters=ReplyParameters(asked))
            outcomes.append("ok")
        except RetryAfter as exc:
            assert exc.retry_after == timedelta(seconds=1)
            outcomes.append("429")
        except NetworkError:
            outcomes.append("5xx")
    assert outcomes.count("429") == faults.injected_429 and 20 <= faults.injected_429 <= 60
    assert outcomes.count("5xx") == faults.injected_5xx and 8 <= faults.injected_5xx <= 35
    posted = tg.replies_to(group, asked)
    assert len(posted) == outcomes.count("ok")  # a failed call did not act
    assert tg.posted_per_mention() == {(group, asked): posted}
    assert [m.sent_at for m in posted] == sorted(m.sent_at for m in posted)
    await bot.get_me()  # other methods are not affected


async def test_photo_upload_round_trips_through_get_file(tg: FakeTelegram, bot: Bot, group: int) -> None:
    png = _png(64, 32)
    message = await bot.send_photo(group, photo=png, caption="<i>look</i>", parse_mode=ParseMode.HTML)
    upload = tg.calls("sendPhoto")[0]["photo"]
    assert isinstance(upload, Upload) and upload.data == png  # arrived as a real multipart file part
    largest = message.photo[-1]
    assert (largest.width, largest.height, message.caption) == (64, 32, "look")
    assert [(e.type, e.offset, e.length) for e in message.caption_entities] == [("italic", 0, 4)]
    file = await bot.get_file(largest.file_id)
    assert file.file_path is not None and file.file_path.startswith(tg.base_file_url + TOKEN)
    assert bytes(await file.download_as_bytearray()) == png

    again = await bot.send_photo(group, photo=largest.file_id)
    assert again.photo[-1].file_id == largest.file_id and tg.calls("sendPhoto")[1]["photo"] == largest.file_id
    assert [m.photo is not None for m in tg.bot_messages(group)] == [True, True]
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(group, photo=b"definitely not an image")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(group, photo=png, caption="x" * 1025)


async def test_long_poll_wakes_on_user_message_and_offset_confirms(
    tg: FakeTelegram, bot: Bot, group: int, alice: int
) -> None:
    tg.add_user("Bob", username="bob_smith")
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for(lambda: tg.calls("getUpdates"), what="a getUpdates long-poll")
    started = asyncio.get_running_loop().time()
    pushed = tg.user_message(group, alice, "hey @chorus_bot 👋 /ask@chorus_bot what about @bob_smith?")
    updates = await poll
    assert asyncio.get_running_loop().time() - started < 2  # woken by the push, not by the timeout
    assert [u.update_id for u in updates] == [pushed["update_id"]]
    message = updates[0].message
    assert message is not None and message.from_user is not None and message.from_user.id == alice
    assert _spans(message) == [("mention", 4, 11), ("bot_command", 19, 15), ("mention", 46, 10)]
    assert list(message.parse_entities().values()) == ["@chorus_bot", "/ask@chorus_bot", "@bob_smith"]

    assert await bot.get_updates(offset=pushed["update_id"] + 1, timeout=0) == ()
    assert tg.pending_updates() == []


async def test_long_poll_returns_empty_after_timeout(bot: Bot) -> None:
    started = asyncio.get_running_loop().time()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= asyncio.get_running_loop().time() - started < 3


async def test_reactions_are_delivered_only_when_allowed(
    tg: FakeTelegram, bot: Bot, group: int, alice: int
) -> None:
    message_id = tg.user_message(group, alice, "rate me")["message"]["message_id"]
    tg.react(group, message_id, alice, "👍")
    first = await bot.get_updates(timeout=0)
    assert [u.message is not None for u in first] == [True]  # the reaction was filtered out
    tg.react(group, message_id, alice, "🔥")
    second = await bot.get_updates(
        offset=first[-1].update_id + 1, timeout=0, allowed_updates=[Update.MESSAGE, Update.MESSAGE_REACTION]
    )
    reaction = second[0].message_reaction
    assert reaction is not None and reaction.user is not None and reaction.user.id == alice
    assert [r.emoji for r in reaction.old_reaction] == ["👍"]  # type: ignore[attr-defined]
    assert [r.emoji for r in reaction.new_reaction] == ["🔥"]  # type: ignore[attr-defined]


async def test_callback_data_is_limited_to_64_bytes(tg: FakeTelegram, bot: Bot, group: int) -> None:
    for data in ("a" * 65, "é" * 33):  # 33 characters are 66 bytes
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Too much", callback_data=data)]])
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(group, "pick", reply_markup=keyboard)
    fits = InlineKeyboardMarkup([[InlineKeyboardButton("Fits", callback_data="é" * 32)]])
    assert (await bot.send_message(group, "pick", reply_markup=fits)).reply_markup == fits
    assert len(tg.bot_messages()) == 1


async def test_button_press_and_answer_callback_query(
    tg: FakeTelegram, bot: Bot, group: int, alice: int
) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("👍", callback_data="vote:up")]])
    sent = await bot.send_message(group, "Vote?", reply_markup=keyboard)
    with pytest.raises(ValueError, match="no button"):
        tg.press_button(group, sent.message_id, alice, "vote:down")
    pushed = tg.press_button(group, sent.message_id, alice, "vote:up")
    (update,) = await bot.get_updates(timeout=1)
    query = update.callback_query
    assert query is not None and query.id == pushed["callback_query"]["id"] and query.data == "vote:up"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert query.from_user.id == alice
    assert await query.answer("Counted!") is True
    assert tg.callback_answers[query.id]["text"] == "Counted!"
    with pytest.raises(BadRequest, match="Query is too old"):
        await query.answer("twice")


async def test_chat_administrators_members_and_chat_info(
    tg: FakeTelegram, bot: Bot, group: int, alice: int
) -> None:
    owner = tg.add_user("Olga")["id"]
    tg.set_admin(group, owner, "creator")
    tg.set_admin(group, alice, can_delete_messages=False)
    admins = await bot.get_chat_administrators(group)
    assert {(type(a), a.user.id) for a in admins} == {
        (ChatMemberOwner, owner),
        (ChatMemberAdministrator, alice),
    }
    assert [a.can_delete_messages for a in admins if isinstance(a, ChatMemberAdministrator)] == [False]
    assert (await bot.get_chat_member(group, bot.id)).status == "member"
    info = await bot.get_chat(group)
    assert (info.title, info.type) == ("Chorus HQ", "supergroup")
    with pytest.raises(BadRequest, match="There are no administrators in the private chat"):
        await bot.get_chat_administrators(alice)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat(424242)


async def test_edit_and_delete_follow_telegram_rules(
    tg: FakeTelegram, bot: Bot, group: int, alice: int
) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ok", callback_data="ok")]])
    sent = await bot.send_message(group, "draft", reply_markup=keyboard)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("draft", group, sent.message_id, reply_markup=keyboard)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(group, sent.message_id, reply_markup=keyboard)
    edited = await bot.edit_message_text("<i>final</i>", group, sent.message_id, parse_mode=ParseMode.HTML)
    assert isinstance(edited, Message) and edited.edit_date is not None
    assert (edited.text, edited.reply_markup) == ("final", None)  # omitting reply_markup drops the keyboard
    (record,) = tg.bot_messages(group)
    assert (record.text, record.edits, record.reply_markup, record.entities[0]["type"]) == (
        "final",
        1,
        None,
        "italic",
    )

    theirs = tg.user_message(group, alice, "mine")["message"]["message_id"]
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("hijack", group, theirs)
    with pytest.raises(BadRequest, match="Message can't be deleted"):
        await bot.delete_message(group, theirs)  # the bot is not an admin here
    assert await bot.delete_message(group, sent.message_id) is True
    assert tg.bot_messages(group) == [] and tg.bot_messages(group, include_deleted=True)[0].deleted
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("gone", group, sent.message_id)


async def test_replies_and_forum_topics(tg: FakeTelegram, bot: Bot, alice: int) -> None:
    forum = tg.add_chat("supergroup", title="Forum", is_forum=True)["id"]
    topic = tg.add_topic(forum, "Ideas")
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(forum, "hm", reply_to_message_id=999)
    lenient = ReplyParameters(message_id=999, allow_sending_without_reply=True)
    assert (await bot.send_message(forum, "hm", reply_parameters=lenient)).reply_to_message is None
    with pytest.raises(BadRequest, match="Message thread not found"):
        await bot.send_message(forum, "lost", message_thread_id=4242)

    incoming = tg.user_message(forum, alice, "idea: 🦜", message_thread_id=topic)["message"]
    assert (
        incoming["is_topic_message"]
        and incoming["reply_to_message"]["forum_topic_created"]["name"] == "Ideas"
    )
    answer = await bot.send_message(forum, "noted", reply_to_message_id=incoming["message_id"])
    assert (answer.message_thread_id, answer.is_topic_message) == (topic, True)  # replies stay in the topic
    record = tg.bot_messages(forum)[-1]
    assert (record.message_thread_id, record.reply_to_message_id) == (topic, incoming["message_id"])
    direct = await bot.send_message(forum, "top", message_thread_id=topic)
    assert tg.bot_messages(forum)[-1].reply_to_message_id is None and direct.message_thread_id == topic


async def test_channels_mentions_and_blocked_users(tg: FakeTelegram, bot: Bot, alice: int) -> None:
    channel = tg.add_chat("channel", title="News", username="chorus_news")["id"]
    post = tg.channel_post(channel, "Launch #chorus")["channel_post"]
    tg.edit_user_message(channel, post["message_id"], "Launch v2 #chorus")
    group = tg.add_chat("group")["id"]
    carol = tg.add_user("Carol")["id"]  # no username: only a text_mention can point at her
    tg.text_mention(group, alice, "thanks Carol!", carol)
    first, edited, mention = await bot.get_updates(timeout=0)
    assert first.channel_post is not None and first.channel_post.from_user is None
    assert first.channel_post.sender_chat is not None and first.channel_post.sender_chat.id == channel
    assert list(first.channel_post.parse_entities().values()) == ["#chorus"]
    assert edited.edited_channel_post is not None and edited.edited_channel_post.text == "Launch v2 #chorus"
    assert mention.message is not None and mention.message.entities[0].user is not None
    assert (mention.message.entities[0].type, mention.message.entities[0].user.id) == ("text_mention", carol)

    assert (await bot.send_message("@chorus_news", "hello subscribers")).chat.id == channel
    tg.block_bot(alice)
    with pytest.raises(Forbidden, match="Forbidden: bot was blocked by the user"):
        await bot.send_message(alice, "ping")


async def test_application_polls_handles_command_and_confirms(tg: FakeTelegram, alice: int) -> None:
    group = tg.add_chat("group", title="Team")["id"]

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_user is not None
        await update.effective_message.reply_html(f"Hi <b>{escape(update.effective_user.first_name)}</b>")

    app = ApplicationBuilder().token(TOKEN).base_url(tg.base_url).base_file_url(tg.base_file_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.bot.set_my_commands([("start", "Say hi")])
        assert [c.command for c in await app.bot.get_my_commands()] == ["start"]
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=timedelta(seconds=1), poll_interval=0)
        pushed = tg.user_message(group, alice, "/start@chorus_bot")
        (reply,) = await tg.wait_for(lambda: tg.bot_messages(group), what="the /start reply")
        await app.updater.stop()
        await app.stop()
    assert (reply.text, reply.entities, reply.parse_mode) == (
        "Hi Alice",
        [{"type": "bold", "offset": 3, "length": 5}],
        "HTML",
    )
    assert reply.reply_to_message_id == pushed["message"]["message_id"]  # PTB quotes in groups
    assert tg.pending_updates() == []  # PTB's final getUpdates confirmed the offset
    assert tg.commands == {"default": [{"command": "start", "description": "Say hi"}]}


async def test_stop_releases_pending_long_poll_and_conflicts() -> None:
    tg = FakeTelegram(token=TOKEN)
    await tg.start()
    async with Bot(TOKEN, base_url=tg.base_url) as bot:
        first = asyncio.create_task(bot.get_updates(timeout=30))
        await tg.wait_for(lambda: tg.calls("getUpdates"))
        url = f"{tg.base_url}{TOKEN}/getUpdates"
        async with aiohttp.ClientSession() as http, http.post(url, data={"timeout": "0"}) as resp:
            assert await resp.json() == {"ok": True, "result": []}  # a second poller supersedes the first
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await first
        second = asyncio.create_task(bot.get_updates(timeout=30))
        await tg.wait_for(lambda: len(tg.calls("getUpdates")) == 3)
        started = asyncio.get_running_loop().time()
        await tg.stop()
        assert await asyncio.wait_for(second, 5) == ()
        assert asyncio.get_running_loop().time() - started < 3
    with pytest.raises(AssertionError, match=r"timed out after 0\.05s waiting for nothing"):
        await tg.wait_for(lambda: False, timeout=0.05, what="nothing")
