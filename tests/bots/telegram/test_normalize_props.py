"""Telegram updates -> Events for any text: Update JSON from FakeTelegram's world (Telegram's shape and its
own entity detection, offsets in UTF-16 units), parsed by python-telegram-bot, then normalised."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from telegram import Chat, Update, User

from bots.telegram.normalize import Normalizer
from core.contract import Event, EventKind
from tests.fakes.telegram_api import JSON, FakeTelegram

TG = FakeTelegram(token="7000001:AAF-fake", bot_username="chorus_bot")  # never started: world building only
ALICE = int(TG.add_user("Alice", username="alice_w")["id"])
GROUP = int(TG.add_chat("supergroup", members=[ALICE])["id"])
ME = User(TG.bot_id, "Chorus", is_bot=True, username="chorus_bot")
COMMANDS = {"post": "post", "image": "image", "help": "help", "my_cmd": "my-cmd"}
_OUR_MENTION = re.compile(r"(?<![A-Za-z0-9_@])@chorus_bot(?![A-Za-z0-9_@])", re.IGNORECASE)


async def _never_moderator(chat: Chat, user: User | None, sender_chat: Chat | None) -> bool:
    return chat.type == Chat.PRIVATE


NORMALIZER = Normalizer(ME, COMMANDS, _never_moderator)

# What people type: words, emoji and other astral characters (2 UTF-16 units: entity offsets shift),
# combining marks, commands, mentions of us and of others, markup-looking text, and anything at all.
_PIECES = st.sampled_from(
    [" ", "\n", "hello", "launch", "😀", "👩‍💻", "𝕏", "日本", "e\u0301", "/post", "/post@chorus_bot", "/image",
     "/weather", "@chorus_bot", "@Chorus_Bot", "@alice_w", "@x", "#tag", "<b>", "&amp;", "https://t.me/x",
     "/", "@", "_"]
)  # fmt: skip
texts = st.one_of(st.lists(_PIECES | st.text(max_size=4), min_size=1, max_size=40).map("".join), st.text())
plain = st.lists(
    st.sampled_from([" ", "word", "😀", "👩‍💻", "𝕏", "日本", "e\u0301", "#tag", "<i>", "&"]) | st.text(
        st.characters(blacklist_characters="@/\r", blacklist_categories=("Cs",)), max_size=4),
    max_size=20,
).map("".join)  # fmt: skip


async def _normalise(update: JSON) -> Event | None:
    parsed = Update.de_json(update, None)
    message = parsed.message
    assert message is not None
    return await NORMALIZER.message(message)


def _message(chat: int, text: str) -> JSON:
    return TG.user_message(chat, ALICE, text)


@given(text=texts)
async def test_any_group_message_becomes_one_well_formed_event(text: str) -> None:
    event = await _normalise(_message(GROUP, text))
    if not text:
        assert event is None
        return
    assert event is not None and event.kind in (EventKind.COMMAND, EventKind.MENTION, EventKind.MESSAGE)
    assert event.platform == "telegram" and event.community == event.channel == str(GROUP)
    assert not event.private and not event.author.is_moderator
    if event.kind is EventKind.COMMAND:
        assert text.startswith("/") and event.command is not None and event.command == event.command.lower()
        assert event.args == event.args.strip() and event.args in text
    if event.kind is EventKind.MENTION:
        assert _OUR_MENTION.search(text) is not None
        assert _OUR_MENTION.search(event.text) is None  # the mention itself is stripped...
    if event.kind is EventKind.MESSAGE:
        assert event.text == text  # ...and feed traffic is kept verbatim


@given(before=plain, after=plain, mention=st.sampled_from(["@chorus_bot", "@CHORUS_BOT", "@Chorus_bot"]))
async def test_the_mention_is_cut_at_the_right_utf16_offsets(before: str, after: str, mention: str) -> None:
    text = f"{before} {mention} {after}"
    event = await _normalise(_message(GROUP, text))
    assert event is not None and event.kind is EventKind.MENTION
    assert event.text == f"{before.rstrip(' ')} {after.lstrip(' ')}".strip()


@given(
    command=st.sampled_from(sorted(COMMANDS)), addressed=st.booleans(), args=plain,
    shout=st.booleans(),
)  # fmt: skip
async def test_commands_keep_their_arguments_exactly(
    command: str, addressed: bool, args: str, shout: bool
) -> None:
    word = "/" + (command.upper() if shout else command) + ("@chorus_bot" if addressed else "")
    event = await _normalise(_message(GROUP, f"{word} {args}"))
    assert event is not None and event.kind is EventKind.COMMAND
    assert event.command == COMMANDS[command] and event.args == args.strip()


@given(text=texts.filter(bool))
async def test_everything_in_a_private_chat_is_for_the_bot(text: str) -> None:
    event = await _normalise(_message(ALICE, text))
    assert event is not None and event.private and event.author.is_moderator
    assert event.kind in (EventKind.COMMAND, EventKind.MENTION)
