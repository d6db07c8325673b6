"""The Discord adapter: discord.py in, core Events out; Actions in, Discord messages out.

Inbound (``ChorusClient``): mentions, replies to the bot and DMs become MENTION Events; slash commands
COMMAND; button presses CHOICE; other messages, edits, deletions and reactions in servers feed Events.
Interactions are acknowledged at once (Discord allows 3 seconds) and answered later as follow-ups
(``interactions``). Outbound: ``deliver.Deliverer``. Slash commands are built from the core's command
registry and synced at start-up, globally or to ``DISCORD_GUILD_IDS``.

Intents: guilds, guild and DM messages, reactions, and (privileged) message content for the feed. If the
application is not allowed message content, the adapter reconnects without it: mentions, replies to the
bot, DMs and slash commands still work; only the feed sees no text of other messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

import yarl

from bots.discord import buttons
from bots.discord.catchup import CatchUp
from bots.discord.commands import application_commands
from bots.discord.config import FACTS, DiscordSettings
from bots.discord.deliver import Deliverer
from bots.discord.interactions import Deferred, InteractionStore
from bots.discord.normalize import Normalizer
from bots.discord.roles import DiscordRoles
from bots.discord.sdk import discord
from core.contract import Action, Event, EventKind, Receipt
from core.errors import ConfigError, PlatformError, PlatformUnavailable
from core.platform import BlobReader, EventSink, Platform
from core.services import Services

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0
EXPIRED_BUTTON = "This button has expired. Mention me to start again."
NOT_YOURS = "Only the person who asked for this (or a moderator) can use these buttons."
STALE_COMMAND = "That command is no longer available. Type / to see the current ones."


def intents_for(message_content: bool) -> discord.Intents:
    """Only what Chorus uses: no members, presences, voice or typing."""
    intents = discord.Intents.none()
    intents.guilds = True  # channels, threads and roles (moderator roles) of each server
    intents.guild_messages = True  # mentions, replies, and the feed of opted-in channels
    intents.dm_messages = True  # DMs to the bot
    intents.guild_reactions = True  # reactions count as engagement in the feed
    intents.message_content = message_content  # privileged: the text of messages that do not mention us
    return intents


class ChorusClient(discord.Client):
    """Gateway events -> the platform's handlers; nothing else lives here."""

    def __init__(
        self, platform: DiscordPlatform, *, intents: discord.Intents, fast_identify: bool, **options: Any
    ) -> None:
        super().__init__(intents=intents, **options)
        self.platform = platform
        self.fast_identify = fast_identify
        self.ready_event = asyncio.Event()

    async def setup_hook(self) -> None:
        await self.platform.sync_commands(self)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not self.fast_identify:  # Discord's identify quota: discord.py waits 5 s before a re-IDENTIFY
            await super().before_identify_hook(shard_id, initial=initial)

    async def on_connect(self) -> None:  # READY of a new session, before any of its messages
        self.platform.catchup.session_started()

    async def on_ready(self) -> None:
        self.ready_event.set()
        await self.platform.catch_up(self, self.guilds)  # a new session: what was sent while away

    async def on_guild_available(self, guild: discord.Guild) -> None:
        if self.is_ready():  # came after on_ready (an outage, a slow start): read it back now
            await self.platform.catch_up(self, [guild])

    async def on_message(self, message: discord.Message) -> None:
        await self.platform.inbound(self.platform.normalizer.message(message))

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        await self.platform.inbound(_ready_value(self.platform.normalizer.edited(payload)))

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        channel = self.get_channel(payload.channel_id) or discord.Object(payload.channel_id)
        await self.platform.inbound(_ready_value(self.platform.normalizer.deleted(payload, channel)))

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        channel = self.get_channel(payload.channel_id) or discord.Object(payload.channel_id)
        await self.platform.inbound(_ready_value(self.platform.normalizer.reaction(payload, channel, 1)))

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        channel = self.get_channel(payload.channel_id) or discord.Object(payload.channel_id)
        await self.platform.inbound(_ready_value(self.platform.normalizer.reaction(payload, channel, -1)))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await self.platform.on_interaction(interaction)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("discord: %s failed", event_method)


class DiscordPlatform(Platform):
    name = "discord"
    capabilities = FACTS.capabilities

    def __init__(
        self,
        settings: DiscordSettings,
        services: Services,
        *,
        fast_identify: bool = False,
        ready_timeout_s: float = READY_TIMEOUT_S,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        if not settings.configured or settings.token is None:
            raise ConfigError("discord is not configured: set DISCORD_BOT_TOKEN")
        self.settings = settings
        self.capabilities = self.capabilities.model_copy(update={"live_drafts": settings.live_drafts})
        self.services = services
        self.fast_identify = fast_identify
        self.ready_timeout_s = ready_timeout_s
        self.client_options = client_options or {}
        self.interactions = InteractionStore(services.redis)
        self.catchup = CatchUp(services.redis, self.name)
        self.message_content = settings.message_content
        self.client: ChorusClient | None = None
        self.normalizer = Normalizer(0, settings.moderator_roles, self._is_bot_message)
        self._deliverer: Deliverer | None = None
        self._publish: EventSink | None = None
        self._runner: asyncio.Task[None] | None = None
        self._logged_in = asyncio.Event()
        self._restore: Callable[[], None] = lambda: None
        self._order: asyncio.Queue[asyncio.Future[Event | None]] = asyncio.Queue()
        self._pumping: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self, publish: EventSink) -> None:
        self._stopping = False
        self._publish = publish
        self._pumping = asyncio.create_task(self._pump(), name="discord-inbound")
        self._restore = _point_sdk(self.settings.api_base_url, self.settings.gateway_url)
        if not await self._connect():
            log.warning(
                "discord: this application may not use the Message Content intent; running without it. "
                "Mentions, replies, DMs and slash commands work; the feed sees no text of other messages. "
                "Enable it in the Developer Portal (Bot > Privileged Gateway Intents) to feed channels."
            )
            self.message_content = False
            if not await self._connect():
                raise ConfigError("discord refused the gateway intents even without message content")
        if (roles := self.services.roles.slot(self.name)) is not None:  # the web app re-checks moderators
            roles.provide(DiscordRoles(lambda: self.client, self.settings.moderator_roles))

    async def _connect(self) -> bool:
        """Log in and connect; False if Discord refused the privileged intent (code 4014)."""
        options = {
            "allowed_mentions": discord.AllowedMentions.none(),
            "max_ratelimit_timeout": self.settings.max_ratelimit_wait_s,
            "chunk_guilds_at_startup": False,
            **self.client_options,
        }
        client = ChorusClient(
            self, intents=intents_for(self.message_content), fast_identify=self.fast_identify, **options
        )
        token = self.settings.token.get_secret_value().strip() if self.settings.token else ""
        try:
            await client.login(token)
        except discord.LoginFailure as exc:
            await client.close()
            raise ConfigError("discord rejected DISCORD_BOT_TOKEN (login failed)") from exc
        except Exception as exc:
            await client.close()
            raise PlatformUnavailable(f"discord login failed: {exc!r}") from exc
        if client.user is None:  # login sets it; a proxy answering oddly would not
            await client.close()
            raise PlatformUnavailable("discord login returned no bot user")
        self.normalizer.bot_id = client.user.id
        self.client = client
        self._deliverer = Deliverer(client, self.services.bus, self.interactions)
        self._logged_in.set()
        runner = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(client.ready_event.wait())
        await asyncio.wait({runner, ready}, timeout=self.ready_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if runner.done():
            failure = runner.exception()
            await client.close()
            self._logged_in.clear()
            if isinstance(failure, discord.PrivilegedIntentsRequired):
                return False
            raise PlatformUnavailable(f"discord gateway stopped: {failure!r}")
        if not client.ready_event.is_set():
            log.warning(
                "discord: not ready after %.0fs; still connecting in the background", self.ready_timeout_s
            )
        runner.add_done_callback(_report_stopped)
        self._runner = runner
        return True

    def connected(self) -> bool:
        client = self.client
        return client is not None and client.is_ready() and not client.is_closed()

    async def stop(self) -> None:
        self._stopping = True
        if (roles := self.services.roles.slot(self.name)) is not None:
            roles.clear()
        client, runner = self.client, self._runner
        self._logged_in.clear()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
        if runner is not None:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError, Exception):
                await asyncio.wait_for(runner, 10)
        if client is not None:
            await _settle(client)
        self.catchup.stop()
        if self._pumping is not None:
            with contextlib.suppress(asyncio.TimeoutError):  # publish what was already received
                await asyncio.wait_for(self._order.join(), 5)
            self._pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pumping
        self._restore()

    @property
    def ready(self) -> bool:
        return self.client is not None and self.client.ready_event.is_set()

    # -- commands ---------------------------------------------------------------------------------
    async def sync_commands(self, client: discord.Client) -> None:
        """Publish the core's commands as slash commands (to the configured guilds, or globally)."""
        if not self.settings.sync_commands or client.application_id is None:
            return
        payload = application_commands(self.services.commands)
        try:
            if self.settings.guild_ids:
                for guild_id in self.settings.guild_ids:
                    await client.http.bulk_upsert_guild_commands(client.application_id, guild_id, payload)
            else:
                await client.http.bulk_upsert_global_commands(client.application_id, payload)
        except discord.HTTPException as exc:
            log.error("discord: could not sync slash commands: %s %s", exc.status, exc.text[:300])
            return
        scope = f"guilds {self.settings.guild_ids}" if self.settings.guild_ids else "globally"
        log.info("discord: %d slash commands synced %s", len(payload), scope)

    # -- inbound ----------------------------------------------------------------------------------
    async def inbound(self, normalized: Awaitable[Event | None]) -> None:
        """Gateway events are published in the order they arrived, though discord.py runs each handler
        as its own task (a message's edit must not overtake the message). The slot is taken before the
        first ``await``, i.e. in dispatch order; one pump publishes the slots in that order."""
        slot: asyncio.Future[Event | None] = asyncio.get_running_loop().create_future()
        self._order.put_nowait(slot)
        try:
            slot.set_result(await normalized)
        except Exception as exc:
            log.exception("discord: could not read a gateway event")
            slot.set_exception(exc)

    async def _pump(self) -> None:
        while True:
            slot = await self._order.get()
            try:
                await self.publish(await slot)
            except Exception:
                log.exception("discord: could not publish an event")
            finally:
                self._order.task_done()

    async def publish(self, event: Event | None) -> None:
        if event is None or self._publish is None:
            return
        if event.kind not in (EventKind.MESSAGE, EventKind.REACTION) or await self._feed_wants(event):
            await self._publish(event)
        await self.catchup.seen(event)

    async def catch_up(self, client: discord.Client, guilds: Iterable[discord.Guild]) -> None:
        try:
            await self.catchup.replay(client, guilds, lambda m: self.inbound(self.normalizer.message(m)))
        except Exception:  # reading back is a best effort: the live gateway goes on regardless
            log.exception("discord: could not read back the messages sent while away")

    async def _feed_wants(self, event: Event) -> bool:
        """Only opted-in channels' messages and reactions go on the bus (edits and deletions always do:
        an item stays in the feed after its channel leaves it, and must still follow its source)."""
        return await self.services.feed_channels.get()(event)

    async def _is_bot_message(self, message_id: str) -> bool:
        return await self.services.bus.bot_message(self.name, message_id) is not None

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        try:
            if interaction.type is discord.InteractionType.application_command:
                await self._on_command(interaction)
            elif interaction.type is discord.InteractionType.component:
                await self._on_press(interaction)
        except discord.HTTPException as exc:  # e.g. acknowledged too late (10062): nothing to answer
            log.warning("discord: interaction %s not acknowledged: %s", interaction.id, exc.status)

    async def _on_command(self, interaction: discord.Interaction) -> None:
        event = self.normalizer.command(interaction, self.services.commands)
        if event is None:
            await interaction.response.send_message(STALE_COMMAND, ephemeral=True)
            return
        ephemeral = (event.command or "") in self.settings.ephemeral_commands
        await interaction.response.defer(thinking=True, ephemeral=ephemeral)
        await self._remember(interaction, event, "thinking", ephemeral, event.command)
        await self.publish(event)

    async def _on_press(self, interaction: discord.Interaction) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith((buttons.PREFIX, buttons.HASHED)):
            return  # not one of ours
        pressed = await buttons.resolve(self.services.redis, custom_id)
        if pressed is None:
            await interaction.response.send_message(EXPIRED_BUTTON, ephemeral=True)
            return
        event = self.normalizer.choice(interaction, pressed)
        if (
            pressed.allowed_user is not None
            and pressed.allowed_user != event.author.id
            and not event.author.is_moderator
        ):
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return
        await interaction.response.defer()  # a silent acknowledgement: the answers follow
        await self._remember(interaction, event, "update", False)
        await self.publish(event)

    async def _remember(
        self,
        interaction: discord.Interaction,
        event: Event,
        mode: Literal["thinking", "update"],
        ephemeral: bool,
        command: str | None = None,
    ) -> None:
        await self.interactions.save(
            Deferred(
                event_id=event.id,
                interaction_id=interaction.id,
                application_id=interaction.application_id,
                token=interaction.token,
                channel=str(interaction.channel_id),
                user_id=str(interaction.user.id),
                mode=mode,
                ephemeral=ephemeral,
                command=command,
                created=interaction.created_at.timestamp(),
            )
        )

    # -- outbound ---------------------------------------------------------------------------------
    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        if self._stopping:
            raise _stopped()
        try:
            await asyncio.wait_for(self._logged_in.wait(), timeout=10)
        except TimeoutError:
            raise (
                _stopped() if self._stopping else PlatformUnavailable("discord: not logged in yet")
            ) from None
        if self._deliverer is None:
            raise PlatformUnavailable("discord: not connected")
        try:
            return await self._deliverer.deliver(action, blobs)
        except PlatformUnavailable:
            if self._stopping:  # the client closed under this send
                raise _stopped() from None
            raise


def _stopped() -> PlatformError:
    """Not a retry-in-place error: the Sender gives up on this Action for now and it stays pending in the
    outbox, to be delivered after the next start (a retry loop would hold the shutdown)."""
    return PlatformError("discord adapter stopped; the action stays in the outbox")


def _point_sdk(api_base_url: str, gateway_url: str) -> Callable[[], None]:
    """Point discord.py at the configured REST base and gateway; returns how to undo it."""
    route, ws = discord.http.Route, discord.gateway.DiscordWebSocket
    old_base, old_gateway = route.BASE, ws.DEFAULT_GATEWAY
    route.BASE = api_base_url.rstrip("/")
    ws.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    def restore() -> None:
        route.BASE, ws.DEFAULT_GATEWAY = old_base, old_gateway

    return restore


async def _settle(client: discord.Client) -> None:
    """Let event handlers already running finish (what they received is published, not lost), and stop
    discord.py's pending "ready" timer so no handler starts after the client closed."""
    ready = getattr(client._connection, "_ready_task", None)
    if isinstance(ready, asyncio.Task) and not ready.done():
        ready.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await ready
    handlers = [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith("discord.py: ") and t is not asyncio.current_task() and not t.done()
    ]
    if handlers:
        await asyncio.wait(handlers, timeout=5)


async def _ready_value(event: Event | None) -> Event | None:
    return event


def _report_stopped(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord: the gateway connection stopped: %r", task.exception())


def create(settings: DiscordSettings, services: Services, options: dict[str, Any]) -> DiscordPlatform:
    return DiscordPlatform(settings, services)


__all__ = ["ChorusClient", "DiscordPlatform", "create", "intents_for"]
