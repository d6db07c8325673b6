"""Long polling with the getUpdates offset kept in Redis, so a restart neither loses nor repeats updates.

PTB's Updater keeps the offset in memory and confirms a batch before it is handled; here each update is
published to the bus first and only then is the offset advanced (in Redis, then implicitly at Telegram
by the next getUpdates). A crash in between re-reads that one update, and the bus drops the repeat by
its message id. Flood control waits as told; network trouble and a competing poller back off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError

from bots.telegram.errors import retry_seconds
from core.errors import ConfigError
from core.logs import Outage
from core.redis_server import REDIS_DOWN

log = logging.getLogger(__name__)

# message_reaction(_count) and chat_member only arrive when asked for by name.
ALLOWED_UPDATES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "message_reaction",
    "message_reaction_count",
    "my_chat_member",
    "chat_member",
)
MAX_BACKOFF_S = 60.0


def offset_key(bot_id: int) -> str:
    return f"chorus:{{telegram}}:offset:{bot_id}"


class Poller:
    def __init__(
        self,
        bot: Bot,
        redis: aioredis.Redis,
        handle: Callable[[Update], Awaitable[None]],
        *,
        timeout_s: int,
        backoff_s: float,
    ) -> None:
        self.bot = bot
        self.redis = redis
        self.handle = handle
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.key = offset_key(bot.id)
        self.outage = Outage(
            log, "Redis (telegram updates)", waiting="updates are read again when it answers"
        )

    async def offset(self) -> int | None:
        raw = await self.redis.get(self.key)
        return int(raw) if raw else None

    async def run(self) -> None:
        """Poll until cancelled; raises ConfigError if Telegram stops accepting the token."""
        offset = await self.offset()
        failures = 0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.timeout_s, allowed_updates=list(ALLOWED_UPDATES)
                )
            except RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except InvalidToken as exc:
                raise ConfigError("Telegram no longer accepts TELEGRAM_BOT_TOKEN (revoked?)") from exc
            except (Conflict, NetworkError, TelegramError) as exc:
                failures += 1
                delay = min(self.backoff_s * 2 ** min(failures - 1, 6), MAX_BACKOFF_S)
                level = logging.WARNING if isinstance(exc, Conflict) or failures > 1 else logging.INFO
                log.log(level, "getUpdates failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            for update in updates:
                try:
                    await self.handle(update)
                    await self.redis.set(self.key, update.update_id + 1)
                    self.outage.recovered()
                except REDIS_DOWN as exc:  # one warning and a summary a minute, not a traceback per try
                    self.outage.failed(exc)
                    await asyncio.sleep(self.backoff_s)
                    break  # poll again from the last stored offset
                except Exception:
                    log.exception("could not store update %s; will read it again", update.update_id)
                    await asyncio.sleep(self.backoff_s)
                    break
                offset = update.update_id + 1
