"""Plain-text helpers shared by the assistant, the digests and delivery: measuring, cleaning and splitting.

Limits differ per platform and X weighs characters (URLs count 23, wide characters 2), so every helper
takes a ``measure`` function instead of assuming ``len``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable


def _shim_pkg_resources() -> None:
    """twitter-text-parser reads its emoji table with ``pkg_resources.resource_string``, which modern
    setuptools no longer ships; provide just that function from importlib.resources."""
    try:
        import pkg_resources  # type: ignore[import-not-found]  # noqa: F401, PLC0415
    except ImportError:
        import sys  # noqa: PLC0415
        import types  # noqa: PLC0415
        from pathlib import Path  # noqa: PLC0415

        shim = types.ModuleType("pkg_resources")

        def resource_string(module: str, name: str) -> bytes:
            return (Path(str(sys.modules[module].__file__)).parent / name).read_bytes()

        shim.resource_string = resource_string  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim


_shim_pkg_resources()
from twitter_text import parse_tweet  # noqa: E402

Measure = Callable[[str], int]

# Zero-width and bidirectional controls: invisible, used to smuggle text past filters or flip its display.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
# Mass pings and role/user mention syntax of the three platforms.
_MASS_PING = re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE)
_DISCORD_MENTION = re.compile(r"<@[!&]?\d+>|<#\d+>")
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+")
# between two sentences (after the end mark and a closing quote or bracket, if any) or two lines
_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?…。！？])|(?<=[.!?…。！？][\"')\]]))\s+|\n+")


def x_weighted_length(text: str) -> int:
    """X's own counting (twitter-text): URLs count 23, CJK and emoji count 2."""
    return int(parse_tweet(text).weightedLength)


def utf16_length(text: str) -> int:
    """Telegram's counting: UTF-16 code units, so characters outside the BMP (most emoji) count 2."""
    return len(text.encode("utf-16-le")) // 2


def clean(text: str) -> str:
    """Strip invisible/bidi controls and other control characters, normalise to NFC."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def defuse_mentions(text: str) -> str:
    """Make @everyone/@here and raw role/user mentions inert (a zero-width joiner after the @).

    Delivery also sends with allowed_mentions that cannot ping; this keeps the text itself harmless when
    it is shared to another platform or read back into the feed.
    """
    text = _MASS_PING.sub(lambda m: "@\u2060" + m.group(1), text)
    return _DISCORD_MENTION.sub(lambda m: m.group(0).replace("<@", "<@\u2060"), text)


def truncate(text: str, limit: int, measure: Measure = len, ellipsis: str = "…") -> str:
    """Cut to ``limit`` on a sentence boundary if one is near, else on a word, else hard."""
    if measure(text) <= limit:
        return text
    budget = limit - measure(ellipsis)
    cut = _fit_prefix(text, budget, measure)
    head = text[:cut]
    sentence = _last_sentence_end(head)
    if sentence > len(head) // 2:
        return head[:sentence].rstrip()
    space = head.rfind(" ")
    if space > len(head) // 2:
        head = head[:space]
    return head.rstrip() + ellipsis


def split_text(text: str, limit: int, measure: Measure = len) -> list[str]:
    """Split into chunks of at most ``limit``: on paragraphs, then sentences, then words, then hard."""
    text = text.strip()
    if not text:
        return []
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, limit, measure):
        candidate = f"{current}{piece}" if current else piece.lstrip()
        if measure(candidate.rstrip()) <= limit:
            current = candidate
        else:
            if current.strip():
                chunks.append(current.rstrip())
            current = piece.lstrip()
    if current.strip():
        chunks.append(current.rstrip())
    return chunks


def number_parts(parts: list[str], limit: int, measure: Measure = len) -> list[str]:
    """Number thread parts "1/3 …"; re-splits if the prefix pushes a part over the limit."""
    if len(parts) <= 1:
        return parts
    body = "\n\n".join(parts)
    for reserve in range(6, limit // 2, 4):
        pieces = split_text(body, limit - reserve, measure)
        total = len(pieces)
        numbered = [f"{i}/{total} {p}" for i, p in enumerate(pieces, 1)]
        if all(measure(p) <= limit for p in numbered):
            return numbered
    raise ValueError("limit too small to number parts")


def _pieces(text: str, limit: int, measure: Measure) -> list[str]:
    """Sentence-sized pieces (keeping their trailing whitespace); over-long ones are cut on words."""
    out: list[str] = []
    for para_i, para in enumerate(re.split(r"(\n\s*\n)", text)):
        if para_i % 2 == 1:  # the separator itself
            if out:
                out[-1] += para
            continue
        start = 0
        for m in _SENTENCE_END.finditer(para):
            out.extend(_cut_long(para[start : m.end()], limit, measure))
            start = m.end()
        if start < len(para):
            out.extend(_cut_long(para[start:], limit, measure))
    return out


def _cut_long(piece: str, limit: int, measure: Measure) -> list[str]:
    if measure(piece.rstrip()) <= limit:
        return [piece]
    out: list[str] = []
    rest = piece
    while measure(rest.rstrip()) > limit:
        cut = _fit_prefix(rest, limit, measure)
        space = rest.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space + 1
        out.append(rest[:cut])
        rest = rest[cut:]
    if rest.strip():
        out.append(rest)
    return out


def _fit_prefix(text: str, limit: int, measure: Measure) -> int:
    """Largest ``n`` with ``measure(text[:n]) <= limit`` (binary search; measure is monotone)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return max(lo, 1) if limit > 0 else 0


def _last_sentence_end(text: str) -> int:
    end = 0
    for m in _SENTENCE_END.finditer(text + " "):
        end = m.start()
    return end


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (a line break ends one too), stripped; empty ones dropped."""
    return [part.strip() for part in _SENTENCE_BREAK.split(text) if part.strip()]


def leading_sentences(text: str, limit: int, measure: Measure = len) -> str:
    """The leading whole sentences of ``text`` that fit in ``limit`` ("" when the first does not): a
    summary cut short mid-sentence reads as broken, one sentence fewer does not."""
    kept = ""
    for sentence in sentences(text):
        candidate = f"{kept} {sentence}".strip()
        if measure(candidate) > limit:
            break
        kept = candidate
    return kept


def drop_sentences(text: str, bad: Callable[[str], bool]) -> str:
    """Remove the sentences ``bad`` picks (leaks of the system prompt, invented facts); paragraphs stay."""
    kept = []
    for para in re.split(r"\n\s*\n", text):
        lines = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", para) if s.strip()]
        good = [s for s in lines if not bad(s)]
        if good:
            kept.append(" ".join(good) if len(good) < len(lines) else para.strip())
    return "\n\n".join(kept)
