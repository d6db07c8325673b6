"""The X bot: a thin adapter over tweepy that polls mentions and feed sources and posts Actions as tweets.

One account is one community (``x:<account id>``); owner accounts (``X_OWNER_ACCOUNTS``) are its
moderators. Feed sources (``X_FEED_*``) are registered with the feed's poller. Mentions become Events (commands are the words after the mention, read by the core's
router); Actions become replies, chained threads and image tweets with alt text. X has no buttons: the
core turns choices into a numbered list answered with ``@bot choose N``. Drafts for the account's own
timeline wait for an owner's approval (the core's ``approve`` command, from any platform). The safety
rails are in :mod:`bots.x.rails`; rate limits and errors in :mod:`bots.x.api`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from bots.x.api import Me, XApi
from bots.x.config import FACTS, XSettings
from bots.x.deliver import Deliverer
from bots.x.feed import XFeedSource, sources_of
from bots.x.mentions import MentionPoller
from bots.x.rails import PostBudget, Rails
from core.contract import Action, Receipt
from core.errors import ConfigError, DeliveryRejected, PlatformError, PlatformRateLimited
from core.feed.ingest import FeedStore
from core.feed.sources import register_source
from core.platform import BlobReader, EventSink, Platform
from core.services import Services

log = logging.getLogger(__name__)

ME_TTL_S = 86400  # GET /2/users/me is 25 calls a day on the Free tier: cache it across restarts


class XPlatform(Platform):
    name = "x"
    capabilities = FACTS.capabilities

    def __init__(
        self,
        settings: XSettings,
        services: Services,
        *,
        api: XApi | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.services = services
        self.api = api or XApi(settings)
        self.clock = clock
        self.me: Me | None = None
        self.mentions: MentionPoller | None = None
        self.feed_sources: list[XFeedSource] = []
        self._feed_api: XApi | None = None
        self._deliverer: Deliverer | None = None
        self._ready = asyncio.Lock()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        logging.getLogger("tweepy").setLevel(logging.INFO)  # its DEBUG logs carry request headers

    async def start(self, publish: EventSink) -> None:
        me = await self.account()
        redis = self.services.redis
        rails = Rails(redis, self.settings, me, clock=self.clock)
        self.mentions = MentionPoller(self.api, redis, self.settings, me, rails, publish, clock=self.clock)
        self._stop.clear()
        self._tasks.append(asyncio.create_task(self.mentions.run(self._stop), name="x-mentions"))
        store = FeedStore(redis)
        if self._feed_api is None and self.settings.has_feed_sources:
            self._feed_api = XApi(self.settings, limits=self.api.limits)  # its own sessions, same limits
        self.feed_sources = [
            XFeedSource(source, self._feed_api or self.api, redis, self.settings, me, store, clock=self.clock)
            for source in sources_of(self.settings)
        ]
        for feed_source in self.feed_sources:
            register_source(self.services, feed_source)  # the feed's poller (``chorus run``) polls them
        log.info(
            "x: polling mentions of @%s (id %s) every %.0fs (tier %s)",
            me.username,
            me.id,
            self.settings.effective_poll_interval_s,
            self.settings.tier,
        )

    def connected(self) -> bool:
        return bool(self._tasks) and not self._stop.is_set() and not any(t.done() for t in self._tasks)

    async def stop(self) -> None:
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5)
        # a request still running in a worker thread finishes on its own (requests have timeouts)
        self.api.close()
        if self._feed_api is not None:
            self._feed_api.close()

    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        deliverer = await self._delivery()
        return await deliverer.deliver(action, blobs)

    # -- the account -------------------------------------------------------------------------------
    async def account(self) -> Me:
        """The bot's own account, from ``GET /2/users/me`` or the cache (senders may need it before start)."""
        async with self._ready:
            if self.me is None:
                self.me = await self._load_me()
            return self.me

    async def _delivery(self) -> Deliverer:
        if self._deliverer is None:
            me = await self.account()
            budget = PostBudget(
                self.services.redis, me, self.settings.effective_posts_per_day, clock=self.clock
            )
            self._deliverer = Deliverer(self.api, self.services.redis, self.settings, me, budget)
        return self._deliverer

    async def _load_me(self) -> Me:
        redis = self.services.redis
        fingerprint = hashlib.sha256(self.settings.secret("access_token").encode()).hexdigest()[:16]
        key = f"chorus:x:me:{fingerprint}"
        cached = await redis.get(key)
        if cached:
            return Me(**json.loads(cached))
        try:
            me = await self.api.me()
        except DeliveryRejected as exc:
            raise ConfigError(
                "X rejected the credentials: check X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and "
                "X_ACCESS_TOKEN_SECRET, and that the app has Read and write permissions"
            ) from exc
        except PlatformRateLimited as exc:
            raise ConfigError(
                f"X asks to wait {exc.retry_after:.0f}s before the bot account can be looked up "
                "(GET /2/users/me); start again then"
            ) from exc
        except PlatformError as exc:
            raise ConfigError(f"X is not reachable at {self.settings.api_base_url}: {exc}") from exc
        await redis.set(key, json.dumps({"id": me.id, "username": me.username, "name": me.name}), ex=ME_TTL_S)
        return me


def create(settings: XSettings, services: Services, options: dict[str, Any]) -> XPlatform:
    return XPlatform(settings, services)


__all__ = ["XPlatform", "create"]
