"""Loopback fake of Discord (REST API v10 + gateway websocket) that the real discord.py talks to.

Why: the Discord bot must be tested end to end (login, gateway events, REST calls, interactions, rate limits,
reconnects) without the internet. This fake speaks the wire format discord.py 2.7 expects over real sockets on
127.0.0.1, validates what a bot sends the way Discord does (lengths, component layout, replies, permissions) and
records everything so tests can assert on what users would actually see.

Typical use::

    async with FakeDiscord(token="tok", bot_id=1, app_id=2) as dc:
        guild = dc.add_guild(name="HQ")
        channel = dc.add_channel(guild, "general")
        with dc.patch_discord():
            ...  # start a discord.Client with token "tok"; await dc.message_create(channel, user, "hi")
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import itertools
import json
import mimetypes
import random
import re
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yarl
from aiohttp import BodyPartReader, WSMsgType, web
from aiohttp.web_request import Request

API_PREFIX = "/api/v10"
EDITS_PER_WINDOW, EDIT_WINDOW_S = 5, 5.0  # editing messages: 5 per 5 s per channel
DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1
DEFAULT_EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)

# Gateway intent bits.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Message flags and limits.
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ACTION_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024

CHANNEL_GUILD_TEXT = 0
CHANNEL_DM = 1
CHANNEL_PUBLIC_THREAD = 11
THREAD_TYPES = {10, 11, 12}
SELECT_TYPES = {3, 5, 6, 7, 8}
COMMAND_NAME_RE = re.compile(r"^[-_\w]{1,32}$")
USER_MENTION_RE = re.compile(r"<@!?(\d+)>")
ROLE_MENTION_RE = re.compile(r"<@&(\d+)>")
JSON_HEADERS = {"Content-Type": "application/json"}


class ApiError(Exception):
    """A Discord-shaped error response; raised inside handlers so validation reads top-down."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def form_error(path: str, code: str, message: str) -> ApiError:
    """Build Discord's 50035 "Invalid Form Body" error with the nested `errors` tree discord.py flattens."""
    tree: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        tree = {part: tree}
    return ApiError(400, 50035, "Invalid Form Body", tree)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Upload:
    """One file part of a multipart request (`files[n]`)."""

    field: str
    filename: str
    data: bytes


@dataclass
class SentAttachment:
    """An attachment on a bot message, with the alt text (`description`) Discord shows to screen readers."""

    id: int
    filename: str
    description: str | None
    content_type: str | None
    data: bytes


@dataclass
class SentMessage:
    """Snapshot of a message the bot created or edited, as users would see it after the request.

    `via` is "channel" (REST channel endpoint), "interaction" (interaction callback or @original edit) or
    "followup" (interaction webhook). `allowed_mentions` and `message_reference` are exactly as sent (None if
    absent); `payload` is the raw JSON body.
    """

    id: int
    channel_id: int
    action: str
    via: str
    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    attachments: list[SentAttachment]
    allowed_mentions: dict[str, Any] | None
    message_reference: dict[str, Any] | None
    flags: int
    tts: bool
    pinged_user_ids: list[int]
    pinged_role_ids: list[int]
    mention_everyone: bool
    interaction_id: int | None
    payload: dict[str, Any]
    at: float = field(default_factory=time.monotonic)  # when the fake accepted it

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)


@dataclass
class InteractionResponse:
    """One POST /interactions/{id}/{token}/callback that Discord accepted."""

    interaction_id: int
    type: int
    data: dict[str, Any]
    message_id: int | None
    with_response: bool


@dataclass
class RecordedRequest:
    """Every REST request that reached the fake, with the status it got."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[str]
    status: int = 0


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Interaction:
    id: int
    token: str
    type: int
    payload: dict[str, Any]
    channel_id: int
    guild_id: int | None
    user_id: int
    message_id: int | None
    created: float
    responded: bool = False
    response_type: int | None = None
    original_message_id: int | None = None


@dataclass
class _RateLimitRule:
    substring: str
    retry_after: float
    global_: bool
    times: int


@dataclass
class FaultRates:
    """Random failures of the REST calls ``routes`` matches ("METHOD /path"), each call on its own and
    without acting: 429 (a share of them global) with Discord's headers and body, or a 5xx."""

    routes: re.Pattern[str]
    rate_429: float
    rate_5xx: float
    retry_after: float
    global_share: float
    statuses_5xx: tuple[int, ...]
    rng: random.Random
    injected_429: int = 0
    injected_global: int = 0
    injected_5xx: int = 0


@dataclass
class _Session:
    session_id: str
    intents: int
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    path: str
    authenticated: bool = False


@dataclass
class _Req:
    method: str
    path: str
    query: Mapping[str, str]
    json: Any
    files: dict[str, Upload]


Handler = Callable[..., Awaitable[tuple[int, Any]]]


class FakeDiscord:
    """Discord REST + gateway on an ephemeral 127.0.0.1 port. Use as `async with FakeDiscord(...) as dc`."""

    def __init__(
        self,
        token: str = "tok",  # noqa: S107 - a fake credential for a loopback fake
        bot_id: int | None = None,
        app_id: int | None = None,
        *,
        bot_name: str = "Chorus",
        heartbeat_interval: int = 1000,
        application_flags: int = 0,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
        echo_bot_messages: bool = True,
        interaction_ack_timeout: float = 3.0,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    ) -> None:
        self._ids = itertools.count(1)
        self._last_snowflake = 0
        self.token = token
        self.bot_id = bot_id if bot_id is not None else self.snowflake()
        self.app_id = app_id if app_id is not None else self.bot_id
        self.heartbeat_interval = heartbeat_interval
        self.application_flags = application_flags
        self.allowed_privileged_intents = allowed_privileged_intents
        self.echo_bot_messages = echo_bot_messages
        self.interaction_ack_timeout = interaction_ack_timeout
        self.upload_limit = upload_limit

        # World state.
        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.stored_messages: dict[int, dict[str, Any]] = {}
        self.attachment_data: dict[int, bytes] = {}
        self._dm_by_user: dict[int, int] = {}
        self._interactions: dict[int, _Interaction] = {}
        self._interactions_by_token: dict[str, _Interaction] = {}
        self.add_user(self.bot_id, bot_name, bot=True)
        self.owner_id = self.add_user(username="app-owner")

        # Observability.
        self.messages: list[SentMessage] = []
        self.deleted_messages: list[tuple[int, int]] = []
        self.interaction_responses: list[InteractionResponse] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.command_syncs: list[int | None] = []
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[str] = []
        self.typing: list[int] = []
        self.reactions: list[tuple[str, int, int, str, int]] = []
        self.dispatched: list[dict[str, Any]] = []
        self.undelivered: list[tuple[str, dict[str, Any]]] = []
        self.held_guilds: set[int] = set()  # unavailable to the bot until release_guild (hold_guild)
        self.identify_payloads: list[dict[str, Any]] = []
        self.identify_count = 0
        self.resume_count = 0
        self.heartbeats = 0
        self.nonce_hits = 0  # message creates answered with an earlier message (enforce_nonce)
        self.gateway_connections: list[str] = []

        # Machinery.
        self._rate_limits: list[_RateLimitRule] = []
        self.faults: FaultRates | None = None
        # Discord's per-channel bucket for editing messages: EDITS_PER_WINDOW per EDIT_WINDOW_S; the
        # headers tell the client what is left (discord.py waits on its own), a burst past it gets a 429.
        self.edit_limit: tuple[int, float] | None = (EDITS_PER_WINDOW, EDIT_WINDOW_S)
        self.edit_rate_limited = 0
        self._edits: dict[str, list[float]] = {}
        self._session: _Session | None = None
        self._live: _Conn | None = None
        self._conns: set[_Conn] = set()
        self._gw_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=self.upload_limit * 4)
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/gateway-resume", self._handle_gateway)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._handle_attachment)
        app.router.add_route("*", "/{tail:.*}", self._handle_api)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Close every gateway socket (so handlers return) and stop the server."""
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"fake shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """Value for `discord.http.Route.BASE`."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Value for `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`."""
        return f"ws://127.0.0.1:{self._port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """Sent in READY; a distinct path so tests can see the client resumed where Discord told it to."""
        return f"ws://127.0.0.1:{self._port}/gateway-resume"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[FakeDiscord]:
        """Point discord.py's REST base and default gateway at this fake; restore them on exit."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # discord.py imports the deprecated audioop
            from discord.gateway import DiscordWebSocket
            from discord.http import Route

        old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
        Route.BASE = self.api_base
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield self
        finally:
            Route.BASE = old_base
            DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # ------------------------------------------------------------------ world building

    def snowflake(self) -> int:
        """A real, time-based, strictly increasing snowflake (discord.py derives ages from them)."""
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        value = max(value, self._last_snowflake + 1)
        self._last_snowflake = value
        return value

    def add_user(self, user_id: int | None = None, username: str | None = None, *, bot: bool = False) -> int:
        uid = user_id if user_id is not None else self.snowflake()
        name = username or f"user{next(self._ids)}"
        self.users[uid] = {
            "id": str(uid),
            "username": name,
            "global_name": None if bot else name.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
            "collectibles": None,
        }
        if uid == self.bot_id:
            self.users[uid].update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return uid

    def add_guild(
        self,
        guild_id: int | None = None,
        name: str = "Test Guild",
        *,
        owner_id: int | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int | None = None,
    ) -> int:
        """Create a guild with @everyone (id == guild id) and the bot as member; returns the guild id.

        `bot_permissions` adds a managed bot role with those permissions, like an OAuth2 install does.
        """
        gid = guild_id if guild_id is not None else self.snowflake()
        owner = owner_id if owner_id is not None else self.owner_id
        if owner not in self.users:
            self.add_user(owner)
        guild = FakeGuild(id=gid, name=name, owner_id=owner)
        self.guilds[gid] = guild
        guild.roles[gid] = self._role_payload(gid, "@everyone", everyone_permissions, position=0)
        self.add_member(gid, owner)
        bot_roles: list[int] = []
        if bot_permissions is not None:
            bot_roles.append(self.add_role(gid, self.users[self.bot_id]["username"], bot_permissions))
            guild.roles[bot_roles[0]]["managed"] = True
            guild.roles[bot_roles[0]]["tags"] = {"bot_id": str(self.bot_id)}
        self.add_member(gid, self.bot_id, roles=bot_roles)
        return gid

    @staticmethod
    def _role_payload(role_id: int, name: str, permissions: int, *, position: int) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def add_role(self, guild_id: int, name: str, permissions: int = 0, *, role_id: int | None = None) -> int:
        rid = role_id if role_id is not None else self.snowflake()
        guild = self.guilds[guild_id]
        guild.roles[rid] = self._role_payload(rid, name, permissions, position=len(guild.roles))
        return rid

    def add_channel(
        self,
        guild_id: int,
        name: str = "general",
        *,
        channel_id: int | None = None,
        type: int = CHANNEL_GUILD_TEXT,
        topic: str | None = None,
        overwrites: Sequence[Mapping[str, Any]] = (),
    ) -> int:
        """Add a guild channel. `overwrites` items: {"id", "type" (0 role, 1 member), "allow", "deny"} (ints)."""
        cid = channel_id if channel_id is not None else self.snowflake()
        position = sum(1 for c in self.channels.values() if c.get("guild_id") == str(guild_id))
        self.channels[cid] = {
            "id": str(cid),
            "type": type,
            "guild_id": str(guild_id),
            "name": name,
            "position": position,
            "permission_overwrites": [
                {
                    "id": str(o["id"]),
                    "type": o.get("type", 0),
                    "allow": str(o.get("allow", 0)),
                    "deny": str(o.get("deny", 0)),
                }
                for o in overwrites
            ],
            "nsfw": False,
            "topic": topic,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }
        return cid

    def add_thread(
        self,
        guild_id: int,
        parent_id: int,
        name: str = "thread",
        *,
        thread_id: int | None = None,
        owner_id: int | None = None,
    ) -> int:
        """Add an active public thread under `parent_id` (sent in GUILD_CREATE's `threads`)."""
        tid = thread_id if thread_id is not None else self.snowflake()
        self.channels[tid] = {
            "id": str(tid),
            "type": CHANNEL_PUBLIC_THREAD,
            "guild_id": str(guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(owner_id if owner_id is not None else self.guilds[guild_id].owner_id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _now_iso(),
                "locked": False,
            },
        }
        return tid

    def add_member(
        self,
        guild_id: int,
        user_id: int | None = None,
        *,
        username: str | None = None,
        roles: Sequence[int] = (),
        nick: str | None = None,
        permissions: int | None = None,
    ) -> int:
        """Add (or replace) a member; `permissions` creates a dedicated role granting them (e.g. MANAGE_GUILD)."""
        uid = user_id if user_id is not None else self.add_user(username=username)
        if uid not in self.users:
            self.add_user(uid, username)
        role_ids = list(roles)
        if permissions is not None:
            role_ids.append(self.add_role(guild_id, f"perms-{uid}", permissions))
        self.guilds[guild_id].members[uid] = {
            "roles": [str(r) for r in role_ids],
            "nick": nick,
            "avatar": None,
            "banner": None,
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        return uid

    def dm_channel(self, user_id: int) -> int:
        """The (stable) DM channel between the bot and a user, created on first use."""
        if user_id in self._dm_by_user:
            return self._dm_by_user[user_id]
        if user_id not in self.users:
            self.add_user(user_id)
        cid = self.snowflake()
        self.channels[cid] = {
            "id": str(cid),
            "type": CHANNEL_DM,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self.users[user_id]],
        }
        self._dm_by_user[user_id] = cid
        return cid

    def permissions_for(self, guild_id: int, user_id: int, channel_id: int | None = None) -> int:
        """Discord's permission algorithm: base roles, ADMINISTRATOR/owner short-cut, then channel overwrites."""
        guild = self.guilds[guild_id]
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        perms = int(guild.roles[guild_id]["permissions"])
        for rid in member["roles"]:
            role = guild.roles.get(int(rid))
            if role is not None:
                perms |= int(role["permissions"])
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        channel = self.channels.get(channel_id) if channel_id is not None else None
        if channel is None:
            return perms
        overwrites = {int(o["id"]): o for o in channel.get("permission_overwrites", [])}
        everyone = overwrites.get(guild_id)
        if everyone is not None:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for rid in member["roles"]:
            ow = overwrites.get(int(rid))
            if ow is not None and ow["type"] == 0:
                allow |= int(ow["allow"])
                deny |= int(ow["deny"])
        perms = (perms & ~deny) | allow
        own = overwrites.get(user_id)
        if own is not None and own["type"] == 1:
            perms = (perms & ~int(own["deny"])) | int(own["allow"])
        return perms

    def member_payload(self, guild_id: int, user_id: int, *, with_user: bool = True) -> dict[str, Any]:
        member = dict(self.guilds[guild_id].members[user_id])
        if with_user:
            member["user"] = self.users[user_id]
        return member

    def guild_payload(self, guild_id: int, *, all_members: bool = True) -> dict[str, Any]:
        """The GUILD_CREATE / GET /guilds/{id} object (members limited to the bot unless `all_members`)."""
        guild = self.guilds[guild_id]
        member_ids = list(guild.members) if all_members else [self.bot_id]
        in_guild = [dict(c) for c in self.channels.values() if c.get("guild_id") == str(guild_id)]
        channels = [c for c in in_guild if c["type"] not in THREAD_TYPES]
        threads = [c for c in in_guild if c["type"] in THREAD_TYPES]  # threads carry their guild_id
        for channel in channels:
            channel.pop("guild_id", None)
        return {
            "id": str(guild_id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "roles": list(guild.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": channels,
            "threads": threads,
            "members": [self.member_payload(guild_id, uid) for uid in member_ids if uid in guild.members],
            "member_count": len(guild.members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "joined_at": guild.members[self.bot_id]["joined_at"],
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "system_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "afk_timeout": 300,
            "afk_channel_id": None,
        }

    def application_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.app_id),
            "name": self.users[self.bot_id]["username"],
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.users[self.owner_id],
            "team": None,
            "verify_key": "0" * 64,
            "flags": self.application_flags,
            "bot": self.users[self.bot_id],
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
        }

    # ------------------------------------------------------------------ test helpers: rate limits, waiting

    def rate_limit_next(
        self, route_substring: str, retry_after: float = 0.5, global_: bool = False, times: int = 1
    ) -> None:
        """Answer the next `times` requests whose "METHOD /path" contains `route_substring` with a 429.

        The request is not performed, exactly like Discord.
        """
        self._rate_limits.append(_RateLimitRule(route_substring, retry_after, global_, times))

    def inject_faults(
        self,
        routes: str = r"^(POST|PATCH) /channels/\d+/messages",
        *,
        rate_429: float = 0.1,
        rate_5xx: float = 0.05,
        retry_after: float = 1.0,
        global_share: float = 0.0,
        statuses_5xx: tuple[int, ...] = (502, 503),
        seed: int = 0,
    ) -> FaultRates:
        """From now on, answer each request whose "METHOD /path" matches ``routes`` 429 with probability
        ``rate_429`` (``global_share`` of them the global limit) and one of ``statuses_5xx`` with probability
        ``rate_5xx``, without acting. discord.py waits out a 429 itself (holding the route's bucket, or every
        request for a global one) and retries 500/502/504 itself; a 503 reaches the caller."""
        self.faults = FaultRates(
            re.compile(routes),
            rate_429,
            rate_5xx,
            retry_after,
            global_share,
            statuses_5xx,
            random.Random(seed),
        )
        return self.faults

    def _random_fault(self, key: str, bucket: str) -> web.Response | None:
        faults = self.faults
        if faults is None or not faults.routes.search(key):
            return None
        roll = faults.rng.random()
        if roll < faults.rate_429:
            global_ = faults.rng.random() < faults.global_share
            faults.injected_429 += 1
            faults.injected_global += global_
            return self._too_many(bucket, faults.retry_after, global_)
        if roll < faults.rate_429 + faults.rate_5xx:
            faults.injected_5xx += 1
            status = faults.rng.choice(faults.statuses_5xx)
            if status == 502:  # Cloudflare's gateway page, not JSON
                return web.Response(status=502, text="<html><title>502 Bad Gateway</title></html>",
                                    content_type="text/html", headers={"Via": "1.1 google"})  # fmt: skip
            return self._json_response(status, {"message": f"{status}: Service Unavailable", "code": 0})
        return None

    def _too_many(self, bucket: str, retry_after: float, global_: bool) -> web.Response:
        """Discord's 429: the bucket's headers with nothing remaining, Retry-After in whole seconds, the
        global flag in a header and the body, retry_after (float seconds) in the body."""
        headers = self._ratelimit_headers(
            bucket, remaining=0, reset_after=retry_after, scope="global" if global_ else "user"
        )
        headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
        if global_:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": global_,
            "code": 0,
        }
        return self._json_response(429, body, headers)

    def posted_per_mention(self) -> dict[tuple[int, int], list[SentMessage]]:
        """What the bot sent or edited in answer to each message (by channel and message id it replies to),
        in the order the fake accepted it; edits are found through the message they change."""
        answering: dict[int, tuple[int, int]] = {}
        for message_id, stored in self.stored_messages.items():
            ref = stored.get("message_reference") or {}
            if int(stored["author"]["id"]) == self.bot_id and ref.get("message_id"):
                answering[message_id] = (int(stored["channel_id"]), int(ref["message_id"]))
        out: dict[tuple[int, int], list[SentMessage]] = {}
        for record in self.messages:
            key = answering.get(record.id)
            if key is not None:
                out.setdefault(key, []).append(record)
        return out

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Wait until `predicate()` is truthy (re-checked on every request/gateway event and every 20 ms).

        Returns the truthy value; raises AssertionError naming `what` and the last requests on timeout.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            event = self._changed
            result = predicate()
            if result:
                return result
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-5:]]
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what or predicate!r}; "
                    f"recent requests: {recent}; unhandled: {self.unhandled}"
                )
            # Also poll: predicates often read client-side state (e.g. a bot's on_message list) that changes
            # without any traffic reaching the fake.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.02))

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ gateway

    async def _handle_gateway(self, request: Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _Conn(ws=ws, path=request.path)
        self._conns.add(conn)
        self.gateway_connections.append(request.path_qs)
        self._notify()
        try:
            await self._send(
                conn, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval}, "s": None, "t": None}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_frame(conn, json.loads(msg.data))
                elif msg.type is WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
        finally:
            self._conns.discard(conn)
            if self._live is conn:
                self._live = None
            self._notify()
        return ws

    async def _send(self, conn: _Conn, frame: dict[str, Any]) -> bool:
        if conn.ws.closed:
            return False
        try:
            await conn.ws.send_str(json.dumps(frame))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def _on_frame(self, conn: _Conn, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            self.heartbeats += 1
            async with self._gw_lock:
                await self._send(conn, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif op == 8:
            await self._request_members(conn, data or {})
        elif op in (3, 4):
            pass  # presence / voice state updates: accepted, nothing to do
        else:
            await conn.ws.close(code=4001, message=b"Unknown opcode.")
        self._notify()

    async def _identify(self, conn: _Conn, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        if conn.authenticated:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        async with self._gw_lock:
            conn.authenticated = True
            self.identify_count += 1
            self.identify_payloads.append({k: v for k, v in data.items() if k != "token"})
            old = self._live
            self._session = _Session(session_id=uuid.uuid4().hex, intents=intents)
            self._live = conn
            if old is not None and old is not conn:
                await old.ws.close(code=4000, message=b"Session replaced.")
            ready = {
                "v": 10,
                "user": self.users[self.bot_id],
                "guilds": [{"id": str(gid), "unavailable": True} for gid in self.guilds],
                "session_id": self._session.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.resume_gateway_url,
                "shard": [0, 1],
                "application": {"id": str(self.app_id), "flags": self.application_flags},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "user_settings": {},
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "_trace": ["fake-discord"],
            }
            await self._dispatch_locked("READY", ready)
            for gid in self.guilds:
                if gid in self.held_guilds:
                    continue  # listed as unavailable in READY; its GUILD_CREATE comes with release_guild
                await self._dispatch_locked(
                    "GUILD_CREATE", self.guild_payload(gid, all_members=bool(intents & INTENT_GUILD_MEMBERS))
                )

    async def _resume(self, conn: _Conn, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        async with self._gw_lock:
            session = self._session
            if session is None or data.get("session_id") != session.session_id:
                await self._send(conn, {"op": 9, "d": False, "s": None, "t": None})
                return
            self.resume_count += 1
            conn.authenticated = True
            old = self._live
            self._live = conn
            if old is not None and old is not conn:
                await old.ws.close(code=4000, message=b"Session resumed elsewhere.")
            last_seen = int(data.get("seq") or 0)
            for frame in session.log:
                if frame["s"] > last_seen:
                    await self._send(conn, frame)
            await self._dispatch_locked("RESUMED", {"_trace": ["fake-discord"]})

    async def _request_members(self, conn: _Conn, data: dict[str, Any]) -> None:
        gid = int(data.get("guild_id", 0))
        if gid not in self.guilds:
            return
        members = [self.member_payload(gid, uid) for uid in self.guilds[gid].members]
        wanted = data.get("user_ids")
        if wanted:
            ids = {int(u) for u in (wanted if isinstance(wanted, list) else [wanted])}
            members = [m for m in members if int(m["user"]["id"]) in ids]
        chunk = {"guild_id": str(gid), "members": members, "chunk_index": 0, "chunk_count": 1}
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        async with self._gw_lock:
            await self._dispatch_locked("GUILD_MEMBERS_CHUNK", chunk)

    async def dispatch(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send a DISPATCH (op 0) with the next sequence number; kept in the session log for RESUME replay.

        Events the session's intents exclude are dropped, and without MESSAGE_CONTENT message bodies are
        blanked, as Discord does. Without a session the event goes to `undelivered`.
        """
        async with self._gw_lock:
            await self._dispatch_locked(event, data)
        self._notify()
        return data

    async def _dispatch_locked(self, event: str, data: dict[str, Any]) -> None:
        session = self._session
        if session is None or int(data.get("guild_id") or 0) in self.held_guilds:
            self.undelivered.append((event, data))
            return
        # Deep copy: helpers keep mutating stored payloads (edits), but a RESUME must replay what was sent.
        payload = copy.deepcopy(self._filter_for_intents(event, data, session.intents))
        if payload is None:
            self.undelivered.append((event, data))
            return
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": payload}
        session.log.append(frame)
        self.dispatched.append(frame)
        if self._live is not None:
            await self._send(self._live, frame)

    def _filter_for_intents(self, event: str, data: dict[str, Any], intents: int) -> dict[str, Any] | None:
        in_guild = "guild_id" in data
        if event.startswith("MESSAGE_REACTION"):
            need = INTENT_GUILD_MESSAGE_REACTIONS if in_guild else INTENT_DIRECT_MESSAGE_REACTIONS
            return data if intents & need else None
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"):
            need = INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES
            if not intents & need:
                return None
            if event == "MESSAGE_DELETE" or intents & INTENT_MESSAGE_CONTENT or not in_guild:
                return data
            author = int(data.get("author", {}).get("id", 0))
            mentioned = any(int(m["id"]) == self.bot_id for m in data.get("mentions", []))
            if author == self.bot_id or mentioned:
                return data
            return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; the client must RESUME on resume_gateway_url. Later events queue for replay."""
        async with self._gw_lock:
            conn, self._live = self._live, None
            if conn is not None:
                await self._send(conn, {"op": 7, "d": None, "s": None, "t": None})
        self._notify()

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; unless `resumable`, the session is forgotten and the client re-IDENTIFYs."""
        async with self._gw_lock:
            conn, self._live = self._live, None
            if not resumable:
                self._session = None
            if conn is not None:
                await self._send(conn, {"op": 9, "d": resumable, "s": None, "t": None})
        self._notify()

    async def guild_join(self, guild_id: int) -> dict[str, Any]:
        """Dispatch GUILD_CREATE for a guild added after READY."""
        intents = self._session.intents if self._session else 0
        return await self.dispatch(
            "GUILD_CREATE", self.guild_payload(guild_id, all_members=bool(intents & INTENT_GUILD_MEMBERS))
        )

    def hold_guild(self, guild_id: int) -> None:
        """Make a guild unavailable to the bot, as Discord does during an outage or while a large bot's
        guilds load after READY: READY lists it as unavailable, no GUILD_CREATE follows and none of its
        events reach the gateway (its messages are still stored: history has them) until release_guild."""
        self.held_guilds.add(guild_id)

    async def release_guild(self, guild_id: int) -> dict[str, Any]:
        """The guild becomes available: its GUILD_CREATE (``unavailable: false``) is dispatched."""
        self.held_guilds.discard(guild_id)
        return await self.guild_join(guild_id)

    # ------------------------------------------------------------------ test helpers: user activity

    def _guild_of(self, channel_id: int) -> int | None:
        channel = self.channels[channel_id]
        gid = channel.get("guild_id")
        return int(gid) if gid is not None else None

    def _mention_payload(self, user_id: int, guild_id: int | None) -> dict[str, Any]:
        user = dict(self.users[user_id])
        if guild_id is not None and user_id in self.guilds[guild_id].members:
            user["member"] = self.member_payload(guild_id, user_id, with_user=False)
        return user

    def make_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        *,
        description: str | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """An attachment object whose `url` serves `data` from this fake (so `Attachment.read()` works)."""
        aid = self.snowflake()
        self.attachment_data[aid] = data
        url = f"{self.base_url}/attachments/{channel_id}/{aid}/{filename}"
        out: dict[str, Any] = {
            "id": str(aid),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream",
        }
        if description is not None:
            out["description"] = description
        return out

    def _message_payload(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        message_id: int | None = None,
        embeds: Sequence[Mapping[str, Any]] = (),
        components: Sequence[Mapping[str, Any]] = (),
        attachments: Sequence[Mapping[str, Any]] = (),
        mentions: Sequence[int] = (),
        mention_roles: Sequence[int] = (),
        mention_everyone: bool = False,
        reference: Mapping[str, Any] | None = None,
        flags: int = 0,
        tts: bool = False,
        nonce: Any = None,
        webhook_id: int | None = None,
        msg_type: int | None = None,
    ) -> dict[str, Any]:
        gid = self._guild_of(channel_id)
        mid = message_id if message_id is not None else self.snowflake()
        payload: dict[str, Any] = {
            "id": str(mid),
            "type": 0,
            "channel_id": str(channel_id),
            "author": self.users[author_id],
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": tts,
            "mention_everyone": mention_everyone,
            "mentions": [self._mention_payload(u, gid) for u in mentions if u in self.users],
            "mention_roles": [str(r) for r in mention_roles],
            "attachments": [dict(a) for a in attachments],
            "embeds": [{"type": "rich", **e} if "type" not in e else dict(e) for e in embeds],
            "components": [dict(c) for c in components],
            "reactions": [],
            "pinned": False,
            "flags": flags,
        }
        if gid is not None:
            payload["guild_id"] = str(gid)
            if author_id in self.guilds[gid].members:
                payload["member"] = self.member_payload(gid, author_id, with_user=False)
        if nonce is not None:
            payload["nonce"] = nonce
        if webhook_id is not None:
            payload["webhook_id"] = str(webhook_id)
            payload["application_id"] = str(self.app_id)
        if reference is not None:
            ref_id = int(reference["message_id"])
            payload["type"] = 19
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(ref_id),
                "channel_id": str(reference.get("channel_id", channel_id)),
                **({"guild_id": str(gid)} if gid is not None else {}),
            }
            payload["referenced_message"] = self.stored_messages.get(ref_id)
        if msg_type is not None:
            payload["type"] = msg_type
        self.stored_messages[mid] = payload
        self.channels[channel_id]["last_message_id"] = str(mid)
        return payload

    async def message_create(
        self,
        channel_id: int,
        author_id: int,
        content: str = "",
        *,
        mentions: Sequence[int] = (),
        mention_roles: Sequence[int] = (),
        message_reference: int | Mapping[str, Any] | None = None,
        attachments: Sequence[Mapping[str, Any] | tuple[str, bytes] | tuple[str, bytes, str]] = (),
        embeds: Sequence[Mapping[str, Any]] = (),
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A user posts a message: stores it and dispatches MESSAGE_CREATE (guild ones carry member+guild_id).

        `mentions` defaults to the users written as <@id> in `content`. `attachments` items are attachment
        objects or (filename, data[, description]) tuples served by this fake.
        """
        if author_id not in self.users:
            raise ValueError(f"unknown author {author_id}; add_user/add_member first")
        gid = self._guild_of(channel_id)
        if gid is not None and author_id not in self.guilds[gid].members:
            raise ValueError(f"user {author_id} is not a member of guild {gid}")
        if not mentions:
            mentions = [int(m) for m in USER_MENTION_RE.findall(content) if int(m) in self.users]
        if not mention_roles:
            mention_roles = [int(r) for r in ROLE_MENTION_RE.findall(content)]
        files: list[Mapping[str, Any]] = []
        for item in attachments:
            if isinstance(item, tuple):
                files.append(
                    self.make_attachment(
                        channel_id, item[0], item[1], description=item[2] if len(item) > 2 else None
                    )
                )
            else:
                files.append(item)
        reference: Mapping[str, Any] | None = None
        if message_reference is not None:
            reference = (
                {"message_id": message_reference} if isinstance(message_reference, int) else message_reference
            )
        payload = self._message_payload(
            channel_id,
            author_id,
            content,
            message_id=message_id,
            mentions=mentions,
            mention_roles=mention_roles,
            mention_everyone="@everyone" in content or "@here" in content,
            attachments=files,
            embeds=embeds,
            reference=reference,
        )
        return await self.dispatch("MESSAGE_CREATE", payload)

    async def message_update(
        self,
        channel_id: int,
        message_id: int,
        content: str | None = None,
        *,
        embeds: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user edits their message: dispatches MESSAGE_UPDATE with the full updated message."""
        payload = self.stored_messages[message_id]
        if int(payload["channel_id"]) != channel_id:
            raise ValueError("message is not in that channel")
        if content is not None:
            payload["content"] = content
            payload["mentions"] = [
                self._mention_payload(int(m), self._guild_of(channel_id))
                for m in USER_MENTION_RE.findall(content)
                if int(m) in self.users
            ]
        if embeds is not None:
            payload["embeds"] = [dict(e) for e in embeds]
        payload["edited_timestamp"] = _now_iso()
        return await self.dispatch("MESSAGE_UPDATE", dict(payload))

    async def message_delete(self, channel_id: int, message_id: int) -> dict[str, Any]:
        """A message disappears: dispatches MESSAGE_DELETE {id, channel_id[, guild_id]}."""
        self.stored_messages.pop(message_id, None)
        data = {"id": str(message_id), "channel_id": str(channel_id)}
        gid = self._guild_of(channel_id)
        if gid is not None:
            data["guild_id"] = str(gid)
        return await self.dispatch("MESSAGE_DELETE", data)

    async def reaction_add(
        self, channel_id: int, message_id: int, user_id: int, emoji: str = "\N{THUMBS UP SIGN}"
    ) -> dict[str, Any]:
        """A user reacts (unicode emoji or "name:id" custom emoji): dispatches MESSAGE_REACTION_ADD."""
        name, _, emoji_id = emoji.partition(":")
        emoji_obj = {"id": emoji_id or None, "name": name}
        stored = self.stored_messages.get(message_id)
        data: dict[str, Any] = {
            "type": 0,
            "user_id": str(user_id),
            "channel_id": str(channel_id),
            "message_id": str(message_id),
            "emoji": emoji_obj,
            "burst": False,
            "burst_colors": [],
        }
        if stored is not None:
            data["message_author_id"] = stored["author"]["id"]
            self._add_stored_reaction(stored, emoji_obj, user_id)
        gid = self._guild_of(channel_id)
        if gid is not None:
            data["guild_id"] = str(gid)
            data["member"] = self.member_payload(gid, user_id)
        self.reactions.append(("add", channel_id, message_id, emoji, user_id))
        return await self.dispatch("MESSAGE_REACTION_ADD", data)

    def _add_stored_reaction(self, stored: dict[str, Any], emoji: dict[str, Any], user_id: int) -> None:
        for reaction in stored["reactions"]:
            if reaction["emoji"] == emoji:
                reaction["count"] += 1
                reaction["me"] = reaction["me"] or user_id == self.bot_id
                return
        stored["reactions"].append(
            {
                "emoji": emoji,
                "count": 1,
                "me": user_id == self.bot_id,
                "burst_count": 0,
                "me_burst": False,
                "count_details": {"burst": 0, "normal": 1},
                "burst_colors": [],
            }
        )

    def _interaction_base(
        self, itype: int, guild_id: int | None, channel_id: int, user_id: int
    ) -> _Interaction:
        iid = self.snowflake()
        token = f"itok-{uuid.uuid4().hex}"
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": itype,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": dict(self.channels[channel_id]),
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.upload_limit,
        }
        if guild_id is not None:
            member = self.member_payload(guild_id, user_id)
            member["permissions"] = str(self.permissions_for(guild_id, user_id, channel_id))
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=member,
                app_permissions=str(self.permissions_for(guild_id, self.bot_id, channel_id)),
                context=0,
                authorizing_integration_owners={"0": str(guild_id)},
            )
        else:
            payload.update(
                user=self.users[user_id],
                app_permissions=str(DEFAULT_EVERYONE_PERMISSIONS),
                context=1,
                authorizing_integration_owners={"0": "0"},
            )
        it = _Interaction(
            id=iid,
            token=token,
            type=itype,
            payload=payload,
            channel_id=channel_id,
            guild_id=guild_id,
            user_id=user_id,
            message_id=None,
            created=time.monotonic(),
        )
        self._interactions[iid] = it
        self._interactions_by_token[token] = it
        return it

    def _registered_command(
        self, guild_id: int | None, name: str
    ) -> tuple[dict[str, Any] | None, int | None]:
        if guild_id is not None:
            for cmd in self.commands.get(guild_id, []):
                if cmd["name"] == name:
                    return cmd, guild_id
        for cmd in self.commands.get(None, []):
            if cmd["name"] == name:
                return cmd, None
        return None, None

    async def slash_command(
        self,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        name: str,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user runs `/name` (use "group sub" or "cmd sub" for subcommands): dispatches INTERACTION_CREATE.

        Option types come from the commands the bot registered (falling back to the Python type); user,
        channel, role and attachment options get `resolved` data. Guild interactions carry `member` with the
        member's channel permissions; DMs (guild_id None) carry `user`.
        """
        if guild_id is not None and user_id not in self.guilds[guild_id].members:
            raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
        parts = name.split()
        registered, cmd_guild = self._registered_command(guild_id, parts[0])
        sub_types, leaf_schema = self._descend(registered, parts[1:])
        it = self._interaction_base(2, guild_id, channel_id, user_id)
        resolved: dict[str, dict[str, Any]] = {}
        leaf = self._build_options(leaf_schema, dict(options or {}), resolved, guild_id, channel_id)
        for sub, sub_type in reversed(list(zip(parts[1:], sub_types, strict=True))):
            leaf = [{"type": sub_type, "name": sub, "options": leaf}]
        data: dict[str, Any] = {
            "id": registered["id"] if registered else str(self.snowflake()),
            "name": parts[0],
            "type": 1,
            "options": leaf,
        }
        if cmd_guild is not None:
            data["guild_id"] = str(cmd_guild)
        if resolved:
            data["resolved"] = resolved
        it.payload["data"] = data
        return await self.dispatch("INTERACTION_CREATE", it.payload)

    @staticmethod
    def _descend(
        registered: Mapping[str, Any] | None, subs: list[str]
    ) -> tuple[list[int], list[dict[str, Any]] | None]:
        """Subcommand option types along `subs` and the leaf's option schema (None if not registered)."""
        if registered is None:
            return ([2, 1] if len(subs) == 2 else [1] * len(subs)), None
        types: list[int] = []
        level: list[dict[str, Any]] = list(registered.get("options") or [])
        for sub in subs:
            found = next((o for o in level if o["name"] == sub and o.get("type") in (1, 2)), None)
            if found is None:
                raise ValueError(f"subcommand {sub!r} of {registered['name']!r} is not registered")
            types.append(int(found["type"]))
            level = list(found.get("options") or [])
        if any(o.get("type") in (1, 2) for o in level):
            raise ValueError(f"{registered['name']!r} needs a subcommand; pass name='cmd sub'")
        return types, level

    def _build_options(
        self,
        schema: list[dict[str, Any]] | None,
        values: dict[str, Any],
        resolved: dict[str, dict[str, Any]],
        guild_id: int | None,
        channel_id: int,
    ) -> list[dict[str, Any]]:
        known = {o["name"]: o for o in schema or []}
        if schema is not None:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
            unknown = [k for k in values if k not in known]
            if missing or unknown:
                raise ValueError(
                    f"options do not match the registered command: missing={missing} unknown={unknown}"
                )
        out: list[dict[str, Any]] = []
        for key, value in values.items():
            otype = int(known[key]["type"]) if key in known else self._infer_option_type(value)
            option: dict[str, Any] = {"name": key, "type": otype}
            if otype == 6:
                uid = int(value)
                resolved.setdefault("users", {})[str(uid)] = self.users[uid]
                if guild_id is not None and uid in self.guilds[guild_id].members:
                    member = self.member_payload(guild_id, uid, with_user=False)
                    member["permissions"] = str(self.permissions_for(guild_id, uid, channel_id))
                    resolved.setdefault("members", {})[str(uid)] = member
                option["value"] = str(uid)
            elif otype == 7:
                cid = int(value)
                chan = dict(self.channels[cid])
                chan["permissions"] = (
                    str(self.permissions_for(guild_id, self.bot_id, cid)) if guild_id else "0"
                )
                resolved.setdefault("channels", {})[str(cid)] = chan
                option["value"] = str(cid)
            elif otype == 8 and guild_id is not None:
                resolved.setdefault("roles", {})[str(int(value))] = self.guilds[guild_id].roles[int(value)]
                option["value"] = str(int(value))
            elif otype == 11:
                filename, data = value[0], value[1]
                att = self.make_attachment(channel_id, filename, data)
                resolved.setdefault("attachments", {})[att["id"]] = att
                option["value"] = att["id"]
            else:
                option["value"] = value
            out.append(option)
        return out

    @staticmethod
    def _infer_option_type(value: Any) -> int:
        if isinstance(value, bool):
            return 5
        if isinstance(value, int):
            return 4
        if isinstance(value, float):
            return 10
        if isinstance(value, tuple):
            return 11
        return 3

    async def press_button(
        self,
        message_id: int,
        custom_id: str,
        user_id: int,
        *,
        component_type: int = 2,
        values: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """A user clicks a button (or picks select `values`) on the bot's message: INTERACTION_CREATE type 3.

        Raises ValueError if the message is not the bot's or has no component with that custom_id, since
        Discord could never send such an interaction.
        """
        stored = self.stored_messages.get(message_id)
        if stored is None or int(stored["author"]["id"]) != self.bot_id:
            raise ValueError(f"message {message_id} is not a message the bot sent")
        if custom_id not in _custom_ids(stored.get("components", [])):
            raise ValueError(f"message {message_id} has no component with custom_id {custom_id!r}")
        channel_id = int(stored["channel_id"])
        it = self._interaction_base(3, self._guild_of(channel_id), channel_id, user_id)
        it.message_id = message_id
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        it.payload["data"] = data
        it.payload["message"] = stored
        return await self.dispatch("INTERACTION_CREATE", it.payload)

    # ------------------------------------------------------------------ REST plumbing

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler, bool]]:
        ch = r"/channels/(?P<channel_id>\d+)"
        msg = ch + r"/messages/(?P<message_id>\d+)"
        hook = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", r"/gateway", self._r_gateway, False),
            ("GET", r"/gateway/bot", self._r_gateway_bot, True),
            ("GET", r"/users/@me", self._r_me, True),
            ("POST", r"/users/@me/channels", self._r_create_dm, True),
            ("GET", r"/users/(?P<user_id>\d+)", self._r_user, True),
            ("GET", r"/applications/@me", self._r_application, True),
            ("GET", r"/oauth2/applications/@me", self._r_application, True),
            ("GET", ch, self._r_channel, True),
            ("GET", ch + r"/messages", self._r_list_messages, True),
            ("POST", ch + r"/messages", self._r_create_message, True),
            ("GET", msg, self._r_get_message, True),
            ("PATCH", msg, self._r_edit_message, True),
            ("DELETE", msg, self._r_delete_message, True),
            ("POST", ch + r"/typing", self._r_typing, True),
            ("PUT", msg + r"/reactions/(?P<emoji>[^/]+)/@me", self._r_add_reaction, True),
            ("DELETE", msg + r"/reactions/(?P<emoji>[^/]+)/(?P<who>@me|\d+)", self._r_remove_reaction, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._r_guild, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/channels", self._r_guild_channels, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._r_guild_roles, True),
            ("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)", self._r_guild_member, True),
            ("GET", r"/applications/(?P<app_id>\d+)/commands", self._r_get_commands, True),
            ("PUT", r"/applications/(?P<app_id>\d+)/commands", self._r_put_commands, True),
            (
                "GET",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands",
                self._r_get_commands,
                True,
            ),
            (
                "PUT",
                r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands",
                self._r_put_commands,
                True,
            ),
            (
                "POST",
                r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback",
                self._r_callback,
                False,
            ),
            ("POST", hook, self._r_followup, False),
            ("GET", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_get_hook_message, False),
            ("PATCH", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_edit_hook_message, False),
            ("DELETE", hook + r"/messages/(?P<message_id>@original|\d+)", self._r_delete_hook_message, False),
        ]
        return [(m, re.compile(p + "$"), h, auth) for m, p, h, auth in table]

    def _ratelimit_headers(
        self,
        bucket: str,
        *,
        limit: int = 5,
        remaining: int = 4,
        reset_after: float = 1.0,
        scope: str | None = None,
    ) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        if scope is not None:
            headers["X-RateLimit-Scope"] = scope
        return headers

    @staticmethod
    def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
        # Exactly "application/json": discord.py compares the header verbatim, so no charset suffix.
        all_headers = {"Via": "1.1 google", **(headers or {})}
        if status == 204 or body is None:
            return web.Response(status=204 if body is None else status, headers=all_headers)
        return web.Response(
            status=status, body=json.dumps(body).encode(), headers={**JSON_HEADERS, **all_headers}
        )

    async def _parse_body(self, request: Request) -> tuple[Any, dict[str, Upload]]:
        files: dict[str, Upload] = {}
        if request.content_type == "multipart/form-data":
            body: Any = None
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue  # nested multipart: discord.py never sends one
                raw = await part.read(decode=False)
                if part.name == "payload_json":
                    body = json.loads(raw.decode())
                else:
                    name = part.name or ""
                    files[name] = Upload(name, part.filename or name, bytes(raw))
            return body, files
        text = await request.text()
        if not text:
            return None, files
        try:
            return json.loads(text), files
        except ValueError:
            raise ApiError(400, 50109, "The request body contains invalid JSON.") from None

    async def _handle_api(self, request: Request) -> web.Response:
        path = request.path
        record = RecordedRequest(request.method, path, dict(request.query), None, [])
        self.requests.append(record)
        try:
            response = await self._serve(request, record)
        except ApiError as exc:
            response = self._json_response(exc.status, exc.body())
        record.status = response.status
        self._notify()
        return response

    async def _serve(self, request: Request, record: RecordedRequest) -> web.Response:
        if not request.path.startswith(API_PREFIX + "/"):
            self.unhandled.append(f"{request.method} {request.path}")
            raise ApiError(404, 0, "404: Not Found")
        path = request.path[len(API_PREFIX) :]
        record.path = path
        body, files = await self._parse_body(request)
        record.json, record.files = body, sorted(files)
        for method, pattern, handler, needs_auth in self._routes:
            match = pattern.match(path)
            if match is None or method != request.method:
                continue
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise ApiError(401, 0, "401: Unauthorized")
            bucket = hashlib.sha256(f"{method} {pattern.pattern}".encode()).hexdigest()[:16]
            limited = self._take_rate_limit(f"{request.method} {path}")
            if limited is not None:
                return self._too_many(bucket, limited.retry_after, limited.global_)
            fault = self._random_fault(f"{request.method} {path}", bucket)
            if fault is not None:
                return fault
            edit_headers = self._edit_bucket(request.method, handler, match.groupdict(), bucket)
            if edit_headers is not None and edit_headers.get("Retry-After"):
                body_429 = {
                    "message": "You are being rate limited.",
                    "retry_after": float(edit_headers["X-RateLimit-Reset-After"]),
                    "global": False,
                    "code": 0,
                }
                return self._json_response(429, body_429, edit_headers)
            req = _Req(request.method, path, request.query, body, files)
            status, out = await handler(req, **match.groupdict())
            return self._json_response(status, out, edit_headers or self._ratelimit_headers(bucket))
        self.unhandled.append(f"{request.method} {path}")
        raise ApiError(404, 0, "404: Not Found")

    def _edit_bucket(
        self, method: str, handler: Any, params: Mapping[str, str], bucket: str
    ) -> dict[str, str] | None:
        """Count an edit of a channel message against its channel's bucket (None: not an edit)."""
        if self.edit_limit is None or method != "PATCH" or handler != self._r_edit_message:
            return None
        limit, window = self.edit_limit
        now = time.monotonic()
        channel = params.get("channel_id", "")
        recent = [t for t in self._edits.get(channel, []) if now - t < window]
        if len(recent) >= limit:
            self.edit_rate_limited += 1
            reset = window - (now - recent[0])
            headers = self._ratelimit_headers(
                bucket, limit=limit, remaining=0, reset_after=reset, scope="user"
            )
            headers["Retry-After"] = str(max(1, int(reset + 0.999)))
            return headers
        recent.append(now)
        self._edits[channel] = recent
        reset = window - (now - recent[0])
        return self._ratelimit_headers(bucket, limit=limit, remaining=limit - len(recent), reset_after=reset)

    def _take_rate_limit(self, key: str) -> _RateLimitRule | None:
        for rule in self._rate_limits:
            if rule.times > 0 and rule.substring in key:
                rule.times -= 1
                if rule.times == 0:
                    self._rate_limits.remove(rule)
                return rule
        return None

    async def _handle_attachment(self, request: Request) -> web.Response:
        data = self.attachment_data.get(int(request.match_info["attachment_id"]))
        if data is None:
            return web.Response(status=404)
        ctype = mimetypes.guess_type(request.match_info["filename"])[0] or "application/octet-stream"
        return web.Response(body=data, content_type=ctype)

    # ------------------------------------------------------------------ REST: misc

    async def _r_gateway(self, req: _Req) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _r_gateway_bot(self, req: _Req) -> tuple[int, Any]:
        limit = {"total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1}
        return 200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    async def _r_me(self, req: _Req) -> tuple[int, Any]:
        return 200, self.users[self.bot_id]

    async def _r_user(self, req: _Req, user_id: str) -> tuple[int, Any]:
        user = self.users.get(int(user_id))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return 200, user

    async def _r_application(self, req: _Req) -> tuple[int, Any]:
        return 200, self.application_payload()

    async def _r_create_dm(self, req: _Req) -> tuple[int, Any]:
        recipient = int((req.json or {}).get("recipient_id", 0))
        if recipient not in self.users:
            raise form_error("recipient_id", "NUMBER_TYPE_COERCE", f'Value "{recipient}" is not snowflake.')
        return 200, self.channels[self.dm_channel(recipient)]

    def _channel(self, channel_id: str) -> dict[str, Any]:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    def _require_perms(self, channel: dict[str, Any], needed: int) -> None:
        gid = channel.get("guild_id")
        if gid is None:
            return
        have = self.permissions_for(int(gid), self.bot_id, int(channel["id"]))
        if not have & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if have & needed != needed:
            raise ApiError(403, 50013, "Missing Permissions")

    async def _r_channel(self, req: _Req, channel_id: str) -> tuple[int, Any]:
        return 200, self._channel(channel_id)

    async def _r_typing(self, req: _Req, channel_id: str) -> tuple[int, Any]:
        channel = self._channel(channel_id)
        self._require_perms(channel, SEND_MESSAGES)
        self.typing.append(int(channel_id))
        return 204, None

    async def _r_guild(self, req: _Req, guild_id: str) -> tuple[int, Any]:
        if int(guild_id) not in self.guilds:
            raise ApiError(404, 10004, "Unknown Guild")
        payload = self.guild_payload(int(guild_id))
        for key in ("channels", "members", "threads", "presences", "voice_states"):
            payload.pop(key)
        return 200, payload

    async def _r_guild_channels(self, req: _Req, guild_id: str) -> tuple[int, Any]:
        if int(guild_id) not in self.guilds:
            raise ApiError(404, 10004, "Unknown Guild")
        return 200, [c for c in self.channels.values() if c.get("guild_id") == guild_id]

    async def _r_guild_roles(self, req: _Req, guild_id: str) -> tuple[int, Any]:
        if int(guild_id) not in self.guilds:
            raise ApiError(404, 10004, "Unknown Guild")
        return 200, list(self.guilds[int(guild_id)].roles.values())

    async def _r_guild_member(self, req: _Req, guild_id: str, user_id: str) -> tuple[int, Any]:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        if int(user_id) not in guild.members:
            raise ApiError(404, 10007, "Unknown Member")
        return 200, self.member_payload(int(guild_id), int(user_id))

    # ------------------------------------------------------------------ REST: messages

    def _stored(self, channel_id: str | int, message_id: str | int) -> dict[str, Any]:
        stored = self.stored_messages.get(int(message_id))
        if stored is None or int(stored["channel_id"]) != int(channel_id):
            raise ApiError(404, 10008, "Unknown Message")
        return stored

    async def _r_list_messages(self, req: _Req, channel_id: str) -> tuple[int, Any]:
        channel = self._channel(channel_id)
        self._require_perms(channel, READ_MESSAGE_HISTORY)
        limit = int(req.query.get("limit", 50))
        if not 1 <= limit <= 100:
            raise form_error("limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100.")
        found = [m for m in self.stored_messages.values() if m["channel_id"] == channel_id]
        if "before" in req.query:
            found = [m for m in found if int(m["id"]) < int(req.query["before"])]
        if "after" in req.query:
            found = [m for m in found if int(m["id"]) > int(req.query["after"])]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        return 200, found[:limit]

    async def _r_get_message(self, req: _Req, channel_id: str, message_id: str) -> tuple[int, Any]:
        self._require_perms(self._channel(channel_id), READ_MESSAGE_HISTORY)
        return 200, self._stored(channel_id, message_id)

    def _validate_message(
        self,
        body: Mapping[str, Any],
        files: Mapping[str, Upload],
        *,
        channel_id: int,
        creating: bool,
        existing_attachments: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise form_error("content", "BASE_TYPE_STRING", "Must be a string.")
        if content is not None and len(content) > MAX_CONTENT:
            raise form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
        flags = int(body.get("flags") or 0)
        embeds = body.get("embeds") or []
        _validate_embeds(embeds)
        components = body.get("components") or []
        if flags & FLAG_COMPONENTS_V2:
            if content or embeds:
                raise form_error(
                    "content",
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    "The 'content' and 'embeds' fields cannot be used when using components v2.",
                )
            _validate_custom_ids(components, "components")
        else:
            _validate_components(components)
        _validate_allowed_mentions(body.get("allowed_mentions"))
        ref = body.get("message_reference")
        if ref is not None:
            ref_id = int(ref.get("message_id", 0))
            target = self.stored_messages.get(ref_id)
            ref_channel = int(ref.get("channel_id") or channel_id)
            if (target is None or int(target["channel_id"]) != ref_channel) and ref.get(
                "fail_if_not_exists", True
            ):
                raise form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        total = 0
        for index, att in enumerate(body.get("attachments") or []):
            desc = att.get("description")
            if desc is not None and len(desc) > 1024:
                raise form_error(
                    f"attachments.{index}.description",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 1024 or fewer in length.",
                )
            key = f"files[{att.get('id')}]"
            known = {str(a["id"]) for a in existing_attachments}
            if key not in files and str(att.get("id")) not in known:
                raise form_error(f"attachments.{index}", "ATTACHMENT_NOT_FOUND", "Attachment not found.")
        for upload in files.values():
            total += len(upload.data)
        if total > self.upload_limit:
            raise ApiError(413, 40005, "Request entity too large")
        if creating and not (
            content or embeds or files or components or body.get("sticker_ids") or body.get("poll")
        ):
            raise ApiError(400, 50006, "Cannot send an empty message")

    def _attachments_from(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: Mapping[str, Upload],
        existing: Sequence[Mapping[str, Any]] = (),
    ) -> tuple[list[dict[str, Any]], list[SentAttachment]]:
        """Turn payload `attachments` + `files[n]` parts into attachment objects (+ records with the bytes)."""
        objects: list[dict[str, Any]] = []
        records: list[SentAttachment] = []
        meta = body.get("attachments")
        used: set[str] = set()
        by_id = {str(a["id"]): a for a in existing}
        if meta is None:
            meta = [{"id": str(a["id"])} for a in existing]
        for att in meta:
            key = f"files[{att.get('id')}]"
            if key in files:
                upload = files[key]
                used.add(key)
                obj = self.make_attachment(
                    channel_id,
                    att.get("filename") or upload.filename,
                    upload.data,
                    description=att.get("description"),
                )
            else:
                obj = dict(by_id[str(att["id"])])
            objects.append(obj)
        for key, upload in files.items():
            if key not in used:
                objects.append(self.make_attachment(channel_id, upload.filename, upload.data))
        for obj in objects:
            records.append(
                SentAttachment(
                    int(obj["id"]),
                    obj["filename"],
                    obj.get("description"),
                    obj.get("content_type"),
                    self.attachment_data.get(int(obj["id"]), b""),
                )
            )
        return objects, records

    def _pings(
        self, content: str, allowed: Mapping[str, Any] | None, reference: Mapping[str, Any] | None
    ) -> tuple[list[int], list[int], bool]:
        """Who Discord would notify, honouring allowed_mentions (absent = everything, replied user included)."""
        parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
        users_ok = {int(u) for u in (allowed or {}).get("users", [])}
        roles_ok = {int(r) for r in (allowed or {}).get("roles", [])}
        users = [int(u) for u in USER_MENTION_RE.findall(content) if "users" in parse or int(u) in users_ok]
        roles = [int(r) for r in ROLE_MENTION_RE.findall(content) if "roles" in parse or int(r) in roles_ok]
        everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
        if reference is not None and (allowed is None or allowed.get("replied_user")):
            target = self.stored_messages.get(int(reference.get("message_id", 0)))
            if target is not None and int(target["author"]["id"]) not in users:
                users.append(int(target["author"]["id"]))
        return list(dict.fromkeys(users)), list(dict.fromkeys(roles)), everyone

    def _record(
        self,
        payload: dict[str, Any],
        body: Mapping[str, Any],
        attachments: list[SentAttachment],
        *,
        action: str,
        via: str,
        interaction_id: int | None = None,
    ) -> SentMessage:
        users, roles, everyone = self._pings(
            payload.get("content") or "", body.get("allowed_mentions"), body.get("message_reference")
        )
        record = SentMessage(
            id=int(payload["id"]),
            channel_id=int(payload["channel_id"]),
            action=action,
            via=via,
            content=payload.get("content") or "",
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            attachments=attachments,
            allowed_mentions=body.get("allowed_mentions"),
            message_reference=body.get("message_reference"),
            flags=int(payload.get("flags") or 0),
            tts=bool(payload.get("tts")),
            pinged_user_ids=users,
            pinged_role_ids=roles,
            mention_everyone=everyone,
            interaction_id=interaction_id,
            payload=dict(body),
        )
        self.messages.append(record)
        return record

    def _new_bot_message(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: Mapping[str, Upload],
        *,
        via: str,
        interaction: _Interaction | None = None,
        flags_extra: int = 0,
    ) -> tuple[dict[str, Any], list[SentAttachment]]:
        objects, records = self._attachments_from(channel_id, body, files)
        users, roles, everyone = self._pings(
            body.get("content") or "", body.get("allowed_mentions"), body.get("message_reference")
        )
        payload = self._message_payload(
            channel_id,
            self.bot_id,
            body.get("content") or "",
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            attachments=objects,
            mentions=users,
            mention_roles=roles,
            mention_everyone=everyone,
            reference=body.get("message_reference"),
            flags=int(body.get("flags") or 0) | flags_extra,
            tts=bool(body.get("tts")),
            nonce=body.get("nonce"),
            webhook_id=self.app_id if interaction is not None else None,
        )
        if interaction is not None:
            payload["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self.users[interaction.user_id],
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
            if interaction.type == 2:
                payload["type"] = 20
        return payload, records

    async def _echo(self, event: str, payload: dict[str, Any]) -> None:
        if self.echo_bot_messages and not int(payload.get("flags") or 0) & FLAG_EPHEMERAL:
            async with self._gw_lock:
                await self._dispatch_locked(event, dict(payload))

    async def _r_create_message(self, req: _Req, channel_id: str) -> tuple[int, Any]:
        channel = self._channel(channel_id)
        body = req.json if isinstance(req.json, dict) else {}
        self._require_perms(channel, SEND_MESSAGES | (ATTACH_FILES if req.files else 0))
        if body.get("enforce_nonce") and body.get("nonce") is not None:
            # Discord: the same author and nonce within a few minutes returns the first message, unsent again.
            for stored in self.stored_messages.values():
                if (
                    stored["channel_id"] == channel_id
                    and int(stored["author"]["id"]) == self.bot_id
                    and stored.get("nonce") == body["nonce"]
                ):
                    self.nonce_hits += 1
                    return 200, stored
        self._validate_message(body, req.files, channel_id=int(channel_id), creating=True)
        payload, records = self._new_bot_message(int(channel_id), body, req.files, via="channel")
        self._record(payload, body, records, action="create", via="channel")
        await self._echo("MESSAGE_CREATE", payload)
        return 200, payload

    def _apply_edit(
        self, stored: dict[str, Any], body: Mapping[str, Any], files: Mapping[str, Upload]
    ) -> list[SentAttachment]:
        channel_id = int(stored["channel_id"])
        self._validate_message(
            body,
            files,
            channel_id=channel_id,
            creating=False,
            existing_attachments=stored.get("attachments", []),
        )
        for key in ("content", "embeds", "components"):
            if key in body:
                stored[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "flags" in body and body["flags"] is not None:
            stored["flags"] = (int(stored.get("flags") or 0) & FLAG_EPHEMERAL) | int(body["flags"])
        stored["flags"] = int(stored.get("flags") or 0) & ~FLAG_LOADING
        if "embeds" in body:
            stored["embeds"] = [{"type": "rich", **e} for e in stored["embeds"]]
        objects, records = self._attachments_from(channel_id, body, files, stored.get("attachments", []))
        if "attachments" in body or files:
            stored["attachments"] = objects
        stored["edited_timestamp"] = _now_iso()
        return records

    async def _r_edit_message(self, req: _Req, channel_id: str, message_id: str) -> tuple[int, Any]:
        self._channel(channel_id)
        stored = self._stored(channel_id, message_id)
        if int(stored["author"]["id"]) != self.bot_id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        body = req.json if isinstance(req.json, dict) else {}
        records = self._apply_edit(stored, body, req.files)
        self._record(stored, body, records, action="edit", via="channel")
        await self._echo("MESSAGE_UPDATE", stored)
        return 200, stored

    async def _r_delete_message(self, req: _Req, channel_id: str, message_id: str) -> tuple[int, Any]:
        channel = self._channel(channel_id)
        stored = self._stored(channel_id, message_id)
        if int(stored["author"]["id"]) != self.bot_id:
            self._require_perms(channel, MANAGE_MESSAGES)
        await self._delete_stored(stored)
        return 204, None

    async def _delete_stored(self, stored: dict[str, Any]) -> None:
        mid, cid = int(stored["id"]), int(stored["channel_id"])
        self.stored_messages.pop(mid, None)
        self.deleted_messages.append((cid, mid))
        data = {"id": str(mid), "channel_id": str(cid)}
        if "guild_id" in stored:
            data["guild_id"] = stored["guild_id"]
        await self._echo("MESSAGE_DELETE", data)

    async def _r_add_reaction(
        self, req: _Req, channel_id: str, message_id: str, emoji: str
    ) -> tuple[int, Any]:
        channel = self._channel(channel_id)
        self._require_perms(channel, ADD_REACTIONS | READ_MESSAGE_HISTORY)
        stored = self._stored(channel_id, message_id)
        name, _, emoji_id = emoji.partition(":")
        self._add_stored_reaction(stored, {"id": emoji_id or None, "name": name}, self.bot_id)
        self.reactions.append(("add", int(channel_id), int(message_id), emoji, self.bot_id))
        return 204, None

    async def _r_remove_reaction(
        self, req: _Req, channel_id: str, message_id: str, emoji: str, who: str
    ) -> tuple[int, Any]:
        self._channel(channel_id)
        self._stored(channel_id, message_id)
        user_id = self.bot_id if who == "@me" else int(who)
        self.reactions.append(("remove", int(channel_id), int(message_id), emoji, user_id))
        return 204, None

    # ------------------------------------------------------------------ REST: application commands

    async def _r_get_commands(self, req: _Req, app_id: str, guild_id: str | None = None) -> tuple[int, Any]:
        self._check_app(app_id)
        return 200, self.commands.get(int(guild_id) if guild_id else None, [])

    def _check_app(self, app_id: str) -> None:
        if int(app_id) != self.app_id:
            raise ApiError(403, 50001, "Missing Access")

    async def _r_put_commands(self, req: _Req, app_id: str, guild_id: str | None = None) -> tuple[int, Any]:
        self._check_app(app_id)
        gid = int(guild_id) if guild_id else None
        if gid is not None and gid not in self.guilds:
            raise ApiError(404, 10004, "Unknown Guild")
        body = req.json
        if not isinstance(body, list):
            raise form_error("_root", "BASE_TYPE_ARRAY", "Must be an array.")
        if len(body) > 100:
            raise form_error("_root", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        previous = {(c["name"], c.get("type", 1)): c for c in self.commands.get(gid, [])}
        seen: set[tuple[str, int]] = set()
        out: list[dict[str, Any]] = []
        for index, cmd in enumerate(body):
            _validate_command(cmd, str(index))
            key = (cmd["name"], int(cmd.get("type", 1)))
            if key in seen:
                raise form_error(
                    f"{index}.name",
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {cmd['name']}",
                )
            seen.add(key)
            old = previous.get(key)
            full = {
                "id": old["id"] if old else str(self.snowflake()),
                "application_id": str(self.app_id),
                "version": str(self.snowflake()),
                "type": 1,
                "default_member_permissions": None,
                "nsfw": False,
                "description": "",
                "options": [],
                **cmd,
            }
            if full["default_member_permissions"] is not None:  # Discord answers with a string
                full["default_member_permissions"] = str(int(full["default_member_permissions"]))
            if gid is not None:
                full["guild_id"] = str(gid)
            out.append(full)
        self.commands[gid] = out
        self.command_syncs.append(gid)
        return 200, out

    # ------------------------------------------------------------------ REST: interactions + webhooks

    async def _r_callback(self, req: _Req, interaction_id: str, token: str) -> tuple[int, Any]:
        it = self._interactions.get(int(interaction_id))
        if it is None or it.token != token:
            raise ApiError(404, 10062, "Unknown interaction")
        if it.responded:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - it.created > self.interaction_ack_timeout:
            raise ApiError(404, 10062, "Unknown interaction")
        body = req.json if isinstance(req.json, dict) else {}
        rtype = body.get("type")
        allowed = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}.get(it.type, set())
        if rtype not in allowed:
            raise form_error("type", "BASE_TYPE_CHOICES", f"Value must be one of {sorted(allowed)}.")
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        if rtype == 4:
            self._validate_message(data, req.files, channel_id=it.channel_id, creating=True)
            message, records = self._new_bot_message(
                it.channel_id, data, req.files, via="interaction", interaction=it
            )
            it.original_message_id = int(message["id"])
            self._record(message, data, records, action="create", via="interaction", interaction_id=it.id)
            await self._echo("MESSAGE_CREATE", message)
        elif rtype == 5:
            flags = int(data.get("flags") or 0) & FLAG_EPHEMERAL
            message, _ = self._new_bot_message(
                it.channel_id,
                {"content": ""},
                {},
                via="interaction",
                interaction=it,
                flags_extra=FLAG_LOADING | flags,
            )
            it.original_message_id = int(message["id"])
            await self._echo("MESSAGE_CREATE", message)
        elif rtype in (6, 7):
            if it.message_id is None:
                raise form_error(
                    "type", "INTERACTION_NO_MESSAGE", "This interaction has no message to update."
                )
            it.original_message_id = it.message_id
            if rtype == 7:
                message = self.stored_messages[it.message_id]
                records = self._apply_edit(message, data, req.files)
                self._record(message, data, records, action="edit", via="interaction", interaction_id=it.id)
                await self._echo("MESSAGE_UPDATE", message)
        elif rtype == 8:
            if len(data.get("choices") or []) > 25:
                raise form_error("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        elif rtype == 9:
            _validate_modal(data)
        it.responded, it.response_type = True, rtype
        with_response = req.query.get("with_response") in ("1", "true", "True")
        self.interaction_responses.append(
            InteractionResponse(it.id, int(rtype), data, it.original_message_id, with_response)
        )
        if not with_response:
            return 204, None
        flags = int(message.get("flags") or 0) if message else 0
        result: dict[str, Any] = {
            "interaction": {
                "id": str(it.id),
                "type": it.type,
                "response_message_id": str(it.original_message_id) if it.original_message_id else None,
                "response_message_loading": bool(flags & FLAG_LOADING),
                "response_message_ephemeral": bool(flags & FLAG_EPHEMERAL),
            },
            "resource": {"type": rtype},
        }
        if message is not None:
            result["resource"]["message"] = message
        return 200, result

    def _hook_interaction(self, app_id: str, token: str) -> _Interaction:
        it = self._interactions_by_token.get(token)
        if int(app_id) != self.app_id or it is None or time.monotonic() - it.created > 15 * 60:
            raise ApiError(404, 10015, "Unknown Webhook")
        return it

    def _hook_message(self, it: _Interaction, message_id: str) -> dict[str, Any]:
        mid = it.original_message_id if message_id == "@original" else int(message_id)
        stored = self.stored_messages.get(mid) if mid is not None else None
        if stored is None:
            raise ApiError(404, 10008, "Unknown Message")
        return stored

    async def _r_followup(self, req: _Req, app_id: str, token: str) -> tuple[int, Any]:
        it = self._hook_interaction(app_id, token)
        if not it.responded:
            raise ApiError(404, 10015, "Unknown Webhook")
        body = req.json if isinstance(req.json, dict) else {}
        original = self.stored_messages.get(it.original_message_id or 0)
        if original is not None and int(original.get("flags") or 0) & FLAG_LOADING:
            # Discord quirk: the first followup after a "thinking" defer replaces the loading message.
            records = self._apply_edit(original, body, req.files)
            self._record(original, body, records, action="edit", via="followup", interaction_id=it.id)
            await self._echo("MESSAGE_UPDATE", original)
            message = original
        else:
            self._validate_message(body, req.files, channel_id=it.channel_id, creating=True)
            message, records = self._new_bot_message(
                it.channel_id, body, req.files, via="followup", interaction=it
            )
            self._record(message, body, records, action="create", via="followup", interaction_id=it.id)
            await self._echo("MESSAGE_CREATE", message)
        wait = req.query.get("wait") in ("1", "true", "True")
        return (200, message) if wait else (204, None)

    async def _r_get_hook_message(
        self, req: _Req, app_id: str, token: str, message_id: str
    ) -> tuple[int, Any]:
        return 200, self._hook_message(self._hook_interaction(app_id, token), message_id)

    async def _r_edit_hook_message(
        self, req: _Req, app_id: str, token: str, message_id: str
    ) -> tuple[int, Any]:
        it = self._hook_interaction(app_id, token)
        stored = self._hook_message(it, message_id)
        body = req.json if isinstance(req.json, dict) else {}
        records = self._apply_edit(stored, body, req.files)
        via = "interaction" if message_id == "@original" else "followup"
        self._record(stored, body, records, action="edit", via=via, interaction_id=it.id)
        await self._echo("MESSAGE_UPDATE", stored)
        return 200, stored

    async def _r_delete_hook_message(
        self, req: _Req, app_id: str, token: str, message_id: str
    ) -> tuple[int, Any]:
        it = self._hook_interaction(app_id, token)
        await self._delete_stored(self._hook_message(it, message_id))
        return 204, None


# ---------------------------------------------------------------------- validators (Discord's documented limits)


def _check_len(value: Any, limit: int, path: str, *, minimum: int = 0) -> int:
    if value is None:
        if minimum:
            raise form_error(path, "BASE_TYPE_REQUIRED", "This field is required")
        return 0
    text = str(value)
    if len(text) > limit or len(text) < minimum:
        if minimum:
            raise form_error(
                path, "BASE_TYPE_BAD_LENGTH", f"Must be between {minimum} and {limit} in length."
            )
        raise form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(text)


def _validate_embeds(embeds: Sequence[Mapping[str, Any]]) -> None:
    if len(embeds) > MAX_EMBEDS:
        raise form_error("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        base = f"embeds.{i}"
        total += _check_len(embed.get("title"), 256, f"{base}.title")
        total += _check_len(embed.get("description"), 4096, f"{base}.description")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise form_error(f"{base}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for j, fld in enumerate(fields):
            total += _check_len(fld.get("name"), 256, f"{base}.fields.{j}.name", minimum=1)
            total += _check_len(fld.get("value"), 1024, f"{base}.fields.{j}.value", minimum=1)
        total += _check_len((embed.get("footer") or {}).get("text"), 2048, f"{base}.footer.text")
        total += _check_len((embed.get("author") or {}).get("name"), 256, f"{base}.author.name")
        colour = embed.get("color")
        if colour is not None and not 0 <= int(colour) <= 0xFFFFFF:
            raise form_error(
                f"{base}.color", "NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215."
            )
    if total > MAX_EMBED_TOTAL:
        raise form_error(
            "embeds", "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"
        )


def _custom_ids(components: Sequence[Mapping[str, Any]]) -> list[str]:
    found: list[str] = []
    for comp in components:
        if comp.get("custom_id") is not None:
            found.append(str(comp["custom_id"]))
        found.extend(_custom_ids(comp.get("components") or []))
        if isinstance(comp.get("accessory"), Mapping):
            found.extend(_custom_ids([comp["accessory"]]))
    return found


def _validate_custom_ids(components: Sequence[Mapping[str, Any]], path: str) -> None:
    seen: set[str] = set()

    def walk(items: Sequence[Mapping[str, Any]], base: str) -> None:
        for i, comp in enumerate(items):
            cid = comp.get("custom_id")
            if cid is not None:
                _check_len(cid, MAX_CUSTOM_ID, f"{base}.{i}.custom_id", minimum=1)
                if cid in seen:
                    raise form_error(
                        f"{base}.{i}.custom_id",
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                seen.add(cid)
            walk(comp.get("components") or [], f"{base}.{i}.components")

    walk(components, path)


def _validate_components(components: Sequence[Mapping[str, Any]]) -> None:
    if len(components) > MAX_ACTION_ROWS:
        raise form_error(
            "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length."
        )
    for i, row in enumerate(components):
        base = f"components.{i}"
        if row.get("type") != 1:
            raise form_error(
                f"{base}.type", "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).'
            )
        items = row.get("components") or []
        if not 1 <= len(items) <= MAX_ROW_ITEMS:
            raise form_error(
                f"{base}.components",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {MAX_ROW_ITEMS} in length.",
            )
        if any(c.get("type") in SELECT_TYPES for c in items) and len(items) > 1:
            raise form_error(
                f"{base}.components",
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        for j, comp in enumerate(items):
            path = f"{base}.components.{j}"
            if comp.get("type") == 2:
                _check_len(comp.get("label"), 80, f"{path}.label")
                style = comp.get("style")
                if style == 5:
                    if not comp.get("url") or comp.get("custom_id") is not None:
                        raise form_error(
                            path, "BUTTON_COMPONENT_INVALID_URL", "Link buttons need a url and no custom_id."
                        )
                elif style != 6 and comp.get("custom_id") is None:
                    raise form_error(f"{path}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
            elif comp.get("type") in SELECT_TYPES:
                _check_len(comp.get("placeholder"), 150, f"{path}.placeholder")
                if len(comp.get("options") or []) > 25:
                    raise form_error(
                        f"{path}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                    )
            else:
                raise form_error(
                    f"{path}.type", "UNION_TYPE_CHOICES", "Invalid component type for a message."
                )
    _validate_custom_ids(components, "components")


def _validate_allowed_mentions(allowed: Any) -> None:
    if allowed is None:
        return
    parse = allowed.get("parse", [])
    bad = [p for p in parse if p not in ("users", "roles", "everyone")]
    if bad:
        raise form_error(
            "allowed_mentions.parse",
            "BASE_TYPE_CHOICES",
            f"Value must be one of users, roles, everyone (got {bad}).",
        )
    for kind in ("users", "roles"):
        if kind in parse and allowed.get(kind):
            raise form_error(
                "allowed_mentions",
                "ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )
        if len(allowed.get(kind) or []) > 100:
            raise form_error(
                f"allowed_mentions.{kind}", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
            )


def _validate_command(cmd: Mapping[str, Any], path: str) -> None:
    ctype = int(cmd.get("type", 1))
    name = cmd.get("name") or ""
    if ctype == 1 and (not COMMAND_NAME_RE.match(name) or name != name.lower()):
        raise form_error(
            f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name}"
        )
    if ctype == 1:
        _check_len(cmd.get("description"), 100, f"{path}.description", minimum=1)
    _validate_options(cmd.get("options") or [], f"{path}.options")


def _validate_options(options: Sequence[Mapping[str, Any]], path: str) -> None:
    if len(options) > 25:
        raise form_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen_optional = False
    for i, opt in enumerate(options):
        base = f"{path}.{i}"
        name = opt.get("name") or ""
        if not COMMAND_NAME_RE.match(name) or name != name.lower():
            raise form_error(
                f"{base}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Option name is invalid: {name}"
            )
        _check_len(opt.get("description"), 100, f"{base}.description", minimum=1)
        if len(opt.get("choices") or []) > 25:
            raise form_error(f"{base}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if opt.get("type") in (1, 2):
            _validate_options(opt.get("options") or [], f"{base}.options")
            continue
        if opt.get("required"):
            if seen_optional:
                raise form_error(
                    base,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True


def _validate_modal(data: Mapping[str, Any]) -> None:
    _check_len(data.get("custom_id"), MAX_CUSTOM_ID, "data.custom_id", minimum=1)
    _check_len(data.get("title"), 45, "data.title", minimum=1)
    comps = data.get("components") or []
    if not 1 <= len(comps) <= 5:
        raise form_error("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")


@contextlib.asynccontextmanager
async def fake_discord(**kwargs: Any) -> AsyncIterator[FakeDiscord]:
    """Start a FakeDiscord and patch discord.py to use it, for fixtures: `async with fake_discord() as dc`."""
    async with FakeDiscord(**kwargs) as dc:
        with dc.patch_discord():
            yield dc
