"""Telegram updates -> core Events. Decides what is a command, a mention, a press or feed traffic.

- ``/cmd@thisbot args`` (or ``/cmd`` not addressed to another bot) is a COMMAND; in groups an unknown
  ``/cmd`` without our @username is left to other bots and only seen by the feed.
- ``@thisbot ...``, a text_mention of the bot, a reply to one of the bot's messages, and anything said in a
  private chat is a MENTION (the mention itself is stripped from ``text``).
- In channels only commands talk to the bot (only admins post there, so ``/feed add`` works there);
  everything else in groups and channels is a MESSAGE for the feed; edits are EDITED; reactions REACTION.
Messages from other bots are only ever feed traffic, so two bots cannot talk each other into a loop.
Community and channel are the chat id; forum topics set ``thread``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from telegram import (
    CallbackQuery,
    Chat,
    Message,
    MessageEntity,
    MessageReactionUpdated,
    ReactionType,
    ReactionTypeCustomEmoji,
    ReactionTypeEmoji,
    User,
)

from bots.telegram.markup import message_ref, utf16_slice
from core.contract import Attachment, Author, Event, EventKind, ReplyContext

PLATFORM = "telegram"
IsModerator = Callable[[Chat, User | None, Chat | None], Awaitable[bool]]


class Normalizer:
    def __init__(self, me: User, commands: Mapping[str, str], is_moderator: IsModerator) -> None:
        self.me = me
        self.username = (me.username or "").lower()
        self.commands = commands  # Telegram command name -> core command name
        self.is_moderator = is_moderator

    # -- messages ----------------------------------------------------------------------------------
    async def message(self, message: Message, *, edited: bool = False) -> Event | None:
        """A message, channel post or edit; None for service messages and the bot's own messages."""
        chat = message.chat
        user = message.from_user
        if user is not None and user.id == self.me.id:
            return None
        text = message.text or message.caption or ""
        attachments = _attachments(message)
        if not text and not attachments:
            return None  # joins, pins, topic changes...
        common: dict[str, Any] = {
            "platform": PLATFORM,
            "community": str(chat.id),
            "channel": str(chat.id),
            "thread": str(message.message_thread_id) if message.is_topic_message else None,
            "message_id": message_ref(chat.id, message.message_id),
            "attachments": attachments,
            "private": chat.type == Chat.PRIVATE,
            "created_at": (message.edit_date if edited and message.edit_date else message.date).timestamp(),
        }
        if edited:
            return Event(kind=EventKind.EDITED, author=self._author(message), text=text, **common)
        reply = self._reply_context(message)
        from_bot = user is not None and user.is_bot  # another bot: feed traffic only
        command = None if from_bot else self._command(message, text)
        if command is not None:
            name, args = command
            author = await self._moderated_author(message)
            return Event(
                kind=EventKind.COMMAND, author=author, text=text, command=name, args=args,
                reply_to=reply, **common,
            )  # fmt: skip
        if not from_bot and chat.type != Chat.CHANNEL:  # in channels only commands talk to the bot
            stripped, mentioned = self._strip_mentions(message, text)
            if mentioned or (reply is not None and reply.from_bot) or chat.type == Chat.PRIVATE:
                author = await self._moderated_author(message)
                return Event(kind=EventKind.MENTION, author=author, text=stripped, reply_to=reply, **common)
        return Event(
            kind=EventKind.MESSAGE, author=self._author(message), text=text, reply_to=reply, **common
        )

    def _command(self, message: Message, text: str) -> tuple[str, str] | None:
        """(core command, args) if the message starts with a command meant for this bot."""
        entities = message.entities or message.caption_entities or ()
        first = next((e for e in entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0), None)
        if first is None:
            return None
        _, word, rest = utf16_slice(text, first.offset, first.length)
        name, _, target = word.lstrip("/").partition("@")
        name = name.lower()
        if target and target.lower() != self.username:
            return None  # addressed to another bot
        core = self.commands.get(name)
        if core is None and name == "start":
            core = "help"  # what Telegram sends when someone opens the bot's chat
        if core is None:
            if not target and message.chat.type != Chat.PRIVATE:
                return None  # probably another bot's command
            core = name
        return core, rest.strip()

    def _strip_mentions(self, message: Message, text: str) -> tuple[str, bool]:
        """Remove @thisbot / text_mentions of the bot; True if there was one."""
        entities = message.entities or message.caption_entities or ()
        spans = []
        for e in entities:
            if e.type == MessageEntity.TEXT_MENTION and e.user is not None and e.user.id == self.me.id:
                spans.append(e)
            elif e.type == MessageEntity.MENTION and self.username:
                _, word, _ = utf16_slice(text, e.offset, e.length)
                if word.lower() == "@" + self.username:
                    spans.append(e)
        for e in sorted(spans, key=lambda e: e.offset, reverse=True):
            before, _, after = utf16_slice(text, e.offset, e.length)
            text = f"{before.rstrip(' ')} {after.lstrip(' ')}"
        return (text.strip() if spans else text), bool(spans)

    def _reply_context(self, message: Message) -> ReplyContext | None:
        replied = message.reply_to_message
        if replied is None or replied.forum_topic_created is not None:
            return None  # every topic message "replies" to the topic's first message
        if message.is_topic_message and replied.message_id == message.message_thread_id:
            return None
        author = replied.from_user
        author_id = str(author.id) if author else str(replied.sender_chat.id) if replied.sender_chat else ""
        return ReplyContext(
            message_id=message_ref(message.chat.id, replied.message_id),
            author_id=author_id,
            text=replied.text or replied.caption or "",
            from_bot=author is not None and author.id == self.me.id,
        )

    def _author(self, message: Message, moderator: bool = False) -> Author:
        user, sender = message.from_user, message.sender_chat
        if sender is not None:  # a channel post, a linked channel, or an anonymous group admin
            return Author(
                id=str(sender.id), name=sender.title or sender.username or "", is_moderator=moderator
            )
        if user is None:
            return Author(id=str(message.chat.id), name=message.chat.title or "", is_moderator=moderator)
        return Author(id=str(user.id), name=user.full_name, is_bot=user.is_bot, is_moderator=moderator)

    async def _moderated_author(self, message: Message) -> Author:
        moderator = await self.is_moderator(message.chat, message.from_user, message.sender_chat)
        return self._author(message, moderator)

    # -- buttons -------------------------------------------------------------------------------------
    async def choice(self, query: CallbackQuery, payload: str) -> Event:
        """A pressed inline button whose callback data resolved to ``payload``."""
        message = query.message
        if message is None:
            raise ValueError("a callback without a message (inline mode) is not ours")
        chat, user = message.chat, query.from_user
        moderator = await self.is_moderator(chat, user, None)
        accessible = message if isinstance(message, Message) else None
        thread = accessible.message_thread_id if accessible and accessible.is_topic_message else None
        return Event(
            kind=EventKind.CHOICE,
            platform=PLATFORM,
            community=str(chat.id),
            channel=str(chat.id),
            thread=str(thread) if thread else None,
            message_id=f"{message_ref(chat.id, message.message_id)}:q{query.id}",  # every press counts
            author=Author(id=str(user.id), name=user.full_name, is_bot=user.is_bot, is_moderator=moderator),
            choice=payload,
            reply_to=ReplyContext(
                message_id=message_ref(chat.id, message.message_id),
                author_id=str(self.me.id),
                text=(accessible.text or accessible.caption or "") if accessible else "",
                from_bot=True,
            ),
            private=chat.type == Chat.PRIVATE,
        )

    # -- reactions -----------------------------------------------------------------------------------
    def reactions(self, update: MessageReactionUpdated) -> list[Event]:
        """One REACTION Event per emoji added (+1) or removed (-1) by one person."""
        old = {reaction_key(r) for r in update.old_reaction}
        new = {reaction_key(r) for r in update.new_reaction}
        if update.user is not None:
            author = Author(id=str(update.user.id), name=update.user.full_name, is_bot=update.user.is_bot)
        elif update.actor_chat is not None:
            author = Author(id=str(update.actor_chat.id), name=update.actor_chat.title or "")
        else:
            author = Author(id="anonymous")
        return [
            reaction_event(update.chat, update.message_id, emoji, delta, author, update.date.timestamp())
            for emoji, delta in [*((e, 1) for e in sorted(new - old)), *((e, -1) for e in sorted(old - new))]
        ]


def reaction_event(chat: Chat, message_id: int, emoji: str, delta: int, author: Author, at: float) -> Event:
    return Event(
        kind=EventKind.REACTION,
        platform=PLATFORM,
        community=str(chat.id),
        channel=str(chat.id),
        message_id=message_ref(chat.id, message_id),
        author=author,
        reaction=emoji,
        reaction_delta=delta,
        private=chat.type == Chat.PRIVATE,
        created_at=at,
    )


def reaction_key(reaction: ReactionType) -> str:
    if isinstance(reaction, ReactionTypeEmoji):
        return reaction.emoji
    if isinstance(reaction, ReactionTypeCustomEmoji):
        return f"custom:{reaction.custom_emoji_id}"
    return str(reaction.type)


def _attachments(message: Message) -> tuple[Attachment, ...]:
    """Files as ``tg-file:<file id>`` (never a download URL: those contain the bot token)."""
    out: list[Attachment] = []
    if message.photo:
        biggest = message.photo[-1]
        out.append(Attachment(kind="image", url=f"tg-file:{biggest.file_id}", mime="image/jpeg",
                              size=biggest.file_size or 0))  # fmt: skip
    for media, kind in (
        (message.document, "file"),
        (message.video, "video"),
        (message.animation, "video"),
        (message.audio, "audio"),
        (message.voice, "audio"),
    ):
        if media is None:
            continue
        mime = getattr(media, "mime_type", None) or ""
        out.append(
            Attachment(
                kind="image" if kind == "file" and mime.startswith("image/") else kind,
                url=f"tg-file:{media.file_id}",
                mime=mime,
                name=getattr(media, "file_name", None) or "",
                size=media.file_size or 0,
            )
        )
        break  # a message carries one file (the animation is also sent as a document)
    return tuple(out)
