"""The Telegram platform: updates in (polling or webhook), Actions out, through python-telegram-bot.

Thin by design: ``normalize`` turns updates into Events, ``deliver`` turns Actions into Bot API calls,
``commands`` publishes the command list, ``buttons`` keeps callback data safe, ``moderators`` asks who
administers a chat. ``pacing.ChatPacer`` paces requests (30/s overall, 20/min per group); a flood-control
answer is handed to the core Sender as PlatformRateLimited, which waits on that chat's lane only and
resends the same Action, so nothing is lost or sent twice and other chats go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from bots.telegram.buttons import Buttons
from bots.telegram.commands import command_map, publish_commands
from bots.telegram.config import FACTS, TelegramSettings
from bots.telegram.deliver import Deliverer
from bots.telegram.errors import safe_message, translate
from bots.telegram.markup import html_text
from bots.telegram.moderators import Moderators
from bots.telegram.normalize import Normalizer, reaction_event, reaction_key
from bots.telegram.pacing import ChatPacer
from bots.telegram.polling import ALLOWED_UPDATES, Poller
from bots.telegram.roles import TelegramRoles
from bots.telegram.webhook import WebhookServer
from bots.telegram.working import Working
from core import keys, logs
from core.contract import Action, Author, Event, LiveUpdate, Receipt
from core.errors import ConfigError, PlatformError, PlatformUnavailable
from core.platform import BlobReader, EventSink, Platform
from core.services import Services

log = logging.getLogger(__name__)

STALE_BUTTON = "This button has expired or is not valid here. Please ask me again."
NOT_YOURS = "Only the person who asked (or a moderator) can use these buttons."
Then = Callable[[], Awaitable[None]] | None
"""What to do once an update's Events are stored: answer a button press, remember reaction totals."""
READY_WAIT_S = 30.0
STOP_GRACE_S = 10.0
REACTION_COUNTS_TTL_S = 30 * 86400


class TelegramPlatform(Platform):
    name = "telegram"
    capabilities = FACTS.capabilities

    def __init__(
        self,
        settings: TelegramSettings,
        services: Services,
        *,
        shutdown: Callable[[], None] | None = None,
    ) -> None:
        if not settings.token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
        self.settings = settings
        self.services = services
        self.shutdown = shutdown or (lambda: None)
        self.capabilities = FACTS.capabilities.model_copy(
            update={
                "live_interval_s": settings.live_group_interval_s,
                "live_private_interval_s": settings.live_private_interval_s,
            }
        )
        _mask_in_logs(settings.token)
        timeout = settings.request_timeout_s
        self.bot: ExtBot[Any] = ExtBot(
            settings.token,
            base_url=settings.api_base_url,
            base_file_url=settings.file_base_url,
            request=HTTPXRequest(
                connection_pool_size=16, read_timeout=timeout, write_timeout=timeout,
                connect_timeout=timeout, pool_timeout=timeout,
            ),
            get_updates_request=HTTPXRequest(
                connection_pool_size=1, read_timeout=timeout, connect_timeout=timeout, pool_timeout=timeout
            ),
            rate_limiter=ChatPacer(settings.rate_per_second, settings.rate_group_per_minute),
        )  # fmt: skip
        redis = services.redis
        self.buttons = Buttons(redis, settings.button_ttl_s)
        self.moderators = Moderators(self.bot, redis, settings.admin_cache_s)
        self.deliverer = Deliverer(self.bot, self.buttons, services.bus.receipt, settings.token)
        self.working = Working(
            self.bot,
            services.bus.settled,
            interval_s=settings.chat_action_interval_s,
            max_s=settings.chat_action_max_s,
        )
        self.normalizer: Normalizer | None = None
        self.webhook: WebhookServer | None = None
        self._publish: EventSink | None = None
        self._poller: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopped = False
        self._sending = 0  # deliveries in flight: stop() lets them finish so none is sent twice
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self, publish: EventSink) -> None:
        self._publish = publish
        self._stopped = False
        try:
            await self.bot.initialize()  # getMe
        except InvalidToken as exc:
            raise ConfigError("Telegram refused TELEGRAM_BOT_TOKEN (Unauthorized): check the token") from exc
        except TelegramError as exc:
            raise PlatformUnavailable(f"cannot reach the Telegram Bot API: {self._safe(exc)}") from exc
        self.normalizer = Normalizer(
            self.bot.bot, command_map(self.services.commands), self.moderators.is_moderator
        )
        try:
            await publish_commands(self.bot, self.services.commands)
        except TelegramError as exc:
            log.warning("could not register the command list with Telegram: %s", self._safe(exc))
        try:
            await self._receive_updates()
        except BadRequest as exc:
            raise ConfigError(f"Telegram refused the webhook settings: {self._safe(exc)}") from exc
        except TelegramError as exc:
            raise PlatformUnavailable(f"cannot reach the Telegram Bot API: {self._safe(exc)}") from exc
        self._ready.set()
        if (roles := self.services.roles.slot(self.name)) is not None:  # the web app re-checks moderators
            roles.provide(TelegramRoles(self.bot, self.moderators))
        log.info("telegram: running as @%s (%s)", self.bot.username, self.settings.mode)

    async def _receive_updates(self) -> None:
        if self.settings.mode == "webhook":
            await self._start_webhook()
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            poller = Poller(
                self.bot,
                self.services.redis,
                self.handle,
                timeout_s=self.settings.poll_timeout_s,
                backoff_s=self.settings.retry_backoff_s,
            )
            self._poller = asyncio.create_task(self._poll(poller), name="telegram-poller")

    async def _start_webhook(self) -> None:
        s = self.settings
        self.webhook = WebhookServer(
            self.bot, self.handle, secret=s.secret_token(), listen=s.webhook_listen,
            port=s.webhook_port, path=s.webhook_path,
        )  # fmt: skip
        try:
            await self.webhook.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for the webhook on {s.webhook_listen}:{s.webhook_port}: {exc}"
            ) from exc
        await self.bot.set_webhook(
            url=s.webhook_url or "",
            secret_token=s.secret_token(),
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=False,
        )

    def _safe(self, exc: TelegramError) -> str:
        return safe_message(exc, self.settings.token)

    async def _poll(self, poller: Poller) -> None:
        try:
            await poller.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # nothing else would notice a dead poller: stop the process
            log.error("telegram polling stopped: %s", exc)
            self.shutdown()

    def connected(self) -> bool:
        polling = self._poller is not None and not self._poller.done()
        return self._ready.is_set() and (polling or self.webhook is not None)

    async def stop(self) -> None:
        """Stop reading; the offset is in Redis and the webhook stays set, so Telegram keeps updates."""
        self._stopped = True
        self._ready.clear()
        if (roles := self.services.roles.slot(self.name)) is not None:
            roles.clear()
        if self._poller is not None:
            self._poller.cancel()
            # bounded (asyncio.wait neither cancels again nor waits past the timeout): a poll stuck in
            # the HTTP client must not hold the whole shutdown
            done, _ = await asyncio.wait({self._poller}, timeout=STOP_GRACE_S)
            if not done:
                log.warning("telegram: the poller did not stop within %.0fs; leaving it", STOP_GRACE_S)
            elif not self._poller.cancelled() and self._poller.exception() is not None:
                log.warning("telegram: the poller ended with %r", self._poller.exception())
            self._poller = None
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), STOP_GRACE_S)
        await self.working.stop()
        with contextlib.suppress(Exception):
            await self.bot.shutdown()

    # -- inbound -------------------------------------------------------------------------------------
    async def handle(self, update: Update) -> None:
        """Publish what an update means. Storage failures raise (the update is read again later)."""
        if self._publish is None or self.normalizer is None:
            raise PlatformUnavailable("the telegram adapter is not started")
        try:
            events, then = await self._events(update)
        except TelegramError as exc:
            raise translate(exc, self.settings.token) from exc
        for event in events:
            if await self._publish(event) is not None:
                self.working.begin(event)
        if then is not None:  # only once the Events are stored (else the update is read again)
            await then()

    async def _events(self, update: Update) -> tuple[list[Event], Then]:
        assert self.normalizer is not None  # noqa: S101 - start() sets it before any update is read
        n = self.normalizer
        if update.callback_query is not None:
            return await self._press(update)
        if update.message is not None:
            return _some(await n.message(update.message)), None
        if update.channel_post is not None:
            return _some(await n.message(update.channel_post)), None
        if update.edited_message is not None:
            return _some(await n.message(update.edited_message, edited=True)), None
        if update.edited_channel_post is not None:
            return _some(await n.message(update.edited_channel_post, edited=True)), None
        if update.message_reaction is not None:
            return n.reactions(update.message_reaction), None
        if update.message_reaction_count is not None:
            return await self._reaction_counts(update)
        member = update.chat_member or update.my_chat_member
        if member is not None:  # someone's rights changed: ask again next time
            await self.moderators.forget(member.chat.id)
        return [], None

    async def _press(self, update: Update) -> tuple[list[Event], Then]:
        query = update.callback_query
        assert query is not None and self.normalizer is not None  # noqa: S101

        def answer(text: str | None = None) -> Then:
            async def call() -> None:
                with contextlib.suppress(TelegramError):  # too old after a restart: nothing to do
                    await query.answer(text=text, show_alert=bool(text))

            return call

        message = query.message
        if message is None:
            return [], answer(STALE_BUTTON)
        pressed = await self.buttons.resolve(message.chat.id, message.message_id, query.data)
        if pressed is None:
            return [], answer(STALE_BUTTON)
        event = await self.normalizer.choice(query, pressed.payload)
        if pressed.allowed_user and event.author.id != pressed.allowed_user and not event.author.is_moderator:
            return [], answer(NOT_YOURS)
        return [event], answer()

    async def _reaction_counts(self, update: Update) -> tuple[list[Event], Then]:
        """Anonymous reactions come as totals: the change since the last totals becomes the delta."""
        counts = update.message_reaction_count
        assert counts is not None  # noqa: S101
        chat, redis = counts.chat, self.services.redis
        key = keys.community(f"telegram:{chat.id}", "tg-reaction-counts", str(counts.message_id))
        before = {_s(k): int(v) for k, v in (await redis.hgetall(key)).items()}
        after = {reaction_key(r.type): r.total_count for r in counts.reactions}
        author = Author(id=str(chat.id), name=chat.title or "")
        at = counts.date.timestamp()
        events = [
            reaction_event(
                chat, counts.message_id, emoji, after.get(emoji, 0) - before.get(emoji, 0), author, at
            )
            for emoji in sorted(set(before) | set(after))
            if after.get(emoji, 0) != before.get(emoji, 0)
        ]

        async def remember() -> None:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if after:
                    pipe.hset(key, mapping=after)  # type: ignore[arg-type]
                    pipe.expire(key, REACTION_COUNTS_TTL_S)
                await pipe.execute()

        return events, remember

    # -- outbound ------------------------------------------------------------------------------------
    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        if self._stopped:  # not acknowledged: the Action stays in the outbox for the next start
            raise PlatformError("the telegram adapter has stopped")
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), READY_WAIT_S)
            except TimeoutError:
                raise PlatformUnavailable("the telegram adapter is not connected yet") from None
        self._sending += 1
        self._idle.clear()
        try:
            receipt = await self.deliverer.deliver(action, blobs)
        finally:
            self._sending -= 1
            if not self._sending:
                self._idle.set()
        self.working.delivered(action)
        return receipt

    async def show_live(self, update: LiveUpdate) -> bool:
        """Private chats: the Bot API's own animated draft (``sendMessageDraft``); groups: a placeholder."""
        if not update.private:
            return False
        try:
            await self.bot.send_message_draft(
                chat_id=int(update.channel),
                draft_id=draft_id(update.event_id),
                text=html_text(update.text),
                parse_mode=ParseMode.HTML,
                message_thread_id=int(update.thread) if update.thread and update.thread.isdigit() else None,
            )
        except TelegramError as exc:
            raise translate(exc, self.settings.token) from exc
        return True

    async def download(self, file_ref: str) -> bytes:
        """Bytes of an Attachment's ``tg-file:<file id>`` (getFile, then the file URL, token kept inside)."""
        file_id = file_ref.removeprefix("tg-file:")
        try:
            file = await self.bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise translate(exc, self.settings.token) from exc


def draft_id(event_id: str) -> int:
    """A stable non-zero draft id per Event: changes of the same draft are animated by the client."""
    try:
        return int(event_id[:8], 16) or 1
    except ValueError:
        return abs(hash(event_id)) % 2**31 or 1


def _some(event: Event | None) -> list[Event]:
    return [event] if event is not None else []


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _mask_in_logs(secret: str) -> None:
    """Add the token to the process's log masker (the CLI sets it up with the core settings' secrets)."""
    for handler in logging.getLogger().handlers:
        for masker in handler.filters:
            if isinstance(masker, logs.SecretMasker) and secret not in masker.secrets:
                masker.secrets = sorted([*masker.secrets, secret], key=len, reverse=True)


def create(settings: TelegramSettings, services: Services, options: dict[str, Any]) -> TelegramPlatform:
    return TelegramPlatform(settings, services, shutdown=options.get("shutdown"))


__all__ = ["TelegramPlatform", "create"]
