"""Actions -> Bot API requests for any text: HTML that opens no tag and pings nobody, within Telegram's
limits in UTF-16 units, nothing lost; buttons whose callback data fits 64 bytes and resolves to the payload.

The Deliverer talks to a recording bot here (requests as python-telegram-bot would send them); the same
Deliverer against the loopback Bot API is tested in test_deliver.py. Buttons use the real Redis.
"""

from __future__ import annotations

import html
import re
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bots.telegram.buttons import Buttons
from bots.telegram.config import FACTS
from bots.telegram.deliver import MAX_CAPTION, MAX_TEXT, Deliverer, caption_html
from bots.telegram.markup import html_text, silence_mentions, utf16_slice
from core.contract import Choice, OfferChoices, Reply, SendImage
from core.platform import degrade
from core.redis_server import EmbeddedRedis, connect
from core.text import utf16_length
from tests.bots.telegram.test_normalize_props import texts

CAPABILITIES = FACTS.capabilities

# Telegram links these by itself (see the fake's entity detection): none may survive in what we send.
_LINKABLE = re.compile(r"(?<![A-Za-z0-9_@])@[A-Za-z0-9_]{3,32}(?![A-Za-z0-9_@])|@(everyone|here)\b", re.I)
_ENTITY = re.compile(r"&(amp|lt|gt);")
JOINER = "\u2060"
long_texts = st.one_of(texts, st.builds(lambda t, n: t * n, texts, st.integers(1, 300)))


class RecordingBot:
    """What the Deliverer asks python-telegram-bot to send."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_message(self, chat_id: int | str, **kwargs: Any) -> SimpleNamespace:
        self.sent.append({"chat_id": chat_id, **kwargs})
        return SimpleNamespace(chat_id=chat_id, message_id=len(self.sent))


def _visible(sent_html: str) -> str:
    """What a reader sees of an HTML text we sent: entities decoded (no tags are expected in it)."""
    return html.unescape(sent_html)


def _assert_safe_html(sent_html: str) -> None:
    assert "<" not in sent_html and ">" not in sent_html  # no tag a person or model could open
    assert "&" not in _ENTITY.sub("", sent_html)  # every & is one of our own entities
    assert not _LINKABLE.search(_visible(sent_html)), sent_html


@given(text=texts)
def test_html_text_is_inert_and_reads_as_written(text: str) -> None:
    out = html_text(text)
    _assert_safe_html(out)
    assert _visible(out) == silence_mentions(text)
    assert _visible(out).replace(JOINER, "") == text.replace(JOINER, "")


@given(text=long_texts)
async def test_replies_fit_in_utf16_units_and_lose_nothing(text: str) -> None:
    bot = RecordingBot()
    deliverer = Deliverer(bot, None, None)  # type: ignore[arg-type]  # text needs neither buttons nor receipts
    for part in degrade(
        Reply(platform="telegram", community="-100", channel="-100", text=text), CAPABILITIES
    ):
        await deliverer.deliver(part, None)  # type: ignore[arg-type]
    shown = [_visible(s["text"]) for s in bot.sent]
    for s in bot.sent:
        _assert_safe_html(s["text"])
        assert s["parse_mode"] == "HTML"
    assert all(utf16_length(t) <= MAX_TEXT for t in shown)
    expected = "".join(text.split()) or "…"  # an empty text is sent as an ellipsis
    assert "".join("".join(shown).replace(JOINER, "").split()) == expected


@given(caption=long_texts, alt=texts)
def test_captions_fit_1024_units_with_only_our_quote_tag(caption: str, alt: str) -> None:
    image = SendImage(
        platform="telegram", community="-1", channel="-1", blob="b", caption=caption, alt_text=alt
    )
    fitted = degrade(image, CAPABILITIES)[0]
    assert isinstance(fitted, SendImage)
    out = caption_html(fitted.caption, fitted.alt_text)
    body = out.replace("<blockquote expandable>", "").replace("</blockquote>", "")
    _assert_safe_html(body)
    assert utf16_length(_visible(body)) <= MAX_CAPTION


@given(
    labels=st.lists(st.text(max_size=80), min_size=1, max_size=8),
    payloads=st.lists(st.text(min_size=1, max_size=200), min_size=8, max_size=8),
)
async def test_buttons_fit_64_bytes_and_resolve_to_their_payload(
    redis_server: EmbeddedRedis, labels: list[str], payloads: list[str]
) -> None:
    redis = connect(redis_server.url)
    try:
        bot = RecordingBot()
        buttons = Buttons(redis, ttl_s=60)
        choices = tuple(Choice(label=lbl or "x", payload=p) for lbl, p in zip(labels, payloads, strict=False))
        deliverer = Deliverer(bot, buttons, None)  # type: ignore[arg-type]
        await deliverer.deliver(
            OfferChoices(platform="telegram", community="-5", channel="-5", text="Pick", choices=choices),
            None,  # type: ignore[arg-type]
        )
        [sent] = bot.sent
        rows = sent["reply_markup"].inline_keyboard
        assert len(rows) == len(choices)
        for row, choice in zip(rows, choices, strict=True):
            [button] = row
            assert len(button.text) <= 64 and button.text
            assert len(button.callback_data.encode()) <= 64
            pressed = await buttons.resolve(-5, 1, button.callback_data)
            assert pressed is not None and pressed.payload == choice.payload
            assert await buttons.resolve(-5, 2, button.callback_data) is None  # not on another message
    finally:
        await redis.aclose()


@given(text=texts, data=st.data())
def test_utf16_slices_cut_exactly_at_entity_offsets(text: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, len(text)))
    offset, length = utf16_length(text[:i]), utf16_length(text[i:j])  # how Telegram gives entities
    assert utf16_slice(text, offset, length) == (text[:i], text[i:j], text[j:])
