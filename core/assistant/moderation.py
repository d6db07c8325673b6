"""Moderation of requests and generated text: local rules always, OpenAI's moderation endpoint when configured.

Local rules: a word list (``CHORUS_BLOCKLIST_WORDS``, plus a community's own words) and regex patterns
(``CHORUS_BLOCKLIST_PATTERNS``), matched on a normalised copy of the text (NFKC, case-folded, accents, zero
width and bidi characters removed, common digit-for-letter swaps undone) so trivial disguises do not pass;
and defaults that hold everywhere: credentials and private keys, payment card numbers, explicit threats and
encouragement of self-harm.

When the moderation service cannot answer: generated text (``stage="output"``, the default) is refused --
fail closed, nothing unchecked is published; a request (``stage="input"``) goes on with the local verdict --
fail open, because its output is checked again, closed, before anyone sees it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import openai

from core.assistant.models import call_with_retries, provider_errors
from core.errors import ChorusError, ConfigError
from core.settings import Settings
from core.text import clean

log = logging.getLogger(__name__)

Stage = Literal["input", "output"]
CHUNK_CHARS = 8_000  # per moderation input item; long texts go as several items of one request
MAX_CHUNKS = 16
UNAVAILABLE = (
    "the safety check is unavailable right now, so nothing was published; please try again in a minute"
)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""  # short, safe to show: what kind of problem, never the matched rule's secret text


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


# (reason, pattern) checked on the original text (credentials are case-sensitive) ...
_SECRET_PATTERNS = [
    re.compile(p)
    for p in (
        r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----",
        r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}",  # OpenAI
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
        r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b",  # Telegram bot token
        r"\b[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}\b",  # Discord bot token
    )
]
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# ... and on the normalised text.
_DEFAULT_RULES = [
    (
        "it encourages self-harm",
        re.compile(r"\b(?:kill|hang|cut|hurt) (?:yo)?urself\b|\bkys\b|\bgo die\b"),
    ),
    (
        "it contains a threat of violence",
        re.compile(
            r"\bi(?:'?m| am|'?ll| will)?(?: going to| gonna)? (?:kill|murder|shoot|stab|bomb) "
            r"(?:you|u|him|her|them|everyone|all of you)\b"
        ),
    ),
]
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
# "1", "!" and "|" stand for "i" or for "l": both readings are checked.
_LEET_I = str.maketrans({**_LEET, "1": "i", "!": "i", "|": "i"})
_LEET_L = str.maketrans({**_LEET, "1": "l", "!": "l", "|": "l"})


def normalise(text: str) -> str:
    """The form local rules match on: disguises removed, case folded, accents stripped."""
    text = unicodedata.normalize("NFKC", clean(text)).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return " ".join(text.split())


def _words_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    variants: set[str] = set()
    for word in words:
        w = normalise(word)
        if w:
            variants.add(re.escape(w))
    if not variants:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(sorted(variants, key=len, reverse=True)) + r")(?!\w)")


class LocalRules:
    """The always-on rules: defaults plus the configured word list and patterns."""

    def __init__(self, words: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self.words = _words_pattern(words)
        self.patterns: list[re.Pattern[str]] = []
        for pattern in patterns:
            try:
                self.patterns.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise ConfigError(f"CHORUS_BLOCKLIST_PATTERNS: invalid regex {pattern!r}: {exc}") from exc

    def check(self, text: str, extra_words: re.Pattern[str] | None = None) -> Verdict:
        if any(p.search(text) for p in _SECRET_PATTERNS):
            return Verdict(False, "it looks like it contains a password, token or private key")
        for match in _CARD.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if 13 <= len(digits) <= 19 and _luhn(digits):
                return Verdict(False, "it contains what looks like a payment card number")
        plain = normalise(text)
        readings = {plain, plain.translate(_LEET_I), plain.translate(_LEET_L)}
        for reason, rule in _DEFAULT_RULES:
            if any(rule.search(r) for r in readings):
                return Verdict(False, reason)
        for words in (self.words, extra_words):
            if words is not None and any(words.search(r) for r in readings):
                return Verdict(False, "it uses a word this community does not allow")
        if any(p.search(text) or p.search(plain) for p in self.patterns):
            return Verdict(False, "it matches a rule this community set")
        return Verdict(True)


def _category_names(categories: Any) -> list[str]:
    """Flagged category names, readable: "harassment/threatening" -> "harassment (threatening)"."""
    data = (
        categories.model_dump(by_alias=True) if hasattr(categories, "model_dump") else dict(categories or {})
    )
    names = [str(name) for name, flagged in data.items() if flagged is True]
    return [n.replace("/", " (", 1) + ")" if "/" in n else n for n in names]


class Moderator:
    """``check`` a request or a generated text; the reason in a refusal is short and safe to show."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = LocalRules(settings.blocklist_words, settings.blocklist_patterns)
        has_key = settings.openai_api_key is not None and bool(settings.openai_api_key.get_secret_value())
        provider = settings.moderation_provider
        self.remote = provider == "openai" or (provider == "auto" and has_key)
        self._client: openai.AsyncOpenAI | None = None

    def describe(self) -> str:
        remote = f" + OpenAI {self.settings.moderation_model}" if self.remote else ""
        return f"local rules{remote}"

    async def check(self, text: str, *, stage: Stage = "output", extra_words: Iterable[str] = ()) -> Verdict:
        """Local rules first (cheap, always); then the moderation service when configured."""
        local = self.rules.check(text, _words_pattern(extra_words))
        if not local.allowed or not self.remote or not text.strip():
            return local
        try:
            return await self._remote(text)
        except ChorusError as exc:
            if stage == "input":
                log.warning("moderation service unavailable (%s); input goes on with the local verdict", exc)
                return local
            log.warning("moderation service unavailable (%s); output refused (fail closed)", exc)
            return Verdict(False, UNAVAILABLE)

    async def _remote(self, text: str) -> Verdict:
        if self._client is None:
            s = self.settings
            key = s.openai_api_key.get_secret_value() if s.openai_api_key else "not-needed"
            self._client = openai.AsyncOpenAI(
                api_key=key, base_url=s.openai_base_url, timeout=s.model_timeout_s, max_retries=0
            )
        client = self._client
        chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)][:MAX_CHUNKS]
        result = await call_with_retries(
            lambda: client.moderations.create(model=self.settings.moderation_model, input=chunks),
            max_retries=self.settings.model_max_retries,
            max_wait_s=self.settings.model_max_retry_wait_s,
            what="moderation",
        )
        with provider_errors("moderation"):
            results = list(result.results)
            if not results:
                raise ValueError("no moderation results")
            flagged = [r for r in results if r.flagged]
        if not flagged:
            return Verdict(True)
        names: list[str] = []
        for r in flagged:
            names.extend(n for n in _category_names(r.categories) if n not in names)
        return Verdict(False, "flagged by the moderation service: " + (", ".join(names) or "unsafe content"))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
