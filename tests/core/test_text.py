from __future__ import annotations

import pytest

from core.text import (
    clean,
    defuse_mentions,
    leading_sentences,
    number_parts,
    sentences,
    split_text,
    truncate,
    x_weighted_length,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("see https://example.com/a/very/long/path/that/goes/on/and/on", 4 + 23),
        ("日本語", 6),  # CJK counts 2 each
        ("🎉", 2),  # emoji count 2
        ("a" * 280, 280),
    ],
)
def test_x_weighted_length_follows_x_rules(text: str, expected: int) -> None:
    assert x_weighted_length(text) == expected


def test_split_text_prefers_sentence_boundaries() -> None:
    text = "First sentence here. Second one is a bit longer! Third? " * 5
    parts = split_text(text, 60)
    assert all(len(p) <= 60 for p in parts)
    assert all(p.endswith((".", "!", "?")) for p in parts)
    assert " ".join(parts).split() == text.split()


def test_split_text_cuts_words_and_hard_when_needed() -> None:
    parts = split_text("x" * 250, 100)
    assert [len(p) for p in parts] == [100, 100, 50]
    words = split_text("word " * 100, 42)
    assert all(len(p) <= 42 and not p.startswith(" ") for p in words)
    assert "".join(words).replace(" ", "") == "word" * 100


def test_split_text_with_x_weights() -> None:
    text = "日本語のテキストです。" * 40
    parts = split_text(text, 280, x_weighted_length)
    assert len(parts) > 1
    assert all(x_weighted_length(p) <= 280 for p in parts)
    assert "".join(parts) == text


def test_number_parts_keeps_within_limit() -> None:
    parts = split_text("A sentence that says something. " * 30, 100)
    numbered = number_parts(parts, 100)
    assert numbered[0].startswith("1/")
    assert numbered[-1].startswith(f"{len(numbered)}/{len(numbered)} ")
    assert all(len(p) <= 100 for p in numbered)


def test_truncate_on_sentence_then_word() -> None:
    text = "Short one. " + "Then a very long sentence that keeps going and going " * 3
    cut = truncate(text, 40)
    assert len(cut) <= 40
    assert truncate("one two three four five six", 14) == "one two…"
    assert truncate("fits", 10) == "fits"


def test_clean_removes_invisible_and_bidi_controls() -> None:
    hostile = "pay\u200bpal \u202egnp.exe\u202c ok\x07"
    assert clean(hostile) == "paypal gnp.exe ok"


def test_defuse_mentions() -> None:
    out = defuse_mentions("hi @everyone and @here <@&123> <@456>")
    assert "@everyone" not in out and "@here" not in out
    assert "<@&123>" not in out and "<@456>" not in out


def test_sentences_split_after_end_marks_quotes_and_lines() -> None:
    text = 'The fair opens Saturday. "Bring a friend!" said Ana.\nTickets at the door。 次'
    assert sentences(text) == [
        "The fair opens Saturday.",
        '"Bring a friend!"',
        "said Ana.",
        "Tickets at the door。",
        "次",
    ]
    assert sentences("  \n ") == []


def test_leading_sentences_keeps_whole_sentences_that_fit() -> None:
    text = "One two three. Four five six. Seven."
    assert leading_sentences(text, 30) == "One two three. Four five six."
    assert leading_sentences(text, 14) == "One two three."
    assert leading_sentences(text, 10) == ""  # the first does not fit: nothing, not half of it
