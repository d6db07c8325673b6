from __future__ import annotations

import pytest

from bots.discord.markup import escape, unescape
from tests.bots.contract import HOSTILE

CASES = [
    HOSTILE,
    "**bold** __underline__ ~~strike~~ ||spoiler|| `code` ```block```",
    "# Header\n## Sub\n-# subtext\n- item\n+ item\n* item\n1. first\n  2) second\n> quote\n>>> all quoted",
    "<@123> <@!123> <@&456> <#789> <:emoji:1> <t:1700000000:R> </cmd:1>",
    "C:\\Users\\me \\* already escaped \\_",
    "see https://example.com/a_b*c~d and [label](https://example.com/x_y)",
    "emoji 🎉, accents é, CJK 漢字, and a trailing backslash \\",
    "",
]


@pytest.mark.parametrize("text", CASES)
def test_escaped_text_shows_exactly_as_written(text: str) -> None:
    assert unescape(escape(text)) == text


def test_markup_characters_are_escaped() -> None:
    escaped = escape("**bold** [a](https://e.x) <@&1> ||s|| # h")
    assert escaped == "\\*\\*bold\\*\\* \\[a\\](https://e.x) \\<@&1\\> \\|\\|s\\|\\| # h"
    assert escape("# title\n- item\n3. three") == "\\# title\n\\- item\n3\\. three"


def test_urls_stay_clickable() -> None:
    url = "https://example.com/some_path/*x*?q=a_b"
    assert url in escape(f"read {url} now")


def test_unescape_only_drops_backslashes_before_punctuation() -> None:
    assert unescape("\\*a\\b \\\\ \\1") == "*a\\b \\ \\1"
