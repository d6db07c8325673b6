"""Properties of the text helpers every adapter relies on: splitting loses nothing and respects the limit in
the platform's own units, truncation fits, mentions are defused, cleaning is stable."""

from __future__ import annotations

import re

from hypothesis import assume, given
from hypothesis import strategies as st

from core.text import (
    clean,
    defuse_mentions,
    number_parts,
    split_text,
    truncate,
    utf16_length,
    x_weighted_length,
)

MEASURES = {"len": len, "utf16": utf16_length, "x": x_weighted_length}

# Text people and models write: words, punctuation that ends sentences, blank lines, emoji (2 UTF-16 units,
# 2 on X), CJK (2 on X), URLs (23 on X), mentions, and now and then anything at all.
_PIECES = st.sampled_from(
    [" ", "  ", "\n", "\n\n", "\t", ". ", "! ", "? ", "… ", "。", "word", "Chorus", "launch", "😀", "👩‍💻",
     "日本語", "é", "e\u0301", "https://example.com/a?b=c", "@everyone", "@here", "<@123>", "<@&456>", "#tag",
     "x" * 40, "🇩🇪"]
)  # fmt: skip
texts = st.one_of(st.lists(_PIECES | st.text(max_size=5), max_size=80).map("".join), st.text(max_size=300))
_MASS = re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE)
_RAW_DISCORD = re.compile(r"<@[!&]?\d+>")


def _visible(text: str) -> str:
    return "".join(text.split())


@given(text=texts, limit=st.integers(min_value=1, max_value=300), measure=st.sampled_from(sorted(MEASURES)))
def test_split_then_join_loses_no_text_and_each_part_fits(text: str, limit: int, measure: str) -> None:
    m = MEASURES[measure]
    # a single character wider than the limit (an emoji on X with limit 1) cannot be split further
    assume(all(m(ch) <= limit for ch in text))
    parts = split_text(text, limit, m)
    assert all(p and p == p.strip() for p in parts)
    assert all(m(p) <= limit for p in parts), [(p, m(p)) for p in parts if m(p) > limit]
    assert _visible("".join(parts)) == _visible(text)


@given(text=texts, limit=st.integers(min_value=2, max_value=300), measure=st.sampled_from(sorted(MEASURES)))
def test_truncate_fits_and_keeps_a_prefix(text: str, limit: int, measure: str) -> None:
    m = MEASURES[measure]
    assume(all(m(ch) <= limit - m("…") for ch in text) or m(text) <= limit)
    out = truncate(text, limit, m)
    assert m(out) <= limit
    if m(text) <= limit:
        assert out == text
    else:
        kept = out.removesuffix("…").rstrip()
        assert text.startswith(kept)


@given(parts=st.lists(texts.filter(str.strip), min_size=2, max_size=6), limit=st.integers(40, 300))
def test_numbered_thread_parts_fit(parts: list[str], limit: int) -> None:
    assume(all(x_weighted_length(ch) <= limit // 2 for p in parts for ch in p))
    numbered = number_parts(parts, limit, x_weighted_length)
    assert all(x_weighted_length(p) <= limit for p in numbered)
    total = len(numbered)
    assert all(p.startswith(f"{i}/{total} ") for i, p in enumerate(numbered, 1))
    assert _visible("".join(p.split(" ", 1)[1] for p in numbered)) == _visible("".join(parts))


@given(text=texts)
def test_defused_text_pings_nobody(text: str) -> None:
    out = defuse_mentions(text)
    assert not _MASS.search(out)
    assert not _RAW_DISCORD.search(out)
    assert out.replace("\u2060", "") == text.replace("\u2060", "")  # nothing but joiners added


@given(text=st.text(max_size=200))
def test_clean_is_idempotent_and_removes_controls(text: str) -> None:
    once = clean(text)
    assert clean(once) == once
    assert not re.search("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]", once)
    assert all(ch in "\n\t" or (ord(ch) >= 32 and not 0x7F <= ord(ch) <= 0x9F) for ch in once)
