"""What the gateway did not deliver while the adapter was away, read back from each channel's history.

Discord replays missed events only to a RESUMEd session. A restarted process (or one whose session Discord
invalidated) IDENTIFYs and starts a new session, so the mentions sent while it was down would never arrive.
So the adapter remembers, per channel, the newest message it has published (one Redis hash; written after
the publish, so everything up to that id is on the bus), and on every READY reads each channel's history
after that id (oldest first, at most ``LIMIT`` per channel, for channels active within ``WINDOW_S``) and
hands those messages to the same handler as live ones. Channels with nothing remembered (their first message
came while the adapter was down) are read after the newest message seen anywhere, the moment the adapter
was last known to be listening (at most ``MAX_CHANNELS`` channels in all). The bus stores a platform message
id once, so a message that also arrives live is not processed twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from bots.discord.sdk import discord
from core import keys
from core.contract import Event, EventKind
from core.decode import as_str

log = logging.getLogger(__name__)

LIMIT = 100  # messages read back per channel (one history page)
WINDOW_S = 3600.0  # channels quiet for longer are not read back (a long outage is not replayed)
CONCURRENCY = 8  # history reads at once (discord.py keeps each channel's rate limit)
MAX_CHANNELS = 500  # history reads per READY (Discord allows 50 requests a second in all)
ANYWHERE = "*"  # the field of the newest message seen in any channel
_NEW = frozenset({EventKind.MENTION, EventKind.MESSAGE, EventKind.COMMAND})
DISCORD_EPOCH_MS = 1420070400000


def snowflake_age_s(snowflake: int, now: float | None = None) -> float:
    return (time.time() if now is None else now) - ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


class CatchUp:
    def __init__(self, redis: aioredis.Redis, platform: str) -> None:
        self.redis = redis
        self.key = keys.last_seen(platform)

    async def seen(self, event: Event) -> None:
        """Remember a published (or deliberately skipped) new message as its channel's newest."""
        message_id = event.message_id or ""
        if event.kind not in _NEW or event.private or not message_id.isdigit():
            return
        channel = event.thread or event.channel
        await self.redis.hset(self.key, mapping={channel: message_id, ANYWHERE: message_id})

    async def replay(
        self, client: discord.Client, handle: Callable[[discord.Message], Awaitable[None]]
    ) -> int:
        """Hand every message sent since the last one seen, channel by channel, to ``handle``."""
        remembered = {as_str(k): int(as_str(v)) for k, v in (await self.redis.hgetall(self.key)).items()}
        now = time.time()
        listening_until = remembered.pop(ANYWHERE, 0)
        if not listening_until or snowflake_age_s(listening_until, now) > WINDOW_S:
            return 0  # never listened, or too long ago to replay
        todo: dict[int, tuple[discord.abc.Messageable, int]] = {}
        for channel_id, last in remembered.items():
            channel = client.get_channel(int(channel_id))
            if snowflake_age_s(last, now) <= WINDOW_S and isinstance(channel, discord.abc.Messageable):
                todo[int(channel_id)] = (channel, last)
        for guild in client.guilds:  # channels never seen: from the moment the adapter stopped listening
            for text in guild.text_channels:
                if len(todo) >= MAX_CHANNELS:
                    break
                if text.id not in todo and text.permissions_for(guild.me).read_message_history:
                    todo[text.id] = (text, listening_until)
        slots = asyncio.Semaphore(CONCURRENCY)

        async def read(channel: discord.abc.Messageable, last: int) -> list[discord.Message]:
            async with slots:
                try:
                    return [
                        m
                        async for m in channel.history(
                            limit=LIMIT, after=discord.Object(last), oldest_first=True
                        )
                    ]
                except discord.HTTPException as exc:  # no access any more, deleted: nothing to read back
                    log.info(
                        "discord: history of %s not read back (%s)", getattr(channel, "id", "?"), exc.status
                    )
                    return []

        pages = await asyncio.gather(
            *(read(channel, last) for channel, last in list(todo.values())[:MAX_CHANNELS])
        )
        missed = [m for page in pages for m in page if client.user is None or m.author.id != client.user.id]
        for message in missed:
            await handle(message)
        if missed:
            log.info(
                "discord: %d messages sent while away read back from %d channels", len(missed), len(todo)
            )
        return len(missed)
