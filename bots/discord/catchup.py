"""What the gateway did not deliver while the adapter was away, read back from each channel's history.

Discord replays missed events only to a RESUMEd session. A restarted process (or one whose session Discord
invalidated) IDENTIFYs and starts a new session, so the mentions sent while it was down would never arrive.
So the adapter remembers, per channel, the newest message it has published (one Redis hash; written after
the publish, so everything up to that id is on the bus), and reads each channel's history after that id
(oldest first, at most ``LIMIT`` per channel, for channels active within ``WINDOW_S``), handing those
messages to the same handler as live ones. Channels with nothing remembered (their first message came
while the adapter was down) are read after the newest message seen anywhere, the moment the adapter was
last known to be listening (at most ``MAX_CHANNELS`` channels a session). The bus stores a platform message
id once, so a message that also arrives live is not processed twice.

The positions are those at the start of the session (READY, ``session_started``), taken before any of its
live messages moves them: discord.py dispatches messages from READY on but on_ready only once the guilds
stopped arriving (seconds later, more under load), and a live mention published in between would move its
channel's position past the ones sent while away. Guilds are read back once each: those available at
on_ready then, a guild that becomes available later (an outage, a slow start) when it does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bots.discord.sdk import discord
from core import keys
from core.contract import Event, EventKind
from core.decode import as_str

log = logging.getLogger(__name__)

LIMIT = 100  # messages read back per channel (one history page)
WINDOW_S = 3600.0  # channels quiet for longer are not read back (a long outage is not replayed)
CONCURRENCY = 8  # history reads at once (discord.py keeps each channel's rate limit)
MAX_CHANNELS = 500  # history reads per session (Discord allows 50 requests a second in all)
POSITIONS_WAIT_S = 30.0  # how long a session's start waits for Redis to read the positions
ANYWHERE = "*"  # the field of the newest message seen in any channel
_NEW = frozenset({EventKind.MENTION, EventKind.MESSAGE, EventKind.COMMAND})
DISCORD_EPOCH_MS = 1420070400000


def snowflake_age_s(snowflake: int, now: float | None = None) -> float:
    return (time.time() if now is None else now) - ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


@dataclass
class _Session:
    positions: asyncio.Task[dict[str, int] | None]  # as at READY; None if Redis could not be read
    guilds_read: set[int] = field(default_factory=set)
    budget: int = MAX_CHANNELS  # history reads left


class CatchUp:
    def __init__(self, redis: aioredis.Redis, platform: str) -> None:
        self.redis = redis
        self.key = keys.last_seen(platform)
        self._session: _Session | None = None
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def session_started(self) -> _Session:
        """A new gateway session (READY): take the positions now, before its first message is handled
        (called synchronously from the READY dispatch, which precedes the session's messages)."""
        self._session = _Session(asyncio.create_task(self._positions(), name="discord-catchup-positions"))
        return self._session

    def stop(self) -> None:
        """The adapter stops: a session still waiting for Redis to read its positions gives up."""
        if self._session is not None:
            self._session.positions.cancel()

    async def _positions(self) -> dict[str, int] | None:
        deadline = time.monotonic() + POSITIONS_WAIT_S
        while True:
            try:
                return await self._remembered()
            except (RedisConnectionError, RedisTimeoutError) as exc:  # Redis restarting: wait for it
                if time.monotonic() > deadline:
                    log.warning("discord: positions to read back from not readable (%r)", exc)
                    return None
                await asyncio.sleep(1.0)

    async def _remembered(self) -> dict[str, int]:
        return {as_str(k): int(as_str(v)) for k, v in (await self.redis.hgetall(self.key)).items()}

    async def seen(self, event: Event) -> None:
        """Remember a published (or deliberately skipped) new message as its channel's newest."""
        message_id = event.message_id or ""
        if event.kind not in _NEW or event.private or not message_id.isdigit():
            return
        if self._session is not None:  # this session's starting positions are read before they move
            await asyncio.wait({self._session.positions})
        channel = event.thread or event.channel
        await self.redis.hset(self.key, mapping={channel: message_id, ANYWHERE: message_id})

    async def replay(
        self,
        client: discord.Client,
        guilds: Iterable[discord.Guild],
        handle: Callable[[discord.Message], Awaitable[None]],
    ) -> int:
        """Hand every message sent in ``guilds`` since the session's positions, channel by channel, to
        ``handle``; each available guild once a session (unavailable ones have no channels yet)."""
        session = self._session or self.session_started()
        todo_guilds = [g for g in guilds if not g.unavailable and g.id not in session.guilds_read]
        if not todo_guilds:
            return 0
        session.guilds_read.update(g.id for g in todo_guilds)
        positions = await session.positions
        remembered = dict(positions if positions is not None else await self._remembered())
        now = time.time()
        listening_until = remembered.pop(ANYWHERE, 0)
        if not listening_until or snowflake_age_s(listening_until, now) > WINDOW_S:
            return 0  # never listened, or too long ago to replay
        todo: dict[int, tuple[discord.abc.Messageable, int]] = {}
        for guild in todo_guilds:
            for channel_id, last in remembered.items():
                channel = guild.get_channel_or_thread(int(channel_id))
                if snowflake_age_s(last, now) <= WINDOW_S and isinstance(channel, discord.abc.Messageable):
                    todo[int(channel_id)] = (channel, last)
            for text in guild.text_channels:  # channels never seen: from the moment the adapter stopped
                if text.id not in todo and text.permissions_for(guild.me).read_message_history:
                    todo[text.id] = (text, listening_until)
        reads = list(todo.values())[: max(session.budget, 0)]
        session.budget -= len(reads)

        async def read(channel: discord.abc.Messageable, last: int) -> list[discord.Message]:
            async with self._slots:
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

        pages = await asyncio.gather(*(read(channel, last) for channel, last in reads))
        missed = [m for page in pages for m in page if client.user is None or m.author.id != client.user.id]
        for message in missed:
            await handle(message)
        if missed:
            log.info(
                "discord: %d messages sent while away read back from %d channels of %d servers",
                len(missed), len(reads), len(todo_guilds),
            )  # fmt: skip
        return len(missed)
