"""Who moderates a Telegram chat: its administrators and creator, asked from Telegram and cached briefly.

In a private chat the user moderates their own chat. A message sent "as the group" (an anonymous admin)
comes from the group itself and counts as a moderator's. One getChatAdministrators call per chat per
``ttl_s`` answers for everyone, cached in Redis under the chat's community hash tag; if Telegram cannot
be asked, nobody is a moderator (fail closed) and nothing is cached.
"""

from __future__ import annotations

import json
import logging

import redis.asyncio as aioredis
from telegram import Bot, Chat, User
from telegram.error import TelegramError

from core import keys

log = logging.getLogger(__name__)


class Moderators:
    def __init__(self, bot: Bot, redis: aioredis.Redis, ttl_s: float) -> None:
        self.bot = bot
        self.redis = redis
        self.ttl_s = ttl_s

    async def is_moderator(self, chat: Chat, user: User | None, sender_chat: Chat | None = None) -> bool:
        if chat.type == Chat.PRIVATE:
            return True
        if sender_chat is not None:
            return sender_chat.id == chat.id
        if user is None:
            return False
        return user.id in await self.admin_ids(chat.id)

    async def admin_ids(self, chat_id: int) -> set[int]:
        key = keys.community(f"telegram:{chat_id}", "tg-admins")
        cached = await self.redis.get(key) if self.ttl_s > 0 else None
        if cached is not None:
            return set(json.loads(cached))
        try:
            admins = await self.bot.get_chat_administrators(chat_id)
        except TelegramError as exc:
            log.warning("could not ask Telegram for the admins of chat %s: %s", chat_id, exc)
            return set()
        ids = sorted(a.user.id for a in admins)
        if self.ttl_s > 0:
            await self.redis.set(key, json.dumps(ids), px=max(1, int(self.ttl_s * 1000)))
        return set(ids)

    async def forget(self, chat_id: int) -> None:
        """Drop the cache (e.g. after Telegram reports a change of someone's status)."""
        await self.redis.delete(keys.community(f"telegram:{chat_id}", "tg-admins"))
