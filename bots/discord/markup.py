"""Discord markdown: escape plain text so it shows exactly as written, and read it back.

Core text is plain; Discord renders markdown (bold, links, spoilers, headers, lists, mentions). Every
user or model string is escaped with a backslash before each character Discord could treat as markup;
URLs are left alone so they stay clickable. ``unescape`` is how Discord displays an escaped text (a
backslash before any ASCII punctuation shows that character), used to read bot messages back as text.
"""

from __future__ import annotations

import re

_URL = re.compile(r"https?://[^\s<>\\]+")
# Inline markup anywhere: emphasis, code, spoilers, quotes, masked links, <@mentions>/<t:stamps>/<:emoji:>.
_INLINE = re.compile(r"([\\*_~`|>\[\]<])")
# Block markup at the start of a line: headers/subtext (#, -#), lists (-, +), numbered lists (1.).
_LINE_START = re.compile(r"^([ \t]*)([#+-])", re.MULTILINE)
_NUMBERED = re.compile(r"^([ \t]*\d+)([.)])", re.MULTILINE)
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def escape(text: str) -> str:
    """Escape Discord markdown in ``text`` (URLs kept intact)."""
    out: list[str] = []
    last = 0
    for url in _URL.finditer(text):
        out.append(_escape_plain(text[last : url.start()]))
        out.append(url.group(0))
        last = url.end()
    out.append(_escape_plain(text[last:]))
    return _escape_lines("".join(out))


def _escape_plain(text: str) -> str:
    return _INLINE.sub(r"\\\1", text)


def _escape_lines(text: str) -> str:
    text = _NUMBERED.sub(r"\1\\\2", text)
    return _LINE_START.sub(r"\1\\\2", text)


def unescape(text: str) -> str:
    """What Discord shows for ``text``: a backslash before ASCII punctuation is dropped."""
    return _ESCAPED.sub(r"\1", text)
