"""The console's "SDK object" is a typed line: any line becomes at most one well-formed Event."""

from __future__ import annotations

import io
import re
import unicodedata
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from bots.console.adapter import ConsolePlatform
from bots.console.config import ConsoleSettings
from core.contract import DirectMessage, EventKind, Post, Reply
from core.settings import Settings
from core.text import clean

_PIECES = st.sampled_from(
    [" ", "\n", "/", "/help", "/post", "/Feed", "/x-y", "@chorus", "@Chorus", "@chorusbot", "#1 ", "#99 ", "^ ",
     "hello", "😀", "\t", "-", "_"]
)  # fmt: skip
_OURS = re.compile(r"@chorus\b", re.IGNORECASE)
lines = st.one_of(st.lists(_PIECES | st.text(max_size=4), max_size=20).map("".join), st.text(max_size=100))


def _console() -> ConsolePlatform:
    services = SimpleNamespace(settings=Settings(_env_file=None))  # to_event reads nothing else
    return ConsolePlatform(ConsoleSettings(), services, stdin=io.StringIO(), stdout=io.StringIO())  # type: ignore[arg-type]


@given(line=lines)
def test_any_line_is_at_most_one_well_formed_event(line: str) -> None:
    console = _console()
    event = console.to_event(line)
    if not line.strip():
        assert event is None
        return
    if event is None:  # "#3 text" when there is no message #3: said so, nothing published
        assert "to reply to" in console.stdout.getvalue()  # type: ignore[attr-defined]
        return
    assert event.platform == "console" and event.message_id
    if event.kind is EventKind.COMMAND:
        assert line.lstrip().startswith("/") and event.command == (event.command or "").lower()
        assert event.command and event.command[0].isalpha()
    elif event.kind is EventKind.MENTION:
        assert _OURS.search(line) and event.text == event.text.strip()
        assert not _OURS.search(event.text)
    else:
        assert event.kind is EventKind.MESSAGE and event.text == line


@given(lines=st.lists(lines.filter(str.strip), min_size=2, max_size=10))
def test_every_line_gets_its_own_message_id(lines: list[str]) -> None:
    console = _console()
    ids = [e.message_id for e in map(console.to_event, lines) if e is not None]
    assert len(ids) == len(set(ids))


@given(text=st.text(max_size=200), kind=st.sampled_from(["reply", "post", "dm"]))
async def test_what_the_bot_prints_cannot_drive_the_terminal(text: str, kind: str) -> None:
    console = _console()
    where = {"platform": "console", "community": "local", "channel": "console"}
    action = (
        Reply(**where, text=text)
        if kind == "reply"
        else Post(**where, text=text)
        if kind == "post"
        else DirectMessage(**where, user="me", text=text)
    )
    await console.deliver(action, _no_blobs)
    shown = console.stdout.getvalue()  # type: ignore[attr-defined]
    # no escape sequences, carriage returns or other controls from model or member text reach the terminal
    assert all(ch in "\n\t" or unicodedata.category(ch) != "Cc" for ch in shown), repr(shown)
    assert shown.startswith("[#1] chorus> ")
    assert "".join(clean(text).split()) in "".join(shown.split())


async def _no_blobs(blob: str) -> bytes:
    raise KeyError(blob)
