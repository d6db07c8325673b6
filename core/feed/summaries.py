"""Story summaries and digest intros, computed once and shared by every subscriber and worker.

A summary is keyed by what it summarises (a story's id and text; an intro's summaries), cached in Redis,
and computed under a short Redis lock so that workers racing for the same story make one model call.
Within a process, concurrent requests for the same key wait for the same computation. The model is the
assistant's ``summarizer`` when one is registered; otherwise (or if it fails) the summary is extractive:
the first sentence, trimmed.

Story summaries are batched: the stories a digest round needs at the same moment (those not cached, whose
lock this worker holds) are collected for a few milliseconds (``CHORUS_FEED_SUMMARY_BATCH_WAIT_MS``, and for
as long as every model slot is busy), up to ``CHORUS_FEED_SUMMARY_BATCH`` stories, and summarised by ONE
model request; each story keeps its own cache key, lock and in-flight sharing. Privacy: a request only
ever holds stories that the same people may read — those of public communities together, a private
community's only with its own — because a prompt-injected story could make the model copy its neighbours'
text into its own summary, which is then shown to everyone who may read that story. And each summary is
checked against its own story: one that carries words of the other stories of its request, which its own
story does not have, is replaced by the extractive summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
BATCH_SIZE = 8  # stories per model request (CHORUS_FEED_SUMMARY_BATCH)
BATCH_WAIT_S = 0.005  # how long a batch waits for more stories (CHORUS_FEED_SUMMARY_BATCH_WAIT_MS)
_SPACES = re.compile(r"\s+")
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?…。！？])(\s|$)", re.DOTALL)
_URL = re.compile(r"https?://\S+")


def extractive(text: str, max_chars: int) -> str:
    """The first sentence (links dropped), trimmed to ``max_chars`` on a word boundary."""
    flat = _SPACES.sub(" ", _URL.sub("", clean(text))).strip()
    m = _FIRST_SENTENCE.match(flat)
    sentence = m.group(1) if m and len(m.group(1)) >= 20 else flat
    return truncate(sentence, max_chars)


def _tidy(text: str, max_chars: int) -> str:
    return truncate(defuse_mentions(_SPACES.sub(" ", clean(text)).strip()), max_chars)


Visibility = str | None
"""Who may read a story's text: None for everyone (a public community's), else the private community's key."""


@dataclass(eq=False)
class _Batch:
    """Stories waiting to be summarised together: same visibility and length, one future each."""

    visibility: Visibility
    max_chars: int
    texts: list[str] = field(default_factory=list)
    futures: list[asyncio.Future[str]] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)


class Summaries:
    """Cached summaries; ``calls`` counts the model requests this process made, ``stories`` the stories
    those requests summarised (several per request: batching)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        summarizer: Callable[[], Summarizer | None],
        as_written_chars: int = 0,
        *,
        batch_size: int = BATCH_SIZE,
        batch_wait_s: float = BATCH_WAIT_S,
    ) -> None:
        self.redis = redis
        self.as_written_chars = as_written_chars
        self.batch_size = max(1, batch_size)
        self.batch_wait_s = batch_wait_s
        self._summarizer = summarizer  # looked up at use: the assistant registers after the feed
        self.calls = 0
        self.stories = 0
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_CALLS)  # a digest round must not flood the model
        self._inflight: dict[str, asyncio.Future[str]] = {}
        self._open: dict[tuple[Visibility, int], _Batch] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def _model(self) -> Summarizer | None:
        return self._summarizer()

    async def story(self, story: Story, max_chars: int) -> str:
        item = story.fullest
        text = item.text
        if len(_SPACES.sub(" ", clean(text)).strip()) <= min(self.as_written_chars, max_chars):
            return _tidy(text, max_chars)  # already short: shown as written (a model would only reword it)
        key = _digest("story", story.id, str(max_chars), text)
        source = text[:4000]
        return await self._cached(key, lambda: self._batched(source, max_chars, item.community_key))

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
        fallback = _intro_fallback(label, summaries)
        return await self._cached(key, lambda: self._compute(f"{label}:\n{body}", max_chars, fallback))

    async def _cached(self, key: str, compute: Callable[[], Awaitable[str]]) -> str:
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._shared(key, compute)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            self._inflight.pop(key, None)

    async def _shared(self, key: str, compute: Callable[[], Awaitable[str]]) -> str:
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
            summary = await compute()
            await self.redis.set(redis_key, summary, ex=SUMMARY_TTL_S)
            return summary
        finally:
            await self.redis.delete(lock)

    async def _compute(self, text: str, max_chars: int, fallback: str) -> str:
        """One model call for one text (intros)."""
        model = self._model()
        if model is None:
            return fallback
        try:
            async with self._slots:
                self.calls += 1
                answer = await model(text, max_chars=max_chars)
        except Exception as exc:  # the digest goes out with an extractive summary rather than not at all
            log.warning("summary failed (%s); using an extractive one", type(exc).__name__)
            return fallback
        return _tidy(answer or "", max_chars) or fallback

    # -- batching ---------------------------------------------------------------------------------------
    async def _batched(self, text: str, max_chars: int, community_key: str) -> str:
        """The story's summary from a request shared with other stories of the same visibility."""
        model = self._model()
        if model is None:
            return extractive(text, max_chars)
        # read now, not cached: a community made private a second ago must not join the public requests
        public = bool(await self.redis.sismember(fk.PUBLIC, community_key))
        visibility: Visibility = None if public else community_key
        where = (visibility, max_chars)
        batch = self._open.get(where)
        if batch is None:
            batch = self._open[where] = _Batch(visibility, max_chars)
            task = asyncio.create_task(self._send(batch, model))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        batch.texts.append(text)
        batch.futures.append(future)
        if len(batch.texts) >= self.batch_size:
            self._close(batch)
        return await asyncio.shield(future)

    def _close(self, batch: _Batch) -> None:
        """Nothing joins ``batch`` any more; the next story of its kind opens a new one."""
        where = (batch.visibility, batch.max_chars)
        if self._open.get(where) is batch:
            del self._open[where]
        batch.full.set()

    async def _send(self, batch: _Batch, model: Summarizer) -> None:
        """Wait until the batch is full or its time is up (and a model slot is free: stories keep joining
        while every slot is busy), then summarise it in one request."""
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.batch_wait_s):
                    await batch.full.wait()
            async with self._slots:
                self._close(batch)
                texts = list(batch.texts)
                self.calls += 1
                self.stories += len(texts)
                try:
                    answers = list(
                        await model.many(
                            texts, max_chars=batch.max_chars, community_key=batch.visibility or ""
                        )
                    )
                except Exception as exc:  # every story of the batch goes out extractive, not at all
                    log.warning("batched summary of %d stories failed (%s)", len(texts), type(exc).__name__)
                    answers = []
            for i, future in enumerate(batch.futures):
                if not future.done():
                    answer = answers[i] if i < len(answers) else ""
                    future.set_result(_own(answer, texts, i, batch.max_chars))
        finally:
            for text, future in zip(batch.texts, batch.futures, strict=True):
                if not future.done():  # cancelled or failed above: nobody waits forever
                    future.set_result(extractive(text, batch.max_chars))


def _own(answer: str, texts: list[str], i: int, max_chars: int) -> str:
    """The model's summary of ``texts[i]`` if it is usable and its own; otherwise the extractive one."""
    plain = extractive(texts[i], max_chars)
    summary = _tidy(answer or "", max_chars)
    if not summary:
        return plain
    if borrows(summary, texts[i], texts[:i] + texts[i + 1 :]):
        log.warning("a batched summary carried another story's words; using the extractive one")
        return plain
    return summary


_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?…。！？])\s+|\n+")


def _stems(text: str) -> list[str]:
    """Content words (four letters or more), cut to their first six letters so inflections match."""
    return [w[:6] for w in (m.lower() for m in _WORD.findall(text)) if len(w) >= 4 and not w.isdigit()]


def _pairs(stems: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(stems))


def borrows(summary: str, own: str, others: list[str]) -> bool:
    """Does ``summary`` state what only the ``others`` say: a sentence with two consecutive content words
    that another story has together and its own does not (one of them not at all), or whose content words
    are mostly words only the others have?

    A summary model paraphrases its own story with its own words, which seldom are another story's own
    words; copying a neighbour (what a prompt-injected story asks for) always is."""
    if not others:
        return False
    mine = _stems(own)
    mine_words, mine_pairs = set(mine), _pairs(mine)
    theirs = [_stems(o) for o in others]
    their_words = set().union(*map(set, theirs)) - mine_words
    their_pairs = set().union(*map(_pairs, theirs)) - mine_pairs
    for sentence in _SENTENCE.split(summary):
        said = _stems(sentence)
        if any(a in their_words or b in their_words for a, b in _pairs(said) & their_pairs):
            return True
        foreign = set(said) & their_words
        if len(foreign) >= 2 and 2 * len(foreign) >= len(set(said)):
            return True
    return False


def _intro_fallback(label: str, summaries: list[str]) -> str:
    count = len(summaries)
    return f"{count} {'story' if count == 1 else 'stories'} from {label}."


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
