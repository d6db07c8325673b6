"""Keep a draft to what the request gave it: no invented links, numbers, prices, dates or names, no role-play.

Small models fill gaps with plausible detail ("join us at www.garden.org", "tickets $5", "My name is Sarah
Lee") and paste chat transcripts ("Chat History:", "(to self)"). ``ground`` cuts the transcript at its
first marker and drops every sentence that states something the request (and the message or draft being
answered, the "sources") did not contain; what is left is the draft, or nothing (then the caller asks
again). ``topic_words`` finds what a request is about for hashtags: its content nouns, not the request's
own verbs ("remind", "thank") or its audience ("members").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from core.text import drop_sentences

# A transcript or role-play starts here: everything after it is not the post.
_TRANSCRIPT = re.compile(
    r"(?:\n|^|(?<=[.!?]\s))\s*(?:chat history|in conversation|conversation so far|transcript|"
    r"user\s*:|assistant\s*:|human\s*:|ai\s*:|member\s*:|request\s*:|\(to self\)|\(to [a-z]+\)|"
    r"<\s*/?\s*(?:post|text|request|draft|message|context)[^>]*>)",
    re.IGNORECASE,
)
_ROLE_PLAY = re.compile(
    r"\b(?:my name is|i am (?:a|an|the) (?:bot|ai|assistant|writer)|i'm (?:a|an|the) (?:bot|ai|assistant)|"
    r"as (?:a|an|the) (?:ai|assistant|bot|language model)|to self|signing off|best regards|sincerely)\b",
    re.IGNORECASE,
)
_URL = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|org|net|io|co|uk|de|info|biz|app|dev|ly|me|gov|edu)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_MONEY = re.compile(r"[$€£¥]|\b(?:dollars?|euros?|pounds?|usd|eur|gbp|free of charge|cents?)\b", re.I)
_DATE_WORD = re.compile(
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|"
    r"july|august|september|october|november|december|tomorrow|tonight|today|yesterday|weekend|"
    r"next week|this week|next month|morning|afternoon|evening|noon|midnight)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)(?<!\n)\b([A-Z][a-z]{2,})\b")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
# Capitalised words a post may use mid-sentence without them being names someone invented.
_COMMON_CAPITALS = frozenset(
    "i i'm i've i'll we we're join come thanks thank happy welcome don't let's it's our the please".split()  # noqa: SIM905
)

# What a request asks the assistant to do, and whom it addresses: never what the post is about.
_REQUEST_WORDS = frozenset(
    """
    a an and are as at be by can could do for from get give has have help i in into is it its let me my of
    on or our please so some that the their them they this to us we with would you your will just also all
    write post posts draft thread tweet reply answer make create compose announce announcing announcement
    remind reminding reminder thank thanking thanks invite inviting invitation ask asking tell telling share
    sharing let know celebrate celebrating welcome welcoming encourage encouraging promote promoting say
    saying explain explaining describe describing congratulate congratulating apologize apologise
    apologizing update updating inform informing note short long shorter longer quick brief friendly fun
    playful formal casual warm new about everyone members member people folks followers friends community
    group channel server chat today tomorrow tonight week weekend month year next this that these those
    monday tuesday wednesday thursday friday saturday sunday morning afternoon evening night am pm
    january february march april may june july august september october november december
    more less very really sure start starting begin beginning come coming join joining happen happening
    hold holding host hosting took take taking going want wants need needs one two three first last
    weekly daily monthly yearly annual upcoming local free big small great good nice little special
    """.split()  # noqa: SIM905 - a word list reads better as words
)


def sources_text(parts: Iterable[str | None]) -> str:
    return "\n".join(p for p in parts if p)


def ground(text: str, sources: str, *, strict: bool = True) -> str:
    """``text`` without transcripts, role-play and sentences that state what ``sources`` did not give.

    ``strict`` (small models) also drops invented numbers, dates and names; larger models, which follow
    the rules' "do not invent" line, are only held to links, prices and role-play.
    """
    cut = _TRANSCRIPT.search(text)
    if cut is not None:
        text = text[: cut.start()]
    given = _facts(sources)
    return drop_sentences(text.strip(), lambda s: bool(invented(s, given, strict=strict)))


def invented(sentence: str, given: Facts | str, *, strict: bool = True) -> list[str]:
    """What ``sentence`` states that the sources did not give (empty: nothing invented)."""
    facts = given if isinstance(given, Facts) else _facts(given)
    found: list[str] = []
    found += [f"link {u}" for u in _URL.findall(sentence) if u.lower().rstrip(".,!?") not in facts.lower]
    found += [f"price {m}" for m in _MONEY.findall(sentence) if m.lower() not in facts.lower]
    found += [f"role-play {r}" for r in _ROLE_PLAY.findall(sentence)]
    if not strict:
        return found
    found += [f"number {n}" for n in _NUMBER.findall(sentence) if n not in facts.numbers]
    found += [f"date {d}" for d in _DATE_WORD.findall(sentence) if d.lower() not in facts.lower]
    for name in _CAPITALISED.findall(sentence):
        if name.lower() not in facts.words and name.lower() not in _COMMON_CAPITALS:
            found.append(f"name {name}")
    return found


class Facts:
    """What the sources give: their words, numbers and lower-cased text."""

    def __init__(self, text: str) -> None:
        self.lower = text.lower()
        self.words = frozenset(w.lower().strip("'’") for w in _WORD.findall(text))
        self.numbers = frozenset(_NUMBER.findall(text)) | frozenset(
            d for n in _NUMBER.findall(text) for d in re.split(r"[.,:]", n)
        )


def _facts(text: str) -> Facts:
    return Facts(text)


def topic_words(request: str, n: int = 4) -> list[str]:
    """What the request is about, best first: content words that are not requests, audiences or dates.

    Words after "about"/"for"/"on" rank first (that is where the subject usually is), then words that do
    not look like verbs ("-ing", "-ed"), then longer words.
    """
    words = _WORD.findall(request)
    lowered = [w.lower().strip("'’-") for w in words]
    subject_from = next((i + 1 for i, w in enumerate(lowered) if w in ("about", "on", "for")), 0)
    candidates: list[tuple[int, bool, int, str]] = []
    for i, w in enumerate(lowered):
        if len(w) < 3 or w in _REQUEST_WORDS or _verb_form(w) or not w.isalpha():
            continue
        verbish = w.endswith(
            ("ing", "ed")
        )  # "reaching", "volunteered": more often the action than the subject
        candidates.append((0 if i >= subject_from else 1, verbish, -len(w), w))
    ordered = [c[-1] for c in sorted(candidates)]
    return list(dict.fromkeys(ordered))[:n]


def _verb_form(word: str) -> bool:
    """An inflected request verb ("reminded", "thanks") counts as the verb."""
    for suffix in ("ing", "ed", "s", "es"):
        stem = word.removesuffix(suffix)
        if stem != word and (stem in _REQUEST_WORDS or stem + "e" in _REQUEST_WORDS):
            return True
    return False


def hashtags_for(chosen: Sequence[str], request: str, limit: int = 2) -> list[str]:
    """``#tags`` from the words a model chose, kept only if they are topic words of the request."""
    topic = topic_words(request, n=8)
    picked = [w.lower().lstrip("#") for w in chosen if w.lower().lstrip("#") in topic]
    picked = list(dict.fromkeys(picked)) or topic[:limit]
    return [f"#{w}" for w in picked[:limit]]
