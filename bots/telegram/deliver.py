"""Core Actions -> Bot API calls, with every string escaped for parse_mode HTML.

Actions arrive already degraded to Telegram's limits (core.platform.degrade, counting UTF-16 units); the
only extra work here is markup: escape, silence @mentions, put the image's alt text under its caption
when it fits, and turn choices into inline keyboards whose callback data is a stored token
(bots.telegram.buttons). Replies stay in the forum topic they answer. Receipts name messages as
``<chat id>:<message id>`` refs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, TelegramError

from bots.telegram.buttons import Buttons
from bots.telegram.errors import is_not_modified, translate
from bots.telegram.markup import chat_id, escape, fits, html_text, message_ref, parse_ref, silence_mentions
from core.contract import (
    Action,
    DirectMessage,
    Edit,
    OfferChoices,
    Post,
    Receipt,
    Reply,
    SendImage,
)
from core.errors import DeliveryRejected
from core.platform import BlobReader
from core.text import split_text, truncate, utf16_length

MAX_TEXT = 4096
MAX_CAPTION = 1024
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
ALT_LABEL = "Image description: "

Receipts = Callable[[str], Awaitable[Receipt | None]]
Sent = tuple[int | str, int]  # (chat id, message id)


class Deliverer:
    def __init__(self, bot: Bot, buttons: Buttons, receipts: Receipts, token: str = "") -> None:
        self.bot = bot
        self.buttons = buttons
        self.receipts = receipts  # receipt of an earlier Action (to find what an Edit changes)
        self.token = token

    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        try:
            messages = await self._deliver(action, blobs)
        except TelegramError as exc:
            raise translate(exc, self.token) from None
        return Receipt(message_ids=tuple(message_ref(chat, mid) for chat, mid in messages))

    async def _deliver(self, action: Action, blobs: BlobReader) -> list[Sent]:
        match action:
            case Reply():
                sent = await self._texts(action.channel, action.text, action.thread, action.reply_to)
            case Post():
                sent = await self._texts(action.channel, action.text, action.thread, None, preview=True)
            case DirectMessage():
                sent = await self._texts(action.user, action.text, None, None)
            case SendImage():
                sent = [await self._image(action, blobs)]
            case OfferChoices():
                sent = [await self._choices(action)]
            case Edit():
                return [await self._edit(action)]
            case _:
                raise DeliveryRejected(f"telegram cannot deliver {type(action).__name__}")
        return [(m.chat_id, m.message_id) for m in sent]

    async def _texts(
        self, chat: str, text: str, thread: str | None, reply_to: str | None, *, preview: bool = False
    ) -> list[Message]:
        """Send a text; if silencing mentions pushed it over 4096 units, the rest follows (no loss)."""
        target = chat_id(chat)
        plain = text if text.strip() else "…"
        pieces = [plain]
        if not fits(silence_mentions(plain), MAX_TEXT):  # measured as sent: each silenced @ adds a joiner
            pieces = split_text(plain, MAX_TEXT, lambda t: utf16_length(silence_mentions(t)))
        sent = []
        for i, piece in enumerate(pieces):
            sent.append(
                await self._call(
                    self.bot.send_message,
                    target,
                    text=html_text(piece),
                    parse_mode=ParseMode.HTML,
                    message_thread_id=_thread(thread),
                    reply_parameters=_reply(reply_to, target) if i == 0 else None,
                    link_preview_options=None if preview else NO_PREVIEW,
                )
            )
        return sent

    async def _image(self, action: SendImage, blobs: BlobReader) -> Message:
        try:
            data = await blobs(action.blob)
        except KeyError:
            raise DeliveryRejected(f"image {action.blob} expired before it could be sent") from None
        target = chat_id(action.channel)
        return await self._call(
            self.bot.send_photo,
            target,
            photo=data,
            filename="chorus.png",
            caption=caption_html(action.caption, action.alt_text) or None,
            parse_mode=ParseMode.HTML,
            message_thread_id=_thread(action.thread),
            reply_parameters=_reply(action.reply_to, target),
        )

    async def _choices(self, action: OfferChoices) -> Message:
        target = chat_id(action.channel)
        data = await self.buttons.issue(target, action.choices, action.allowed_user)
        rows = [
            [InlineKeyboardButton(c.label[:64] or "…", callback_data=d)]
            for c, d in zip(action.choices, data, strict=True)
        ]
        message = await self._call(
            self.bot.send_message,
            target,
            text=html_text(action.text if action.text.strip() else "Choose:"),
            parse_mode=ParseMode.HTML,
            reply_markup=InlineKeyboardMarkup(rows),
            message_thread_id=_thread(action.thread),
            reply_parameters=_reply(action.reply_to, target),
            link_preview_options=NO_PREVIEW,
        )
        await self.buttons.bind(message.chat_id, data, message.message_id)
        return message

    async def _edit(self, action: Edit) -> Sent:
        receipt = await self.receipts(action.target_action)
        ref = parse_ref(receipt.message_ids[0]) if receipt and receipt.message_ids else None
        if ref is None:
            raise DeliveryRejected(f"edit target {action.target_action} was never delivered")
        chat, message_id = ref
        try:
            result = await self.bot.edit_message_text(
                html_text(action.text), chat_id=chat, message_id=message_id, parse_mode=ParseMode.HTML
            )
        except BadRequest as exc:
            if is_not_modified(exc):
                return chat, message_id
            if "no text in the message" not in str(exc).lower():
                raise
            result = await self.bot.edit_message_caption(
                chat_id=chat, message_id=message_id, caption=caption_html(action.text, ""),
                parse_mode=ParseMode.HTML,
            )  # fmt: skip
        return (result.chat_id, result.message_id) if isinstance(result, Message) else (chat, message_id)

    async def _call(
        self, method: Callable[..., Coroutine[Any, Any, Message]], target: int | str, **kwargs: Any
    ) -> Message:
        """One send; a group upgraded to a supergroup is followed to its new id once."""
        try:
            return await method(target, **kwargs)
        except ChatMigrated as exc:
            return await method(exc.new_chat_id, **kwargs)


def caption_html(caption: str, alt_text: str) -> str:
    """The caption, plus the alt text in an expandable quote when both fit Telegram's 1024 units."""
    plain = silence_mentions(caption)
    if not fits(plain, MAX_CAPTION):  # only if silencing many @mentions pushed it over
        plain = truncate(plain, MAX_CAPTION, utf16_length)
    body = escape(plain)
    alt = silence_mentions(ALT_LABEL + alt_text.strip()) if alt_text.strip() else ""
    if alt and fits(f"{plain}\n\n{alt}", MAX_CAPTION):  # measured exactly as it is sent
        quote = f"<blockquote expandable>{escape(alt)}</blockquote>"
        return f"{body}\n\n{quote}" if body.strip() else quote
    return body


def _thread(thread: str | None) -> int | None:
    return int(thread) if thread and thread.isdigit() else None


def _reply(reply_to: str | None, target: int | str) -> ReplyParameters | None:
    """Answer the message in place, if it is in this chat; never fail because it was deleted."""
    ref = parse_ref(reply_to)
    if ref is None or str(ref[0]) != str(target):
        return None
    return ReplyParameters(message_id=ref[1], allow_sending_without_reply=True)
