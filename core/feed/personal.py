"""A person steering their own feed: ``/feed prefs|mute|unmute|order|steer|reset`` and the "more/less like
this" choices on digests. Everything here changes only the asking person's preferences in the community the
command was sent in (``preferences.py``); nothing here changes what others see.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from core.contract import Action, Event, reply_to_event
from core.errors import InvalidInput
from core.feed import steer
from core.feed.feedback import LESS, MORE
from core.feed.preferences import (
    MUTE_KINDS,
    MuteKind,
    Preferences,
    describe,
    key_terms,
    normalise_name,
    normalise_word,
)

if TYPE_CHECKING:
    from core.feed.service import FeedService
    from core.services import Services
from core.web.reading import VisibleTimelines
from core.web.visibility import visible_to

ACTIONS = ("prefs", "preferences", "mute", "unmute", "order", "steer", "reset")
_KINDS: dict[str, MuteKind] = {
    "word": "word",
    "words": "word",
    "author": "author",
    "authors": "author",
    "user": "author",
    "channel": "channel",
    "channels": "channel",
    "platform": "platform",
    "platforms": "platform",
}
MUTE_USAGE = (
    "Use /feed mute <words>, /feed mute @author, /feed mute #channel or /feed mute <platform> "
    "(or name the kind: /feed mute author Ada Lovelace)."
)


def _reply(event: Event, text: str) -> list[Action]:
    return [reply_to_event(event, text)]


def _mutes(words: list[str], platforms: Sequence[str]) -> list[tuple[MuteKind, str]]:
    """What ``/feed mute`` / ``unmute`` names: an explicit kind takes the rest as one value (authors) or
    several (words, channels, platforms); otherwise each word says what it is (@, #, a platform's name)."""
    if not words:
        raise InvalidInput(MUTE_USAGE)
    kind = _KINDS.get(words[0].lower())
    if kind is not None:
        rest = words[1:]
        if not rest:
            raise InvalidInput(MUTE_USAGE)
        if kind == "author":
            return [("author", normalise_name(" ".join(rest)))]
        return [(kind, _value(kind, w)) for w in rest]
    out: list[tuple[MuteKind, str]] = []
    for word in words:
        if word.startswith("@"):
            out.append(("author", normalise_name(word)))
        elif word.startswith(("#", "<#")):
            out.append(("channel", normalise_name(word)))
        elif word.lower() in platforms:
            out.append(("platform", word.lower()))
        else:
            out.append(("word", normalise_word(word)))
    return out


def _value(kind: MuteKind, word: str) -> str:
    if kind == "word":
        return normalise_word(word)
    if kind == "platform":
        return word.lower().strip()[:32]
    return normalise_name(word)


async def handle(feed: FeedService, event: Event, action: str, words: list[str]) -> list[Action]:
    store = feed.preferences
    ck, user = event.community_key, event.author.id
    prefs = await store.get(ck, user)
    platforms = feed.services.platforms
    if action in ("prefs", "preferences"):
        return _reply(event, describe(prefs, {p: platforms.label(p) for p in platforms.names}))
    if action == "reset":
        await store.reset(ck, user)
        return _reply(
            event,
            "Done: your feed here is back to the default (hot order, nothing muted, nothing learned)."
            if not prefs.empty
            else "You had no feed preferences here; the feed is already the default.",
        )
    if action == "order":
        choice = words[0].lower() if words else ""
        if choice not in ("hot", "new"):
            raise InvalidInput("Use /feed order hot (ranked) or /feed order new (newest first).")
        await store.save(ck, user, prefs.with_order("hot" if choice == "hot" else "new"))
        return _reply(event, f"Your /feed here now shows {choice} stories first by default.")
    if action == "steer":
        text = " ".join(words)
        if not text.strip():
            raise InvalidInput(
                "Tell me what you want, e.g. /feed steer more about gardening, less about crypto."
            )
        steering = await steer.read(text, feed.services.interpreter.optional())
        if steering.empty:
            raise InvalidInput(
                "I could not tell what you want more or less of. "
                "Try /feed steer more about gardening, less about crypto."
            )
        await store.save(ck, user, prefs.learned(steering.more, steering.less))
        said = []
        if steering.more:
            said.append("more about " + ", ".join(steering.more))
        if steering.less:
            said.append("less about " + ", ".join(steering.less))
        return _reply(
            event, f"Steered: {'; '.join(said)}. /feed prefs shows what I learned; /feed reset forgets it."
        )
    if action == "unmute" and [w.lower() for w in words] == ["all"]:
        await store.save(ck, user, Preferences(order=prefs.order, weights=prefs.weights))
        return _reply(event, "Every mute lifted.")
    mutes = [(kind, value) for kind, value in _mutes(words, platforms.names) if value]
    if not mutes:
        raise InvalidInput(MUTE_USAGE)
    unknown = [v for k, v in mutes if k == "platform" and v not in platforms]
    if unknown and action == "mute":
        raise InvalidInput(
            f"I don't know the platform “{unknown[0]}”: use one of {', '.join(platforms.names)}."
        )
    for kind in MUTE_KINDS:
        values = [v for k, v in mutes if k == kind]
        if values:
            prefs = prefs.muted(kind, values) if action == "mute" else prefs.unmuted(kind, values)
    await store.save(ck, user, prefs)
    listed = ", ".join(f"{kind} {value}" for kind, value in mutes)
    if action == "mute":
        return _reply(event, f"Muted here: {listed}. /feed unmute … lifts it.")
    return _reply(event, f"Unmuted: {listed}.")


async def press(feed: FeedService, more: bool, event: Event, svc: Services, story_id: str) -> list[Action]:
    """A "more/less like this" choice: the presser's weights move for the story's main terms."""
    # only what the presser's community may see: a forged payload must not reveal a private story's words
    visible = VisibleTimelines(feed.timelines, await visible_to(svc.redis, [event.community_key]))
    found = await visible.stories([story_id]) if story_id else []
    if not found:
        raise InvalidInput("That story is no longer in the feed, so I can't learn from it.")
    terms = key_terms(found[0])
    if not terms:
        raise InvalidInput("I could not tell what that story is about, so I learned nothing from it.")
    store = feed.preferences
    prefs = await store.get(event.community_key, event.author.id)
    changed = prefs.learned(terms if more else (), () if more else terms)
    await store.save(event.community_key, event.author.id, changed)
    return _reply(
        event,
        f"Noted: {'more' if more else 'less'} like that ({', '.join(terms)}), for you only. "
        "/feed prefs shows what I learned; /feed reset forgets it.",
    )


def register(svc: Services, feed: FeedService) -> None:
    svc.choices.register(MORE, partial(press, feed, True))
    svc.choices.register(LESS, partial(press, feed, False))
