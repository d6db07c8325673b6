"""Which Telegram updates become which Events. Update JSON comes from FakeTelegram's world building (so it
has Telegram's real shape and entity offsets); moderators are a plain set here (the real lookup is tested
in test_moderators.py against the fake over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Chat, Update, User

from bots.telegram.normalize import Normalizer
from core.contract import Event, EventKind
from tests.fakes.telegram_api import JSON, FakeTelegram

ADMINS: set[int] = set()


async def _is_moderator(chat: Chat, user: User | None, sender_chat: Chat | None) -> bool:
    if chat.type == Chat.PRIVATE:
        return True
    if sender_chat is not None:
        return sender_chat.id == chat.id
    return user is not None and user.id in ADMINS


@pytest.fixture
def tg() -> FakeTelegram:
    return FakeTelegram(token="7000001:AAF-fake", bot_username="chorus_bot")  # never started: world only


@pytest.fixture
def n(tg: FakeTelegram) -> Normalizer:
    me = User(tg.bot_id, "Chorus", is_bot=True, username="chorus_bot")
    commands = {"post": "post", "image": "image", "help": "help", "prompt": "prompt", "my_cmd": "my-cmd"}
    return Normalizer(me, commands, _is_moderator)


@pytest.fixture
def people(tg: FakeTelegram) -> dict[str, int]:
    ADMINS.clear()
    alice = int(tg.add_user("Alice", username="alice_w")["id"])
    bob = int(tg.add_user("Bob")["id"])
    other_bot = int(tg.add_user("Helper", username="helper_bot", is_bot=True)["id"])
    group = int(tg.add_chat("supergroup", members=[alice, bob, other_bot])["id"])
    ADMINS.add(bob)
    return {"alice": alice, "bob": bob, "bot": other_bot, "group": group}


async def _event(n: Normalizer, update: JSON, **kw: Any) -> Event | None:
    parsed = Update.de_json(update, None)
    message = parsed.message or parsed.channel_post or parsed.edited_message or parsed.edited_channel_post
    assert message is not None
    return await n.message(message, **kw)


@pytest.mark.parametrize(
    ("text", "kind", "command", "args"),
    [
        ("/post@chorus_bot our launch", EventKind.COMMAND, "post", "our launch"),
        ("/post our launch", EventKind.COMMAND, "post", "our launch"),
        ("/POST@Chorus_Bot  big news ", EventKind.COMMAND, "post", "big news"),
        ("/my_cmd x", EventKind.COMMAND, "my-cmd", "x"),  # "-" is "_" on Telegram
        ("/post@helper_bot our launch", EventKind.MESSAGE, None, ""),  # for another bot
        ("/weather", EventKind.MESSAGE, None, ""),  # unknown and not addressed to us: someone else's
        ("/weather@chorus_bot", EventKind.COMMAND, "weather", ""),  # ours: the router explains
        ("/start", EventKind.COMMAND, "help", ""),
        ("say /post later", EventKind.MESSAGE, None, ""),  # not at the start
    ],
)
async def test_commands_in_groups(
    tg: FakeTelegram, n: Normalizer, people: dict[str, int], text: str, kind: EventKind, command: str | None,
    args: str,
) -> None:  # fmt: skip
    event = await _event(n, tg.user_message(people["group"], people["alice"], text))
    assert event is not None and event.kind is kind
    assert (event.command, event.args) == (command, args)
    assert event.community == event.channel == str(people["group"]) and not event.private


async def test_mentions_are_stripped_with_utf16_offsets(
    tg: FakeTelegram, n: Normalizer, people: dict[str, int]
) -> None:
    update = tg.user_message(people["group"], people["alice"], "👩‍👩‍👧 hey @Chorus_Bot write about 🎉 day")
    event = await _event(n, update)
    assert event is not None and event.kind is EventKind.MENTION
    assert event.text == "👩‍👩‍👧 hey write about 🎉 day"
    assert event.author.id == str(people["alice"]) and event.author.name == "Alice"
    assert not event.author.is_moderator
    assert event.message_id == f"{people['group']}:{update['message']['message_id']}"
    by_name = tg.text_mention(people["group"], people["bob"], "Chorus, draft the notes", tg.bot_id)
    named = await _event(n, by_name)
    assert named is not None and named.kind is EventKind.MENTION and named.text == ", draft the notes"
    assert named.author.is_moderator  # Bob administers the group
    other = await _event(n, tg.user_message(people["group"], people["alice"], "ask @alice_w instead"))
    assert other is not None and other.kind is EventKind.MESSAGE


async def test_replies_to_the_bot_are_mentions_and_carry_the_draft(
    tg: FakeTelegram, n: Normalizer, people: dict[str, int]
) -> None:
    group = people["group"]
    draft = tg._new_message(tg.chats[group], tg.bot_user, text="Draft v1")  # as if the bot had sent it
    event = await _event(n, tg.user_message(group, people["alice"], "shorter", draft["message_id"]))
    assert event is not None and event.kind is EventKind.MENTION and event.text == "shorter"
    assert event.reply_to is not None and event.reply_to.from_bot
    assert (event.reply_to.message_id, event.reply_to.text) == (f"{group}:{draft['message_id']}", "Draft v1")
    theirs = tg.user_message(group, people["bob"], "our roadmap is ...")["message"]["message_id"]
    plain = await _event(n, tg.user_message(group, people["alice"], "nice", theirs))
    assert plain is not None and plain.kind is EventKind.MESSAGE and not plain.reply_to.from_bot  # type: ignore[union-attr]
    asked = await _event(n, tg.user_message(group, people["alice"], "@chorus_bot reply to this", theirs))
    assert asked is not None and asked.kind is EventKind.MENTION
    assert (
        asked.reply_to is not None
        and asked.reply_to.text == "our roadmap is ..."
        and not asked.reply_to.from_bot
    )


async def test_topics_private_chats_bots_and_anonymous_admins(
    tg: FakeTelegram, n: Normalizer, people: dict[str, int]
) -> None:
    forum = int(tg.add_chat("supergroup", is_forum=True, members=[people["alice"]])["id"])
    topic = tg.add_topic(forum, "Launch")
    in_topic = await _event(
        n, tg.user_message(forum, people["alice"], "@chorus_bot go", message_thread_id=topic)
    )
    assert in_topic is not None and in_topic.thread == str(topic)
    assert in_topic.reply_to is None  # the topic's root is not a reply
    private = await _event(n, tg.user_message(people["alice"], people["alice"], "a post about cats"))
    assert private is not None and private.kind is EventKind.MENTION and private.private
    assert private.author.is_moderator  # everyone moderates their own chat
    from_bot = await _event(n, tg.user_message(people["group"], people["bot"], "@chorus_bot /post spam"))
    assert from_bot is not None and from_bot.kind is EventKind.MESSAGE and from_bot.author.is_bot
    anonymous = tg.user_message(people["group"], people["alice"], "/prompt show")
    anonymous["message"]["sender_chat"] = tg.chats[people["group"]]  # "send as the group" (an admin)
    as_group = await _event(n, anonymous)
    assert (
        as_group is not None and as_group.author.is_moderator and as_group.author.id == str(people["group"])
    )


async def test_channel_posts_edits_photos_and_service_messages(
    tg: FakeTelegram, n: Normalizer, people: dict[str, int]
) -> None:
    channel = int(tg.add_chat("channel", title="News")["id"])
    command = await _event(n, tg.channel_post(channel, "/feed@chorus_bot add"))
    assert command is not None and command.kind is EventKind.COMMAND and command.command == "feed"
    assert command.author.id == str(channel) and command.author.is_moderator  # only admins post in channels
    post = tg.channel_post(channel, "@chorus_bot is not asked anything in a channel post")
    seen = await _event(n, post)
    assert seen is not None and seen.kind is EventKind.MESSAGE and seen.author.name == "News"
    edit = tg.edit_user_message(channel, post["channel_post"]["message_id"], "fixed typo")
    edited = await _event(n, edit, edited=True)
    assert edited is not None and edited.kind is EventKind.EDITED and edited.text == "fixed typo"
    assert edited.message_id == seen.message_id
    photo = tg.user_photo(people["group"], people["alice"], _png(), caption="/image@chorus_bot a cat")
    image = await _event(n, photo)
    assert image is not None and image.kind is EventKind.COMMAND and image.command == "image"
    assert image.args == "a cat" and image.attachments[0].kind == "image"
    assert image.attachments[0].url.startswith("tg-file:") and "bot" not in image.attachments[0].url
    pinned = tg.user_message(people["group"], people["alice"], "x")
    del pinned["message"]["text"]
    pinned["message"]["pinned_message"] = {"message_id": 1, "date": 0, "chat": tg.chats[people["group"]]}
    assert await _event(n, pinned) is None


async def test_reactions_become_one_event_per_change(
    tg: FakeTelegram, n: Normalizer, people: dict[str, int]
) -> None:
    group = people["group"]
    mid = tg.user_message(group, people["bob"], "hello")["message"]["message_id"]
    tg.react(group, mid, people["alice"], ["👍", "🔥"])
    update = Update.de_json(tg.react(group, mid, people["alice"], ["🔥", "🎉"]), None)
    assert update.message_reaction is not None
    events = n.reactions(update.message_reaction)
    assert [(e.kind, e.reaction, e.reaction_delta) for e in events] == [
        (EventKind.REACTION, "🎉", 1),
        (EventKind.REACTION, "👍", -1),
    ]
    assert all(e.message_id == f"{group}:{mid}" and e.author.id == str(people["alice"]) for e in events)


async def test_a_press_becomes_a_choice_with_a_unique_message_id(
    tg: FakeTelegram, n: Normalizer, people: dict[str, int]
) -> None:
    group = people["group"]
    draft = tg._new_message(tg.chats[group], tg.bot_user, text="Draft", reply_markup={"inline_keyboard": []})
    tg._sent[(group, draft["message_id"])] = None  # type: ignore[assignment]  # the bot's own message
    first = Update.de_json(
        tg.press_button(group, draft["message_id"], people["bob"], "c1.x", check=False), None
    )
    second = Update.de_json(
        tg.press_button(group, draft["message_id"], people["bob"], "c1.x", check=False), None
    )
    assert first.callback_query is not None and second.callback_query is not None
    a = await n.choice(first.callback_query, "revise:d1")
    b = await n.choice(second.callback_query, "revise:d1")
    assert a.kind is EventKind.CHOICE and a.choice == "revise:d1" and a.author.is_moderator
    assert a.message_id != b.message_id  # pressing twice is two requests, not a repeat
    assert a.reply_to is not None and a.reply_to.message_id == f"{group}:{draft['message_id']}"


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()
