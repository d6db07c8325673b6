"""The feed as one object (``core.app.Chorus.feed``): its parts, and how it hears the rest of Chorus.

It observes messages, edits, deletions and reactions from the worker (``services.observers``) and
published posts from the senders (``services.delivery_hooks``). Only channels a moderator opted in are
ingested; private chats and other bots never are.
"""

from __future__ import annotations

import logging

from core.contract import Action, DraftRef, Event, EventKind, Post, Receipt
from core.decode import as_str
from core.errors import NotAvailable
from core.feed import keys as fk
from core.feed.digests import Digests
from core.feed.ingest import FeedStore, event_item_id, item_from_event
from core.feed.items import FeedItem
from core.feed.preferences import PreferenceStore
from core.feed.retention import Retention
from core.feed.settings import FeedSettings
from core.feed.sources import Poller
from core.feed.subscriptions import SubscriptionStore
from core.feed.summaries import Summaries
from core.feed.timelines import Timelines
from core.feed.trending import Trending
from core.services import Services
from core.text import clean

log = logging.getLogger(__name__)

BOT_AUTHOR = "chorus"
MAX_CHANNELS = 200


class FeedService:
    def __init__(self, services: Services, settings: FeedSettings | None = None) -> None:
        self.services = services
        self.settings = settings or FeedSettings()
        self.platforms = services.platforms
        redis = services.redis
        self.store = FeedStore(redis, self.settings)
        self.timelines = Timelines(redis, self.settings.tau_s)
        self.summaries = Summaries(
            redis,
            services.summarizer.optional,
            self.settings.as_written_chars,
            batch_size=self.settings.summary_batch,
            batch_wait_s=self.settings.summary_batch_wait_ms / 1000,
        )
        self.subscriptions = SubscriptionStore(redis)
        self.preferences = PreferenceStore(redis)  # each person's mutes, order and learned weights
        self.trending = Trending(redis)
        self.digests = Digests(
            services, self.timelines, self.summaries, self.subscriptions, self.settings, self.preferences
        )
        self.retention = Retention(redis, self.settings)
        self.poller = Poller(services, self.store, self.settings.poll_interval_s)

    def public_url(self) -> str:
        """Where people reach the HTTP port (``CHORUS_FEED_BASE_URL``, else ``http://<host>:<port>``)."""
        if self.settings.base_url:
            return self.settings.base_url.rstrip("/")
        port = self.services.settings.http_port
        if port <= 0:
            raise NotAvailable("The web pages are turned off on this server (CHORUS_HTTP_PORT=0).")
        return f"http://{self.settings.http_host}:{port}"

    # -- opted-in channels (community configuration) ------------------------------------------------------
    async def add_channel(self, community_key: str, channel: str) -> bool:
        key = fk.channels(community_key)
        if await self.services.redis.scard(key) >= MAX_CHANNELS:
            return False
        return bool(await self.services.redis.sadd(key, channel))

    async def remove_channel(self, community_key: str, channel: str) -> bool:
        return bool(await self.services.redis.srem(fk.channels(community_key), channel))

    async def channels(self, community_key: str) -> list[str]:
        raw = await self.services.redis.smembers(fk.channels(community_key))
        return sorted(as_str(c) for c in raw)

    async def opted_in(self, event: Event) -> bool:
        return bool(await self.services.redis.sismember(fk.channels(event.community_key), event.channel))

    # -- what the worker sees -------------------------------------------------------------------------------
    async def observe(self, event: Event, services: Services) -> None:
        """Observer for MESSAGE, EDITED, DELETED and REACTION events."""
        if event.kind is EventKind.MESSAGE:
            if event.private or event.author.is_bot or not (event.text.strip() or event.attachments):
                return
            if not await self.opted_in(event):
                return
            item = item_from_event(event)
            item.text = clean(item.text)
            result = await self.store.ingest([item])
            if result.new + result.joined:
                await self.trending.record(item)
            if result.new + result.joined and event.reply_to is not None:
                await self.store.engage(event_item_id(event, event.reply_to.message_id), replies=1)
        elif event.kind is EventKind.EDITED and event.message_id:
            media = tuple((a.kind, a.url) for a in event.attachments if a.url) or None
            await self.store.edit(event_item_id(event), clean(event.text), media)
        elif event.kind is EventKind.DELETED and event.message_id:
            await self.store.delete(event_item_id(event))
        elif event.kind is EventKind.REACTION and event.message_id:
            await self.store.engage(event_item_id(event), reactions=event.reaction_delta)

    # -- what the bots publish ------------------------------------------------------------------------------
    async def on_delivered(self, action: Action, receipt: Receipt) -> None:
        """Delivery hook: an approved or shared draft (``ref`` ``draft:<id>``) joins the feed."""
        if not isinstance(action, Post) or not receipt.message_ids:
            return
        ref = DraftRef.parse(action.ref)
        if ref is None or ref.image:
            return
        draft_id = ref.draft_id
        text = "\n\n".join(action.parts) if action.parts else action.text
        item = FeedItem(
            platform=action.platform,
            community=action.community,
            channel=action.channel,
            message_id=receipt.message_ids[0],
            author_id=BOT_AUTHOR,
            author_name="Chorus",
            text=clean(text),
            is_bot=True,
            remix=await self.remix_prompt(f"{action.platform}:{action.community}", draft_id),
        )
        await self.store.ingest([item])

    async def remix_prompt(self, community_key: str, draft_id: str) -> str:
        """The request that made a draft, when the assistant can tell (optional: "" otherwise)."""
        try:
            return await self.services.draft_requests.get()(community_key, draft_id)
        except Exception as exc:  # a remix prompt is a nicety; never lose the post over it
            log.debug("no remix prompt for draft %s: %r", draft_id, exc)
            return ""
