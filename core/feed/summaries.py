"""Story summaries and digest intros, computed once and shared by every subscriber and worker.

A summary is keyed by what it summarises (a story's id and text; an intro's summaries), cached in Redis,
and computed under a short Redis lock so that workers racing for the same story make one model call.
Within a process, concurrent requests for the same key wait for the same computation. The model is the
assistant's ``summarizer`` when one is registered; otherwise (or if it fails) the summary is extractive:
the first sentence, trimmed.

Summaries and intros are batched: the texts a digest round needs (those not cached, whose lock this worker
holds) wait while the round keeps asking for more (until none came for ``CHORUS_FEED_SUMMARY_BATCH_WAIT_MS``,
50 ms, at most two seconds) and while every model slot is busy, up to ``CHORUS_FEED_SUMMARY_BATCH`` texts,
then ONE model request writes them all; each text keeps its own cache key, lock and in-flight sharing.
Privacy: a request only ever holds texts that the same people may read — public communities' together, a
private community's only with its own (an intro: whoever may read all of its digest's stories) — because a
prompt-injected story could make the model copy its neighbours' text into its own summary, which is then
shown to everyone who may read that story. And each summary is checked against its own text: one that
carries words of the other texts of its request, which its own does not have, is replaced by its fallback
(a story's first sentence; "N stories from ..." for an intro).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from core.decode import as_str
from core.feed import keys as fk
from core.feed.items import Story
from core.ports import Summarizer, SummaryKind
from core.text import clean, defuse_mentions, sentences, truncate

log = logging.getLogger(__name__)

SUMMARY_TTL_S = 31 * 86400
LOCK_MS = 120_000
WAIT_S = 150.0
MAX_CONCURRENT_CALLS = 8
BATCH_SIZE = 8  # stories per model request (CHORUS_FEED_SUMMARY_BATCH)
BATCH_WAIT_S = 0.05  # a batch is sent when nothing joined for this long (CHORUS_FEED_SUMMARY_BATCH_WAIT_MS)
MAX_WAIT_S = 2.0  # ... or after this long
MAX_REDIS_AT_ONCE = 64  # concurrent cache and lock commands (a round's intros wait together)
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
"""Who may read a text: None for everyone (public communities'), else the private community's key (an
intro over several private communities' stories, which views never mix, gets all their keys)."""


@dataclass(eq=False)
class _Batch:
    """Texts waiting to be summarised together: same kind, visibility and length, one future each."""

    kind: SummaryKind
    visibility: Visibility
    max_chars: int
    texts: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    futures: list[asyncio.Future[str]] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def where(self) -> tuple[SummaryKind, Visibility, int]:
        return self.kind, self.visibility, self.max_chars

    @property
    def community_key(self) -> str:
        """Whose moderators' prompts apply: the private community's; "" for public texts."""
        return self.visibility if self.visibility and "|" not in self.visibility else ""


class Summaries:
    """Cached summaries; ``calls`` counts the model requests this process made, ``stories`` and ``intros``
    what those requests wrote (several per request: batching)."""

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
        self.intros = 0
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_CALLS)  # a digest round must not flood the model
        self._redis_slots = asyncio.Semaphore(MAX_REDIS_AT_ONCE)  # nor exhaust the connection pool
        self._inflight: dict[str, asyncio.Future[str]] = {}
        self._open: dict[tuple[SummaryKind, Visibility, int], _Batch] = {}
        self._joined: dict[SummaryKind, float] = {}  # when a text last joined a batch of each kind
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
        return await self._cached(
            key,
            lambda: self._batched(
                "stories", source, extractive(source, max_chars), max_chars, [item.community_key]
            ),
        )

    async def intro(
        self, period: str, scope_label: str, summaries: list[str], max_chars: int, communities: Sequence[str]
    ) -> str:
        """What a digest's stories are about. The scope is not part of it (the digest's header names the
        scope), so digests with the same stories share one intro: a community's own digest and its view of
        "all" when nothing else is public, or two views that rank the same public stories first.
        ``communities`` are those of the texts the summaries were made from: who may read the intro."""
        if not summaries:
            return ""
        if self._model() is None:
            return _intro_fallback(f"{period} digest of {scope_label}", summaries)
        body = "\n".join(f"- {s}" for s in summaries)
        key = _digest("intro", period, str(max_chars), body)
        label = f"{period} digest"
        fallback = _intro_fallback(label, summaries)
        return await self._cached(
            key, lambda: self._batched("intros", f"{label}:\n{body}", fallback, max_chars, communities)
        )

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
            async with self._redis_slots:
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
            async with self._redis_slots:
                await self.redis.set(redis_key, summary, ex=SUMMARY_TTL_S)
            return summary
        finally:
            async with self._redis_slots:
                await self.redis.delete(lock)

    # -- batching ---------------------------------------------------------------------------------------
    async def _batched(
        self, kind: SummaryKind, text: str, fallback: str, max_chars: int, communities: Sequence[str]
    ) -> str:
        """The text's summary from a request shared with other texts of the same kind and visibility."""
        model = self._model()
        if model is None:
            return fallback
        visibility = await self._visibility(communities)
        where = (kind, visibility, max_chars)
        batch = self._open.get(where)
        if batch is None:
            batch = self._open[where] = _Batch(kind, visibility, max_chars)
            task = asyncio.create_task(self._send(batch, model))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        batch.texts.append(text)
        batch.fallbacks.append(fallback)
        batch.futures.append(future)
        self._joined[kind] = asyncio.get_running_loop().time()
        if len(batch.texts) >= self.batch_size:
            self._close(batch)
        return await asyncio.shield(future)

    async def _visibility(self, communities: Sequence[str]) -> Visibility:
        """Read now, not cached: a community made private a second ago must not join public requests."""
        unique = sorted(set(communities))
        async with self._redis_slots:
            flags = await self.redis.smismember(fk.PUBLIC, unique) if unique else []
        private = [c for c, public in zip(unique, flags, strict=True) if not public]
        return "|".join(private) if private else None

    def _close(self, batch: _Batch) -> None:
        """Nothing joins ``batch`` any more; the next text of its kind opens a new one."""
        if self._open.get(batch.where) is batch:
            del self._open[batch.where]
        batch.full.set()

    async def _quiet(self, batch: _Batch) -> None:
        """Until the batch is full, or no text of its kind joined any batch for ``batch_wait_s``: while a
        digest round is still asking for summaries (other scopes, other communities), more of this batch's
        may come. At most MAX_WAIT_S in all."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + MAX_WAIT_S
        while not batch.full.is_set():
            now = loop.time()
            wait = min(self._joined.get(batch.kind, now) + self.batch_wait_s, give_up) - now
            if wait <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await batch.full.wait()

    async def _send(self, batch: _Batch, model: Summarizer) -> None:
        """Wait for the batch to fill (``_quiet``) and for a model slot (texts keep joining while every slot
        is busy); then summarise it in one request."""
        try:
            await self._quiet(batch)
            async with self._slots:
                self._close(batch)
                # in the texts' order, not their arrival's: the same texts make the same request
                order = sorted(range(len(batch.texts)), key=batch.texts.__getitem__)
                batch.texts[:] = [batch.texts[i] for i in order]
                batch.fallbacks[:] = [batch.fallbacks[i] for i in order]
                batch.futures[:] = [batch.futures[i] for i in order]
                texts = list(batch.texts)
                self.calls += 1
                if batch.kind == "intros":
                    self.intros += len(texts)
                else:
                    self.stories += len(texts)
                try:
                    answers = list(
                        await model.many(
                            texts,
                            max_chars=batch.max_chars,
                            community_key=batch.community_key,
                            kind=batch.kind,
                        )
                    )
                except Exception as exc:  # every text of the batch goes out with its fallback, not at all
                    log.warning("batched %s of %d failed (%s)", batch.kind, len(texts), type(exc).__name__)
                    answers = []
            for i, future in enumerate(batch.futures):
                if not future.done():
                    answer = answers[i] if i < len(answers) else ""
                    future.set_result(_own(answer, texts, i, batch.fallbacks[i], batch.max_chars))
        finally:
            for fallback, future in zip(batch.fallbacks, batch.futures, strict=True):
                if not future.done():  # cancelled or failed above: nobody waits forever
                    future.set_result(fallback)


def _own(answer: str, texts: list[str], i: int, fallback: str, max_chars: int) -> str:
    """The model's summary of ``texts[i]`` if it is usable and its own; otherwise ``fallback``."""
    summary = _tidy(answer or "", max_chars)
    if not summary:
        return fallback
    if borrows(summary, texts[i], texts[:i] + texts[i + 1 :]):
        log.warning("a batched summary carried another text's words; using the fallback")
        return fallback
    return summary


_WORD = re.compile(r"\w+", re.UNICODE)


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
    for sentence in sentences(summary):
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
