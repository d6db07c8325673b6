"""X API v2 payloads -> Events for any tweet: whatever X sends (fields missing, odd dates, deleted parents,
long posts), a mention becomes one MENTION Event whose text is the request, without the bot's handle."""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bots.x.api import Me
from bots.x.normalize import Accounts, Includes, mention_event, request_text
from core.contract import EventKind

ME = Me(id="100", username="chorus_bot")
OWNERS = Accounts(["@alice"])
_OUR_HANDLE = re.compile(r"(?<![\w@＠])[@＠]chorus_bot\b", re.IGNORECASE)
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")

_PIECES = st.sampled_from(
    [" ", "\n", "@chorus_bot", "@CHORUS_BOT", "＠chorus_bot", "@alice", "@bob_99", "image", "thread about",
     "cats", "&amp;", "&lt;3", "https://t.co/abc", "😀", "日本", "\u200b", "\u202e", "me@chorus_bot.example"]
)  # fmt: skip
texts = st.one_of(st.lists(_PIECES | st.text(max_size=4), max_size=30).map("".join), st.text(max_size=300))
ids = st.sampled_from(["100", "200", "300", "900", "901"]) | st.from_regex(r"\A[1-9][0-9]{0,18}\Z")


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


tweets = st.builds(
    lambda base, extra: {**extra, **base},
    st.fixed_dictionaries({"id": ids, "text": texts}),
    _optional(
        author_id=ids,
        conversation_id=ids,
        in_reply_to_user_id=ids,
        created_at=st.sampled_from(["2025-01-02T03:04:05.000Z", "", "yesterday", "2025-13-45T99:00:00Z"])
        | st.text(max_size=10),
        note_tweet=st.fixed_dictionaries({}, optional={"text": texts}),
        referenced_tweets=st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["replied_to", "quoted", "retweeted"]), "id": ids}
            ),
            max_size=3,
        ),
        display_text_range=st.lists(st.integers(0, 400), min_size=0, max_size=2),
        attachments=st.fixed_dictionaries(
            {}, optional={"media_keys": st.lists(st.text(max_size=6), max_size=3)}
        ),
    ),
)
includes = st.fixed_dictionaries(
    {},
    optional={
        "users": st.lists(
            st.fixed_dictionaries({"id": ids, "username": st.from_regex(r"\A\w{1,15}\Z")}), max_size=4
        ),
        "tweets": st.lists(tweets, max_size=4),
        "media": st.lists(
            st.fixed_dictionaries(
                {"media_key": st.text(max_size=6)},
                optional={
                    "type": st.sampled_from(["photo", "video", "animated_gif", "?"]),
                    "url": st.text(max_size=30),
                    "alt_text": st.text(max_size=300),
                },
            ),
            max_size=3,
        ),
    },
)


@given(tweet=tweets, found=includes)
def test_any_mention_payload_becomes_one_clean_request(tweet: dict[str, Any], found: dict[str, Any]) -> None:
    event = mention_event(tweet, Includes.of({"includes": found}), me=ME, owners=OWNERS)
    assert event.kind is EventKind.MENTION and event.platform == "x" and event.community == ME.id
    assert event.message_id == tweet["id"] and event.channel == str(
        tweet.get("conversation_id") or tweet["id"]
    )
    assert not _OUR_HANDLE.search(event.text), event.text
    assert not _INVISIBLE.search(event.text) and event.text == event.text.strip()
    assert math.isfinite(event.created_at)
    assert all(len(a.name) <= 200 for a in event.attachments)
    if event.reply_to is not None:
        assert event.reply_to.from_bot == (event.reply_to.author_id == ME.id)


@given(text=texts)
def test_request_text_never_keeps_our_handle(text: str) -> None:
    out = request_text(text, ME.username)
    assert not _OUR_HANDLE.search(out) and out == out.strip()
