"""Discord messages -> Events for any text: MESSAGE_CREATE payloads from FakeDiscord's world, turned into
real discord.py objects by a real (unconnected) client's ConnectionState, then normalised."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bots.discord.normalize import Normalizer
from bots.discord.sdk import discord
from core.contract import EventKind
from tests.bots.discord.harness import APP_ID, BOT_ID, CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, TOKEN
from tests.fakes.discord_api import ROLE_MENTION_RE, SEND_MESSAGES, USER_MENTION_RE, FakeDiscord

DC = FakeDiscord(token=TOKEN, bot_id=BOT_ID, app_id=APP_ID)  # never started: payloads only
DC.add_guild(GUILD_ID, "Chorus HQ", bot_permissions=SEND_MESSAGES)
DC.add_channel(GUILD_ID, "general", channel_id=CHANNEL_ID)
DC.add_channel(GUILD_ID, "news", channel_id=OTHER_CHANNEL_ID)
ALICE = DC.add_member(GUILD_ID, username="alice")
BOB = DC.add_member(GUILD_ID, username="bob")
ROLE = DC.add_role(GUILD_ID, "Helpers")
OTHER_BOT = DC.add_member(GUILD_ID, DC.add_user(username="helper-bot", bot=True))
BOT_ROLE = next(int(r["id"]) for r in DC.guilds[GUILD_ID].roles.values() if r.get("managed"))

_CLIENT = discord.Client(intents=discord.Intents.all())
STATE = _CLIENT._connection
STATE.user = discord.ClientUser(state=STATE, data=DC.users[BOT_ID])
GUILD = STATE._get_create_guild(DC.guild_payload(GUILD_ID))
STATE._add_guild(GUILD)
CHANNEL = GUILD.get_channel(CHANNEL_ID)
NORMALIZER = Normalizer(BOT_ID, ["Helpers"])
_RAW_MENTION = re.compile(r"<@[!&]?\d+>|<#\d+>")

_PIECES = st.sampled_from(
    [" ", "  ", "\n", "hi", "launch", "😀", "日本", f"<@{BOT_ID}>", f"<@!{BOT_ID}>", f"<@{ALICE}>", f"<@!{BOB}>",
     f"<@&{ROLE}>", f"<@&{BOT_ROLE}>", f"<#{OTHER_CHANNEL_ID}>", "<#1>", "<@999>", "<@&5>", "@everyone", "@here",
     "**bold**", "`code`", "> quote", "<", ">", "@", "#"]
)  # fmt: skip
texts = st.one_of(st.lists(_PIECES | st.text(max_size=4), max_size=40).map("".join), st.text(max_size=200))


def _message(text: str, author: int = ALICE) -> discord.Message:
    payload = DC._message_payload(
        CHANNEL_ID, author, text,
        mentions=[int(m) for m in USER_MENTION_RE.findall(text) if int(m) in DC.users],
        mention_roles=[int(r) for r in ROLE_MENTION_RE.findall(text)],
        mention_everyone="@everyone" in text or "@here" in text,
    )  # fmt: skip
    return discord.Message(state=STATE, channel=CHANNEL, data=payload)  # type: ignore[arg-type]


@given(text=texts)
async def test_any_message_becomes_one_well_formed_event(text: str) -> None:
    message = _message(text)
    event = await NORMALIZER.message(message)
    addressed = any(u.id == BOT_ID for u in message.mentions) or any(
        r.id == BOT_ROLE for r in message.role_mentions
    )
    if event is None:
        assert not addressed and not text.strip()  # only empty feed traffic is dropped
        return
    assert event.platform == "discord" and event.community == str(GUILD_ID)
    assert event.channel == str(CHANNEL_ID) and event.author.id == str(ALICE)
    assert not event.author.is_moderator
    if addressed:
        assert event.kind is EventKind.MENTION
        # every mention reads as a name: a request copied elsewhere can ping nobody
        assert not _RAW_MENTION.search(event.text), event.text
        assert str(BOT_ID) not in event.text and event.text == event.text.strip()
    else:
        assert event.kind is EventKind.MESSAGE and event.text == text


@given(text=texts)
async def test_other_bots_never_talk_to_us(text: str) -> None:
    assert await NORMALIZER.message(_message(text, author=OTHER_BOT)) is None
