"""Story summaries and digest intros, computed once and shared by every subscriber and worker.

A summary is keyed by what it summarises (a story's id and text; an intro's summaries), cached in Redis,
and computed under a short Redis lock so that workers racing for the same story make one model call.
Within a process, concurrent requests for the same key wait for the same computation. The model is the
assistant's ``summarizer`` when one is registered; otherwise (or if it fails) the summary is extractive:
the first sentence, trimmed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from core.decode import as_str
from core.feed import keys as fk
from core.feed.items import Story
from core.ports import Summarizer
from core.text import clean, defuse_mentions, truncate

log = logging.getLogger(__name__)

SUMMARY_TTL_S = 31 * 86400
LOCK_MS = 120_000
WAIT_S = 150.0
MAX_CONCURRENT_CALLS = 8
_SPACES = re.compile(r"\s+")
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?…。！？])(\s|$)", re.DOTALL)
_URL = re.compile(r"https?://\S+")

Summarize = Callable[..., Awaitable[str]]


def extractive(text: str, max_chars: int) -> str:
    """The first sentence (links dropped), trimmed to ``max_chars`` on a word boundary."""
    flat = _SPACES.sub(" ", _URL.sub("", clean(text))).strip()
    m = _FIRST_SENTENCE.match(flat)
    sentence = m.group(1) if m and len(m.group(1)) >= 20 else flat
    return truncate(sentence, max_chars)


def _tidy(text: str, max_chars: int) -> str:
    return truncate(defuse_mentions(_SPACES.sub(" ", clean(text)).strip()), max_chars)


class Summaries:
    """Cached summaries; ``calls`` counts the model calls this process made."""

    def __init__(
        self, redis: aioredis.Redis, summarizer: Callable[[], Summarizer | None], as_written_chars: int = 0
    ) -> None:
        self.redis = redis
        self.as_written_chars = as_written_chars
        self._summarizer = summarizer  # looked up at use: the assistant registers after the feed
        self.calls = 0
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_CALLS)  # a digest round must not flood the model
        self._inflight: dict[str, asyncio.Future[str]] = {}

    def _model(self) -> Summarizer | None:
        return self._summarizer()

    async def story(self, story: Story, max_chars: int) -> str:
        text = story.fullest.text
        if len(_SPACES.sub(" ", clean(text)).strip()) <= min(self.as_written_chars, max_chars):
            return _tidy(text, max_chars)  # already short: shown as written (a model would only reword it)
        key = _digest("story", story.id, str(max_chars), text)
        return await self._cached(key, text[:4000], max_chars)

    async def intro(self, period: str, scope_label: str, summaries: list[str], max_chars: int) -> str:
        """What a digest's stories are about. The scope is not part of it (the digest's header names the
        scope), so digests with the same stories share one intro: a community's own digest and its view of
        "all" when nothing else is public, or two views that rank the same public stories first."""
        if not summaries:
            return ""
        if self._model() is None:
            return _intro_fallback(f"{period} digest of {scope_label}", summaries)
        body = "\n".join(f"- {s}" for s in summaries)
        key = _digest("intro", period, str(max_chars), body)
        label = f"{period} digest"
        return await self._cached(key, f"{label}:\n{body}", max_chars, fallback=_intro_fallback(label, summaries))

    async def _cached(self, key: str, text: str, max_chars: int, fallback: str | None = None) -> str:
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._shared(key, text, max_chars, fallback)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            self._inflight.pop(key, None)

    async def _shared(self, key: str, text: str, max_chars: int, fallback: str | None) -> str:
        redis_key = fk.summary(key)
        lock = redis_key + ":lock"
        deadline = time.monotonic() + WAIT_S
        while True:
            cached = await self.redis.get(redis_key)
            if cached is not None:
                return as_str(cached)
            if await self.redis.set(lock, "1", nx=True, px=LOCK_MS):
                break
            if time.monotonic() > deadline:
                break  # the holder is stuck: compute it ourselves
            await asyncio.sleep(0.05)
        try:
            summary = await self._compute(text, max_chars, fallback)
            await self.redis.set(redis_key, summary, ex=SUMMARY_TTL_S)
            return summary
        finally:
            await self.redis.delete(lock)

    async def _compute(self, text: str, max_chars: int, fallback: str | None) -> str:
        model = self._model()
        plain = fallback if fallback is not None else extractive(text, max_chars)
        if model is None:
            return plain
        try:
            async with self._slots:
                self.calls += 1
                answer = await model(text, max_chars=max_chars)
        except Exception as exc:  # the digest goes out with an extractive summary rather than not at all
            log.warning("summary failed (%s); using an extractive one", type(exc).__name__)
            return plain
        tidy = _tidy(answer or "", max_chars)
        return tidy or plain


def _intro_fallback(label: str, summaries: list[str]) -> str:
    count = len(summaries)
    return f"{count} {'story' if count == 1 else 'stories'} from {label}."


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
