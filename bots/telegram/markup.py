"""Telegram text rules in one place: HTML escaping, silenced mentions, UTF-16 spans and message refs.

Pure functions (no SDK): every user- or model-written string goes through ``html_text`` before it is sent
with parse_mode HTML, so nothing a person types can open a tag or an entity. Telegram message ids are only
unique within a chat, so the core sees them as ``<chat id>:<message id>`` refs.
"""

from __future__ import annotations

import re

from core.text import defuse_mentions, utf16_length

# Telegram links @username mentions (5-32 word characters, a few legacy ones shorter) and notifies them.
_AT_MENTION = re.compile(r"(?<![A-Za-z0-9_@])@(?=[A-Za-z0-9_]{3,32}(?![A-Za-z0-9_]))")
WORD_JOINER = "\u2060"


def escape(text: str) -> str:
    """Escape for parse_mode HTML: only ``&``, ``<`` and ``>`` are special outside attributes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def silence_mentions(text: str) -> str:
    """The bot never pings anyone: a word joiner after ``@`` keeps the name readable but unlinked."""
    return _AT_MENTION.sub("@" + WORD_JOINER, defuse_mentions(text))


def html_text(text: str) -> str:
    """A plain string, ready to send with parse_mode HTML."""
    return escape(silence_mentions(text))


def utf16_slice(text: str, offset: int, length: int) -> tuple[str, str, str]:
    """Split ``text`` around an entity given in UTF-16 units: (before, inside, after)."""
    raw = text.encode("utf-16-le")
    start, end = 2 * offset, 2 * (offset + length)
    decode = lambda b: b.decode("utf-16-le", errors="replace")  # noqa: E731
    return decode(raw[:start]), decode(raw[start:end]), decode(raw[end:])


def fits(text: str, limit: int) -> bool:
    return utf16_length(text) <= limit


def message_ref(chat_id: int | str, message_id: int | str) -> str:
    """How the core names a Telegram message: ``<chat id>:<message id>``."""
    return f"{chat_id}:{message_id}"


def parse_ref(ref: str | None) -> tuple[int | str, int] | None:
    """(chat id, message id) from a ref; extra parts (e.g. a callback query id) are ignored."""
    if not ref:
        return None
    parts = ref.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return chat_id(parts[0]), int(parts[1])


def chat_id(value: str) -> int | str:
    """Numeric chat ids as int, ``@channelname`` as is (the Bot API accepts both)."""
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() else text
