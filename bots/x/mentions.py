"""Polls ``GET /2/users/:id/mentions`` and publishes the mentions that pass the safety rails.

The ``since_id`` cursor lives in Redis and moves only after every mention it covers was decided and
published, so a restart (or a crash mid-poll) neither misses a mention nor answers one twice: the bus
drops a repeated tweet id and the rails remember each decision. Pages are fetched newest first and
handled oldest first. A spent rate-limit window waits for its reset; 5xx and network errors back off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from bots.x.api import MAX_PAGES, Me, XApi
from bots.x.config import XSettings
from bots.x.normalize import Accounts, Includes, mention_event
from bots.x.rails import Rails, x_key
from core.decode import as_str
from core.errors import PlatformRateLimited, PlatformUnavailable
from core.platform import EventSink

log = logging.getLogger(__name__)

CHAIN_TTL_S = 86400
CONVERSATION_TTL_S = 30 * 86400
MAX_BACKOFF_S = 300.0

# Move the cursor forward only (two pollers must not move it back).
_ADVANCE = """
local cur = redis.call('GET', KEYS[1])
if cur and (#cur > #ARGV[1] or (#cur == #ARGV[1] and cur >= ARGV[1])) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def chain_key(me: Me, event_id: str, channel: str) -> str:
    """The tweet the next answer to ``event_id`` in ``channel`` replies to (the last one we posted)."""
    return x_key(me, "chain", event_id, channel)


def conversation_key(me: Me, conversation: str) -> str:
    """The latest mention in a conversation: where answers with no event (digests) go."""
    return x_key(me, "conversation", conversation)


class MentionPoller:
    def __init__(
        self,
        api: XApi,
        redis: aioredis.Redis,
        settings: XSettings,
        me: Me,
        rails: Rails,
        publish: EventSink,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.redis = redis
        self.settings = settings
        self.me = me
        self.rails = rails
        self.publish = publish
        self.clock = clock
        self.owners = Accounts(settings.owner_accounts)
        self.cursor_key = x_key(me, "mentions", "since_id")
        self._advance = redis.register_script(_ADVANCE)
        self.refused: dict[str, int] = {}  # reason -> count, for logs and tests
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; waits for rate-limit resets and backs off on failures, never crashes."""
        backoff = 0.0
        while not stop.is_set():
            delay = self.settings.effective_poll_interval_s
            try:
                await self.poll_once()
                backoff = 0.0
            except PlatformRateLimited as exc:
                delay = exc.retry_after
                log.info("x mentions: rate limited, waiting %.0fs for the window to reset", delay)
            except PlatformUnavailable as exc:
                backoff = min(max(backoff * 2, min(2.0, delay)), MAX_BACKOFF_S)
                delay = backoff
                log.warning("x mentions: %s; retrying in %.0fs", exc, delay)
            except Exception:  # a bad answer or a bug must not stop the bot from reading mentions
                backoff = min(max(backoff * 2, 30.0), MAX_BACKOFF_S)
                delay = max(delay, backoff)
                log.exception("x mentions: poll failed; retrying in %.0fs", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def poll_once(self) -> int:
        """One poll: every new mention decided and, if admitted, published. Returns how many were."""
        raw = await self.redis.get(self.cursor_key)
        since = as_str(raw) if raw is not None else None
        start = None
        if since is None and self.settings.max_mention_age_s > 0:
            start = datetime.fromtimestamp(self.clock() - self.settings.max_mention_age_s, UTC)
        tweets: list[dict[str, Any]] = []
        includes: dict[str, list[Any]] = {}
        token: str | None = None
        for _ in range(MAX_PAGES):
            payload = await self.api.mentions(self.me.id, since_id=since, start_time=start, token=token)
            tweets.extend(payload.get("data") or [])
            for name, values in (payload.get("includes") or {}).items():
                includes.setdefault(name, []).extend(values)
            token = (payload.get("meta") or {}).get("next_token")
            if not token:
                break
        else:
            log.warning("x mentions: more than %d pages since %s; older ones are skipped", MAX_PAGES, since)
        if not tweets:
            return 0
        merged = Includes.of({"includes": includes})
        count = 0
        for tweet in sorted(tweets, key=lambda t: int(t["id"])):
            count += await self._handle(tweet, merged)
        newest = max((str(t["id"]) for t in tweets), key=int)
        await self._advance(keys=[self.cursor_key], args=[newest])
        return count

    async def _handle(self, tweet: dict[str, Any], includes: Includes) -> int:
        decision = await self.rails.admit(tweet, includes)
        if not decision.answer:
            self.refused[decision.reason] = self.refused.get(decision.reason, 0) + 1
            if decision.reason != "already_answered":
                log.info("x mentions: not answering %s (%s)", tweet["id"], decision.reason)
            return 0
        event = mention_event(tweet, includes, me=self.me, owners=self.owners)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(chain_key(self.me, event.id, event.channel), str(tweet["id"]), ex=CHAIN_TTL_S)
            pipe.set(conversation_key(self.me, event.channel), str(tweet["id"]), ex=CONVERSATION_TTL_S)
            await pipe.execute()
        stream_id = await self.publish(event)
        await self.rails.published(str(tweet["id"]))
        if stream_id is None:
            return 0
        self.published += 1
        return 1
