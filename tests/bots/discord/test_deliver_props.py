"""Actions -> discord.py messages for any text: markdown escaped so it shows as written (URLs kept), within
2000 characters of content (or an embed's 4096), sent with mentions that cannot ping; buttons whose custom
ids fit 100 characters and come back as the payload."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bots.discord import buttons
from bots.discord.adapter import DiscordPlatform
from bots.discord.deliver import ALLOWED_MENTIONS, MAX_CONTENT, text_message
from bots.discord.markup import escape, unescape
from core.contract import Reply
from core.platform import degrade
from core.redis_server import EmbeddedRedis, connect
from tests.bots.discord.test_normalize_props import texts

long_texts = st.one_of(texts, st.builds(lambda t, n: t * n, texts, st.integers(1, 100)))
_URL = re.compile(r"https?://[^\s<>\\]+")
MARKUP = set("\\*_~`|>[]<")


@given(text=texts | st.text())
def test_escaped_markdown_reads_back_as_written(text: str) -> None:
    assert unescape(escape(text)) == text


@given(text=texts | st.text())
def test_no_markup_character_is_left_unescaped_outside_urls(text: str) -> None:
    out = escape(text)
    rest = _URL.sub("", out)
    i = 0
    while i < len(rest):
        if rest[i] == "\\":
            i += 2  # an escape and the character it protects
            continue
        assert rest[i] not in MARKUP, (text, out)
        i += 1


@given(text=long_texts, draft=st.booleans())
def test_messages_fit_and_ping_nobody(text: str, draft: bool) -> None:
    reply = Reply(
        platform="discord", community="g", channel="c", text=text, ref="draft:abc" if draft else None
    )
    for part in degrade(reply, DiscordPlatform.capabilities):
        assert isinstance(part, Reply)
        message = text_message(part.text, 0x5865F2 if draft else None)
        kwargs = message.kwargs()
        mentions = kwargs["allowed_mentions"]
        assert mentions is ALLOWED_MENTIONS
        assert not mentions.everyone and not mentions.roles and not mentions.users
        if message.content is not None:
            assert len(message.content) <= MAX_CONTENT and message.embed is None
        else:
            assert message.embed is not None and len(message.embed.description or "") <= 4096
        shown = unescape(message.content if message.content is not None else message.embed.description or "")  # type: ignore[union-attr]
        assert shown == part.text


@given(payload=st.text(min_size=1, max_size=300), user=st.none() | st.from_regex(r"\A[1-9][0-9]{16,19}\Z"))
async def test_button_ids_fit_and_resolve_to_the_payload(
    redis_server: EmbeddedRedis, payload: str, user: str | None
) -> None:
    redis = connect(redis_server.url)
    try:
        custom_id = await buttons.custom_id_for(redis, payload, user)
        assert len(custom_id) <= buttons.MAX_CUSTOM_ID
        pressed = await buttons.resolve(redis, custom_id)
        assert pressed == buttons.Pressed(payload=payload, allowed_user=user)
    finally:
        await redis.aclose()
