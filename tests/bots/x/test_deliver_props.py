"""Actions -> tweets for any text: every tweet within X's weighted 280, @handles inert (nobody is notified),
no mass ping, and the tweets together say everything the Action said."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bots.x.api import Me
from bots.x.config import XSettings
from bots.x.deliver import MAX_WEIGHT, Deliverer
from core.text import x_weighted_length
from tests.bots.x.test_normalize_props import texts

# What X links (and notifies): an @ or ＠ not after a word character or another @, then a name character.
_LINKABLE = re.compile(r"(?<![\w@＠])[@＠][A-Za-z0-9_]")
_MASS = re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE)
JOINER = "\u2060"
long_texts = st.one_of(texts, st.builds(lambda t, n: t * n, texts, st.integers(1, 12)))


def _deliverer(allow_mentions: bool = False) -> Deliverer:
    settings = XSettings(_env_file=None, X_ALLOW_MENTIONS=allow_mentions)  # type: ignore[call-arg]
    # fit() is pure: it needs neither the API, Redis nor the post budget
    return Deliverer(None, None, settings, Me(id="100", username="chorus_bot"), None)  # type: ignore[arg-type]


DELIVERER = _deliverer()


def _visible(text: str) -> str:
    return "".join(text.replace(JOINER, "").split())


@given(text=long_texts)
def test_tweets_fit_ping_nobody_and_say_everything(text: str) -> None:
    tweets = DELIVERER.fit(text)
    assert all(0 < x_weighted_length(t) <= MAX_WEIGHT for t in tweets)
    for tweet in tweets:
        assert not _LINKABLE.search(tweet), tweet
        assert not _MASS.search(tweet)
    assert _visible("".join(tweets)) == _visible(text)
