"""Escaping and refs: what every outgoing string goes through before Telegram parses it as HTML."""

from __future__ import annotations

from bots.telegram.markup import (
    chat_id,
    escape,
    html_text,
    message_ref,
    parse_ref,
    silence_mentions,
    utf16_slice,
)
from tests.fakes.telegram_api import detect_entities, parse_html

HOSTILE = 'Tom & Jerry <b>bold?</b> &amp; &nbsp; <a href="x">y</a> </i> <tg-spoiler> *md* `c` \u202eevil'


def test_escaped_text_parses_back_to_exactly_the_original() -> None:
    text, entities = parse_html(escape(HOSTILE), strict_entities=True)  # the fake is as strict as TDLib
    assert text == HOSTILE and entities == []


def test_mentions_never_ping_but_stay_readable() -> None:
    text = "Thanks @alice_w and @everyone! Mail me at bob@example.org, see @here."
    silenced = silence_mentions(text)
    assert silenced.replace("\u2060", "") == text
    assert [e for e in detect_entities(silenced) if e["type"] == "mention"] == []
    assert "bob@example.org" in silenced  # e-mail addresses are not mentions
    assert parse_html(html_text("<@123> @channel"))[0].replace("\u2060", "") == "<@123> @channel"


def test_refs_name_a_message_in_its_chat() -> None:
    assert message_ref(-1001234, 56) == "-1001234:56"
    assert parse_ref("-1001234:56") == (-1001234, 56)
    assert parse_ref("-1001234:56:q4400000001") == (-1001234, 56)  # a press's event id
    assert parse_ref("@news:7") == ("@news", 7)
    assert parse_ref("console-1") is None and parse_ref(None) is None and parse_ref("a:b") is None
    assert chat_id("-100123") == -100123 and chat_id("@chorus_news") == "@chorus_news"


def test_utf16_slices_follow_telegram_offsets() -> None:
    text = "😀 hi @bot!"  # the emoji is two UTF-16 units
    assert utf16_slice(text, 6, 4) == ("😀 hi ", "@bot", "!")
