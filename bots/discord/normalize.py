"""discord.py objects -> core Events: who, where, what, and whether the author moderates this server.

Where: a server is the community (``<guild id>``), a DM is a community of its own (``dm-<user id>``); a
message in a thread belongs to the thread's parent channel with ``thread`` set, so answers go back into
the thread and a channel opted into the feed includes its threads.

Moderator: the Manage Server permission (which owners and administrators have) or one of the configured
roles, computed from the member the event carries (its roles in this server); never from a channel's
permission overwrites.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bots.discord.buttons import Pressed
from bots.discord.commands import find_command, invocation_args
from bots.discord.markup import unescape
from bots.discord.sdk import discord
from core.commands import CommandRegistry
from core.contract import Attachment, Author, Event, EventKind, ReplyContext

PLATFORM = "discord"
INTERACTION_PREFIX = "i"
"""Event message ids of interactions are ``i<interaction id>``: there is no message to reply to."""

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_CHANNEL_MENTION = re.compile(r"<#(\d+)>")
_SPACES = re.compile(r"[ \t]{2,}")

BotMessageLookup = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Place:
    community: str
    channel: str
    thread: str | None
    private: bool


def dm_community(user_id: int) -> str:
    return f"dm-{user_id}"


def place_of(channel: Any, guild_id: int | None, user_id: int) -> Place:
    """Community, channel and thread of a (possibly partial) channel object."""
    if guild_id is None:
        return Place(dm_community(user_id), str(channel.id), None, True)
    if isinstance(channel, discord.Thread) and channel.parent_id is not None:
        return Place(str(guild_id), str(channel.parent_id), str(channel.id), False)
    return Place(str(guild_id), str(channel.id), None, False)


def is_moderator(
    user: Any, moderator_roles: Iterable[str], permissions: discord.Permissions | None = None
) -> bool:
    """Manage Server (owners and administrators have it) or a configured moderator role."""
    if not isinstance(user, discord.Member):
        return False
    # Server-wide permissions from the member's roles and the server's role table. Discord's resolved
    # permissions (which include the channel's overwrites) only as a fallback for a server not cached.
    cached = isinstance(user.guild, discord.Guild) and user.guild.get_role(user.guild.id) is not None
    server_wide = user.guild_permissions if cached else permissions
    if server_wide is not None and server_wide.manage_guild:
        return True
    wanted = {r.strip().lower() for r in moderator_roles if r.strip()}
    if not wanted:
        return False
    return any(str(role.id) in wanted or role.name.lower() in wanted for role in user.roles)


def author_of(user: Any, moderator_roles: Iterable[str], permissions: Any = None) -> Author:
    return Author(
        id=str(user.id),
        name=str(getattr(user, "display_name", "") or getattr(user, "name", "")),
        is_bot=bool(getattr(user, "bot", False)),
        is_moderator=is_moderator(user, moderator_roles, permissions),
    )


def attachments_of(message: discord.Message) -> tuple[Attachment, ...]:
    out = []
    for att in message.attachments:
        mime = att.content_type or ""
        kind = next((k for k in ("image", "video", "audio") if mime.startswith(k + "/")), "file")
        out.append(Attachment(kind=kind, url=att.url, mime=mime, name=att.filename, size=att.size))
    return tuple(out)


def message_text(message: discord.Message, *, ours: bool = False) -> str:
    """Plain text of a message: its content, or for embeds (the bot's drafts) their descriptions; the
    bot's own messages are read back without the escapes it wrote."""
    if message.content:
        return unescape(message.content) if ours else message.content
    return "\n\n".join(unescape(e.description or "") for e in message.embeds if e.description)


class Normalizer:
    """Turns gateway objects into Events for one bot user."""

    def __init__(
        self, bot_id: int, moderator_roles: Iterable[str], bot_message: BotMessageLookup | None = None
    ) -> None:
        self.bot_id = bot_id
        self.moderator_roles = tuple(moderator_roles)
        self.bot_message = bot_message

    def readable(self, message: discord.Message) -> str:
        """Mentions as names: the bot's own mention removed, others ``@name`` / ``#channel``."""
        users = {u.id: u for u in message.mentions}
        roles = {r.id: r for r in message.role_mentions}
        bot_roles = {r.id for r in message.role_mentions if getattr(r.tags, "bot_id", None) == self.bot_id}

        def user(m: re.Match[str]) -> str:
            uid = int(m.group(1))
            if uid == self.bot_id:
                return ""
            found = users.get(uid)
            return f"@{found.display_name}" if found else "@user"

        def role(m: re.Match[str]) -> str:
            rid = int(m.group(1))
            if rid in bot_roles:
                return ""
            return f"@{roles[rid].name}" if rid in roles else "@role"

        def channel(m: re.Match[str]) -> str:
            guild = message.guild
            found = guild.get_channel_or_thread(int(m.group(1))) if guild else None
            return f"#{found.name}" if found else "#channel"

        text = _USER_MENTION.sub(user, message.content)
        text = _ROLE_MENTION.sub(role, text)
        text = _CHANNEL_MENTION.sub(channel, text)
        return _SPACES.sub(" ", text).strip()

    def addressed(self, message: discord.Message) -> bool:
        """A mention of the bot (or its managed role), or a DM."""
        if message.guild is None:
            return True
        if any(u.id == self.bot_id for u in message.mentions):
            return True
        return any(getattr(r.tags, "bot_id", None) == self.bot_id for r in message.role_mentions)

    async def reply_context(self, message: discord.Message) -> ReplyContext | None:
        ref = message.reference
        if ref is None or ref.message_id is None:
            return None
        resolved = ref.resolved
        if isinstance(resolved, discord.Message):
            ours = resolved.author.id == self.bot_id
            return ReplyContext(
                message_id=str(resolved.id),
                author_id=str(resolved.author.id),
                text=message_text(resolved, ours=ours),
                from_bot=ours,
            )
        from_bot = bool(self.bot_message and await self.bot_message(str(ref.message_id)))
        return ReplyContext(message_id=str(ref.message_id), from_bot=from_bot)

    async def message(self, message: discord.Message) -> Event | None:
        """A mention / reply to the bot / DM becomes MENTION; other messages MESSAGE (the feed's)."""
        if message.author.bot or message.author.id == self.bot_id or message.webhook_id is not None:
            return None
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return None
        place = place_of(message.channel, message.guild.id if message.guild else None, message.author.id)
        reply_to = await self.reply_context(message)
        kind = EventKind.MESSAGE
        if self.addressed(message) or (reply_to is not None and reply_to.from_bot):
            kind = EventKind.MENTION
        text = self.readable(message) if kind is EventKind.MENTION else message.content
        attachments = attachments_of(message)
        if kind is EventKind.MESSAGE and not text.strip() and not attachments:
            return None  # without the message content intent, other people's messages arrive empty
        return Event(
            kind=kind,
            platform=PLATFORM,
            community=place.community,
            channel=place.channel,
            thread=place.thread,
            message_id=str(message.id),
            author=author_of(message.author, self.moderator_roles),
            text=text,
            reply_to=reply_to,
            attachments=attachments,
            private=place.private,
            created_at=message.created_at.timestamp(),
        )

    def edited(self, payload: discord.RawMessageUpdateEvent) -> Event | None:
        message = payload.message
        if message.author.id == self.bot_id or message.author.bot:
            return None
        if "content" not in payload.data:  # an embed unfurled, a pin...: the text did not change
            return None
        place = place_of(message.channel, payload.guild_id, message.author.id)
        return Event(
            kind=EventKind.EDITED,
            platform=PLATFORM,
            community=place.community,
            channel=place.channel,
            thread=place.thread,
            message_id=str(payload.message_id),
            author=author_of(message.author, self.moderator_roles),
            text=message.content,
            attachments=attachments_of(message),
            private=place.private,
        )

    def deleted(self, payload: discord.RawMessageDeleteEvent, channel: Any) -> Event:
        cached = payload.cached_message
        author = author_of(cached.author, ()) if cached else Author(id="")
        place = place_of(channel, payload.guild_id, int(author.id or 0))
        return Event(
            kind=EventKind.DELETED,
            platform=PLATFORM,
            community=place.community,
            channel=place.channel,
            thread=place.thread,
            message_id=str(payload.message_id),
            author=author,
            private=place.private,
        )

    def reaction(self, payload: discord.RawReactionActionEvent, channel: Any, delta: int) -> Event | None:
        if payload.user_id == self.bot_id or (payload.member is not None and payload.member.bot):
            return None
        place = place_of(channel, payload.guild_id, payload.user_id)
        user = payload.member if payload.member is not None else discord.Object(payload.user_id)
        return Event(
            kind=EventKind.REACTION,
            platform=PLATFORM,
            community=place.community,
            channel=place.channel,
            thread=place.thread,
            message_id=str(payload.message_id),
            author=author_of(user, self.moderator_roles),
            reaction=str(payload.emoji),
            reaction_delta=delta,
            private=place.private,
        )

    def _interaction_common(self, interaction: discord.Interaction) -> dict[str, Any]:
        channel = interaction.channel or discord.Object(interaction.channel_id or 0)
        place = place_of(channel, interaction.guild_id, interaction.user.id)
        return {
            "platform": PLATFORM,
            "community": place.community,
            "channel": place.channel,
            "thread": place.thread,
            "message_id": f"{INTERACTION_PREFIX}{interaction.id}",
            "author": author_of(interaction.user, self.moderator_roles, interaction.permissions),
            "private": place.private,
        }

    def command(self, interaction: discord.Interaction, registry: CommandRegistry) -> Event | None:
        """A slash command; None if the core no longer has it (stale command list)."""
        data: dict[str, Any] = dict(interaction.data or {})
        cmd = find_command(registry, str(data.get("name", "")))
        if cmd is None:
            return None
        args = invocation_args(cmd, data)
        return Event(
            kind=EventKind.COMMAND,
            command=cmd.name,
            args=args,
            text=f"/{cmd.name} {args}".strip(),
            **self._interaction_common(interaction),
        )

    def choice(self, interaction: discord.Interaction, pressed: Pressed) -> Event:
        message = interaction.message
        reply_to = (
            ReplyContext(
                message_id=str(message.id),
                author_id=str(message.author.id),
                text=message_text(message, ours=True),
                from_bot=True,
            )
            if message is not None
            else None
        )
        return Event(
            kind=EventKind.CHOICE,
            choice=pressed.payload,
            reply_to=reply_to,
            **self._interaction_common(interaction),
        )
