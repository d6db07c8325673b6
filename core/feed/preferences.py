"""One person's feed preferences in one community, and how they change what that person sees.

Preferences are the default order (hot or new), muted words, authors, channels and platforms, and topic
weights learned from "more/less like this" and ``/feed steer``. They never change what is computed for
everyone (rankings, summaries, digests are shared); ``apply`` only filters and re-orders the stories a page,
a digest or a token feed already has, so personalisation costs no model call and no extra Redis read per
story.

Muting a word hides every story that contains it; muting an author, channel or platform removes that
source's items from a story (a story on Telegram and X stays, as its Telegram item, when X is muted) and
hides the story when nothing is left. Weights move a story up or down in ``hot`` and ``top`` orders by
``BOOST`` score units per unit of weight (one unit is worth as much as ``e``× the engagement, or one ``tau``
of freshness); ``new`` stays chronological, which is what people choose it for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import orjson
import redis.asyncio as aioredis

from core.feed import keys as fk
from core.feed.dedupe import STOPWORDS, tokens
from core.feed.items import FeedItem, Story

PrefOrder = Literal["hot", "new"]
MuteKind = Literal["word", "author", "channel", "platform"]
MUTE_KINDS: tuple[MuteKind, ...] = ("word", "author", "channel", "platform")
MAX_MUTES = 50  # per kind
MAX_WEIGHTS = 40  # learned terms kept (the strongest)
WEIGHT_LIMIT = 3.0
BOOST = 1.0  # score units per unit of weight (hot scores and ln(1 + engagement) are in the same units)
STEP = 1.0  # one "more/less like this" or one steered term
TERMS_PER_STORY = 3  # what a "more/less like this" learns from one story
MAX_TERM = 40


def normalise_word(value: str) -> str:
    """A muted or weighted term as matching sees it: one lower-case token (or "" if there is none)."""
    toks = tokens(value)
    return toks[0][:MAX_TERM] if toks else ""


def normalise_name(value: str) -> str:
    """Authors and channels: case-insensitive, without the @ or # people type."""
    return value.strip().lstrip("@#<").rstrip(">").lower()[:64]


@dataclass(frozen=True, slots=True)
class Preferences:
    """Immutable: changes make a new one (``muted``, ``unmuted``, ``learned``), stored whole."""

    order: PrefOrder | None = None  # None: the feed's default (hot)
    words: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    weights: tuple[tuple[str, float], ...] = ()  # (term, weight), sorted by term

    # -- reading ------------------------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        return self == EMPTY

    @property
    def mutes(self) -> bool:
        return bool(self.words or self.authors or self.channels or self.platforms)

    @property
    def changes_ranking(self) -> bool:
        """Does this person see something other than the shared selection and order?"""
        return self.mutes or bool(self.weights)

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(self.weights)

    def muted_of(self, kind: MuteKind) -> tuple[str, ...]:
        return {
            "word": self.words,
            "author": self.authors,
            "channel": self.channels,
            "platform": self.platforms,
        }[kind]

    # -- changing ------------------------------------------------------------------------------------
    def muted(self, kind: MuteKind, values: Iterable[str]) -> Preferences:
        current = list(self.muted_of(kind))
        for value in values:
            if value and value not in current:
                current.append(value)
        return self._with(kind, tuple(current[-MAX_MUTES:]))

    def unmuted(self, kind: MuteKind, values: Iterable[str]) -> Preferences:
        drop = set(values)
        return self._with(kind, tuple(v for v in self.muted_of(kind) if v not in drop))

    def _with(self, kind: MuteKind, values: tuple[str, ...]) -> Preferences:
        if kind == "word":
            return replace(self, words=values)
        if kind == "author":
            return replace(self, authors=values)
        if kind == "channel":
            return replace(self, channels=values)
        return replace(self, platforms=values)

    def with_order(self, order: PrefOrder | None) -> Preferences:
        return replace(self, order=order)

    def learned(self, more: Iterable[str] = (), less: Iterable[str] = (), step: float = STEP) -> Preferences:
        """Weights moved up for ``more`` and down for ``less`` terms, bounded; a weight back at zero is
        forgotten, and only the ``MAX_WEIGHTS`` strongest are kept."""
        weights = self.weight_map
        for term, delta in [(t, step) for t in more] + [(t, -step) for t in less]:
            if not term:
                continue
            value = max(-WEIGHT_LIMIT, min(WEIGHT_LIMIT, weights.get(term, 0.0) + delta))
            if abs(value) < 1e-9:
                weights.pop(term, None)
            else:
                weights[term] = round(value, 3)
        strongest = sorted(weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:MAX_WEIGHTS]
        return replace(self, weights=tuple(sorted(strongest)))

    # -- storage format --------------------------------------------------------------------------------
    def to_json(self) -> str:
        data: dict[str, object] = {}
        if self.order:
            data["o"] = self.order
        for kind in MUTE_KINDS:
            if self.muted_of(kind):
                data[kind[0]] = list(self.muted_of(kind))
        if self.weights:
            data["t"] = dict(self.weights)
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> Preferences:
        return _parse(raw.decode() if isinstance(raw, bytes) else raw) if raw else EMPTY


EMPTY = Preferences()


@lru_cache(maxsize=32768)  # a round of 100,000 digests met 13,388 distinct ones
def _parse(raw: str) -> Preferences:
    """Cached by the stored text: a digest round reads many identical ones, and they are immutable."""
    data = orjson.loads(raw)
    order = data.get("o")
    return Preferences(
        order=order if order in ("hot", "new") else None,
        words=tuple(str(v) for v in data.get("w", ())),
        authors=tuple(str(v) for v in data.get("a", ())),
        channels=tuple(str(v) for v in data.get("c", ())),
        platforms=tuple(str(v) for v in data.get("p", ())),
        weights=tuple(sorted((str(k), float(v)) for k, v in data.get("t", {}).items())),
    )


class PreferenceStore:
    """Preferences in Redis: one hash per community (``fk.preferences``), one field per person."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def get(self, community_key: str, user: str) -> Preferences:
        return Preferences.from_json(await self.redis.hget(fk.preferences(community_key), user))

    async def save(self, community_key: str, user: str, prefs: Preferences) -> None:
        key = fk.preferences(community_key)
        if prefs.empty:
            await self.redis.hdel(key, user)
        else:
            await self.redis.hset(key, user, prefs.to_json())

    async def reset(self, community_key: str, user: str) -> bool:
        return bool(await self.redis.hdel(fk.preferences(community_key), user))

    async def many(self, people: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Preferences]:
        """(community key, user) -> Preferences for those who have any: one HMGET per community."""
        by_community: dict[str, list[str]] = {}
        for community_key, user in people:
            by_community.setdefault(community_key, []).append(user)
        if not by_community:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for community_key, users in by_community.items():
                pipe.hmget(fk.preferences(community_key), users)
            replies = await pipe.execute()
        found: dict[tuple[str, str], Preferences] = {}
        for (community_key, users), values in zip(by_community.items(), replies, strict=True):
            for user, raw in zip(users, values, strict=True):
                if raw:
                    found[(community_key, user)] = Preferences.from_json(raw)
        return found


# -- applying ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """What matching needs of a story, computed once (a digest's candidates serve many subscribers)."""

    story: Story
    terms: frozenset[str]

    @classmethod
    def of(cls, story: Story) -> Profile:
        return cls(story, frozenset(t for item in story.items for t in tokens(item.text)))


@dataclass(frozen=True, slots=True)
class Chosen:
    """A story as one person sees it: narrowed to the items they did not mute, with what moved it."""

    story: Story
    more: tuple[str, ...] = ()  # their terms with a positive weight in it
    less: tuple[str, ...] = ()
    boost: float = 0.0  # score units added for this person
    position: int = 0  # where it was in the shared order


def _item_muted(item: FeedItem, prefs: Preferences) -> bool:
    return (
        item.platform in prefs.platforms
        or item.channel.lower() in prefs.channels
        or (bool(item.author_name) and item.author_name.lower() in prefs.authors)
        or item.author_id.lower() in prefs.authors
    )


def choose(
    prefs: Preferences, profiles: Sequence[Profile], order: Literal["hot", "new", "top"] = "hot"
) -> list[Chosen]:
    """The stories this person sees, in their order (deterministic: ties keep the shared order)."""
    words = set(prefs.words)
    weights = prefs.weight_map
    narrow = bool(prefs.authors or prefs.channels or prefs.platforms)
    out: list[Chosen] = []
    for position, profile in enumerate(profiles):
        if words and not words.isdisjoint(profile.terms):
            continue
        story = profile.story
        if narrow:
            kept = [i for i in story.items if not _item_muted(i, prefs)]
            if not kept:
                continue
            if len(kept) != len(story.items):
                story = Story(story.id, story.score, kept)
        more = tuple(sorted(t for t, w in weights.items() if w > 0 and t in profile.terms))
        less = tuple(sorted(t for t, w in weights.items() if w < 0 and t in profile.terms))
        boost = BOOST * sum(weights[t] for t in more + less)
        out.append(Chosen(story, more, less, boost, position))
    if weights and order != "new":
        base = (lambda s: s.score) if order == "hot" else (lambda s: math.log1p(max(s.score, 0.0)))
        out.sort(key=lambda c: (-(base(c.story) + c.boost), c.position))
    return out


def personalise(
    prefs: Preferences, stories: Sequence[Story], order: Literal["hot", "new", "top"] = "hot"
) -> list[Chosen]:
    """``choose`` for stories read once (a page, a token feed): with what moved each, for its reason."""
    if not prefs.changes_ranking:
        return [Chosen(s, position=n) for n, s in enumerate(stories)]
    return choose(prefs, [Profile.of(s) for s in stories], order)


def apply(
    prefs: Preferences, stories: Sequence[Story], order: Literal["hot", "new", "top"] = "hot"
) -> list[Story]:
    """What token feeds, pages and anything else call: ``stories`` (as the shared ranking gave them, in
    ``order``) filtered by this person's mutes and re-ordered by their weights."""
    if not prefs.changes_ranking:
        return list(stories)
    return [c.story for c in personalise(prefs, stories, order)]


def key_terms(story: Story, count: int = TERMS_PER_STORY) -> list[str]:
    """What a story is about, for "more/less like this": its most frequent content words (longer first
    on ties, then alphabetical: the same story always teaches the same terms)."""
    counts: dict[str, int] = {}
    for item in story.items:
        for tok in tokens(item.text):
            if tok in STOPWORDS or len(tok) < 3 or tok.isdigit():
                continue
            counts[tok[:MAX_TERM]] = counts.get(tok[:MAX_TERM], 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))
    return [term for term, _ in ranked[:count]]


def describe(prefs: Preferences, platform_label: Mapping[str, str] | None = None) -> str:
    """``/feed prefs``: everything stored, in words."""
    if prefs.empty:
        return (
            "You have no feed preferences here: the feed shows the hot order, nothing muted, nothing learned."
        )
    label = platform_label or {}
    lines = [f"Default order: {prefs.order or 'hot'}."]
    shown = {
        "word": ", ".join(prefs.words),
        "author": ", ".join(f"@{a}" for a in prefs.authors),
        "channel": ", ".join(f"#{c}" for c in prefs.channels),
        "platform": ", ".join(label.get(p, p) for p in prefs.platforms),
    }
    for kind in MUTE_KINDS:
        if shown[kind]:
            lines.append(f"Muted {kind}s: {shown[kind]}.")
    if prefs.weights:
        ups = [f"{t} (+{w:g})" for t, w in sorted(prefs.weights, key=lambda kv: -kv[1]) if w > 0]
        downs = [f"{t} ({w:g})" for t, w in sorted(prefs.weights, key=lambda kv: kv[1]) if w < 0]
        if ups:
            lines.append("More about: " + ", ".join(ups) + ".")
        if downs:
            lines.append("Less about: " + ", ".join(downs) + ".")
    lines.append("/feed reset forgets all of it; /feed unmute <…> lifts one mute.")
    return "\n".join(lines)
