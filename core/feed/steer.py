"""``/feed steer more about X, less about Y``: steering in words.

The model reads the words when one answers (the assistant's ``Interpreter`` slot, with the instructions in
``prompts/steer.txt``), because people say it in many ways ("enough crypto, I'd love gardening tips");
its answer is two lines (``more:`` / ``less:``) that even a small local model writes, and only terms that
appear in the member's own words are kept, so a confused or injected model cannot invent topics. Without a
model, or when it fails or answers nothing usable, a keyword reading understands "more (about) X",
"less (about) X", "no/fewer/not X", "X please" style phrases.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from core.feed.dedupe import STOPWORDS, tokens
from core.feed.preferences import MAX_TERM
from core.ports import Interpreter

log = logging.getLogger(__name__)

MAX_TERMS = 8
MAX_TOKENS = 80
_CLAUSE = re.compile(r"[,;.!?\n]+|\s+(?:and|but|also|plus|then)\s+", re.IGNORECASE)
_MORE = re.compile(
    r"^\s*(?:(?:i\s+)?(?:want|would like|'?d like|like|love)\s+)?(?:show\s+(?:me\s+)?)?"
    r"(?:more|lots)\s+(?:(?:about|of|on|from|like)\s+)?(.+)$",
    re.IGNORECASE,
)
_LESS = re.compile(
    r"^\s*(?:(?:show\s+(?:me\s+)?)?(?:less|fewer|no\s+more|no|not|without|enough|stop\s+showing|stop)\s+"
    r"(?:(?:about|of|on|from|with|like)\s+)?)(.+)$",
    re.IGNORECASE,
)
_FILLER = STOPWORDS | {"stuff", "things", "posts", "news", "please", "thanks", "topics", "topic", "articles"}


@dataclass(frozen=True, slots=True)
class Steering:
    more: tuple[str, ...]
    less: tuple[str, ...]
    how: Literal["model", "keywords"]

    @property
    def empty(self) -> bool:
        return not self.more and not self.less


@lru_cache(maxsize=1)
def instructions() -> str:
    """The prompt (a data file): everything below its dashed line."""
    raw = resources.files("core.feed").joinpath("prompts/steer.txt").read_text(encoding="utf-8")
    return raw.split("# ----\n", 1)[1].strip()


def _terms(text: str) -> list[str]:
    return [t[:MAX_TERM] for t in tokens(text) if t not in _FILLER and len(t) > 1]


def _bounded(more: list[str], less: list[str], how: Literal["model", "keywords"]) -> Steering:
    m = list(dict.fromkeys(more))[:MAX_TERMS]
    lset = [t for t in dict.fromkeys(less) if t not in m][:MAX_TERMS]
    return Steering(tuple(m), tuple(lset), how)


def by_keywords(text: str) -> Steering:
    """The fallback reading, clause by clause; a clause with no "more"/"less" word follows the one before
    it ("more about rust, go and zig" is three "more")."""
    more: list[str] = []
    less: list[str] = []
    current: list[str] | None = None
    for clause in _CLAUSE.split(text):
        if not clause.strip():
            continue
        if m := _LESS.match(clause):
            current = less
            current.extend(_terms(m.group(1)))
        elif m := _MORE.match(clause):
            current = more
            current.extend(_terms(m.group(1)))
        elif current is not None:
            current.extend(_terms(clause))
    return _bounded(more, less, "keywords")


def parse_answer(answer: str, said: str) -> Steering | None:
    """The model's ``more:`` / ``less:`` lines, keeping only terms the member used (None: unusable)."""
    allowed = set(tokens(said))
    found: dict[str, list[str]] = {}
    for line in answer.splitlines():
        head, sep, rest = line.strip().strip("*-• ").partition(":")
        kind = head.strip().lower()
        if sep and kind in ("more", "less"):
            found[kind] = [t for t in _terms(rest) if t in allowed]
    if not found:
        return None
    steering = _bounded(found.get("more", []), found.get("less", []), "model")
    return None if steering.empty else steering


async def read(text: str, interpreter: Interpreter | None) -> Steering:
    """What the member asked for: the model's reading when it gives one, else the keyword reading."""
    if interpreter is not None:
        try:
            answer = await interpreter(instructions(), text, max_tokens=MAX_TOKENS)
        except Exception as exc:  # a steering request is still served, by keywords
            log.info("steering read by keywords: the model failed (%s)", type(exc).__name__)
        else:
            steering = parse_answer(answer, text)
            if steering is not None:
                return steering
            log.info("steering read by keywords: the model's answer was unusable")
    return by_keywords(text)
