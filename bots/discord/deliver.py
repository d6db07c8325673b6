"""Actions -> discord.py calls: escaped text, embeds, image files with alt text, buttons, follow-ups.

Every send carries ``ALLOWED_MENTIONS``: no @everyone/@here, no roles, no users named in the text; only the
author of the message being answered is notified. Text is escaped (``markup.escape``); if escaping pushes a
text (already within 2000 characters) over Discord's content limit, it goes into an embed (4096). Drafts
and digests are embeds; published posts are plain messages. A channel message carries the Action id as an
enforced nonce, so a retried send after a lost response does not post twice. SDK errors are translated
into the core's PlatformError tree here.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from bots.discord import buttons
from bots.discord.interactions import Deferred, InteractionStore
from bots.discord.markup import escape
from bots.discord.normalize import INTERACTION_PREFIX
from bots.discord.sdk import discord
from core.bus import Bus
from core.contract import (
    Action,
    Choice,
    DirectMessage,
    DraftRef,
    Edit,
    OfferChoices,
    Post,
    Receipt,
    Reply,
    SendImage,
)
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable
from core.platform import BlobReader

log = logging.getLogger(__name__)

MAX_CONTENT = 2000
MAX_ALT_TEXT = 1024
MAX_NONCE = 25
DRAFT_COLOUR = 0x5865F2
DIGEST_COLOUR = 0x2D9C6F
ALLOWED_MENTIONS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)
"""Nobody is pinged by what the bot writes; a reply notifies the person it answers, nobody else."""


@dataclass
class Message:
    """What one Discord message should contain (kwargs for send, follow-up or edit)."""

    content: str | None = None
    embed: discord.Embed | None = None
    file: discord.File | None = None
    view: discord.ui.View | None = None
    reference: discord.MessageReference | None = None  # channel messages only

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"allowed_mentions": ALLOWED_MENTIONS}
        for name in ("content", "embed", "file", "view", "reference"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def as_embed(action: Action, command: str | None = None) -> int | None:
    """The embed colour for drafts shown for review and for digests; None for plain messages."""
    ref = action.ref or ""
    if ref.startswith("digest") or (command == "digest" and isinstance(action, Reply | OfferChoices)):
        return DIGEST_COLOUR  # a digest's last message carries its "more/less like this" buttons
    draft = DraftRef.parse(ref)
    if isinstance(action, Reply | Edit) and draft is not None and not draft.image:
        return DRAFT_COLOUR
    return None


def text_message(text: str, colour: int | None = None) -> Message:
    """Escaped text as content, or as an embed (for drafts and digests, or when escaping made it too long
    for content: at most 2 × 2000 characters, within an embed's 4096)."""
    escaped = escape(text)
    if colour is None and len(escaped) <= MAX_CONTENT:
        return Message(content=escaped)
    return Message(embed=discord.Embed(description=escaped, colour=colour))


def image_filename(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "image.jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image.webp"
    if data[:4] == b"GIF8":
        return "image.gif"
    return "image.png"


def nonce_for(action_id: str) -> str:
    return (
        action_id
        if len(action_id) <= MAX_NONCE
        else hashlib.sha256(action_id.encode()).hexdigest()[:MAX_NONCE]
    )


def translate(exc: BaseException) -> Exception:
    """discord.py / network errors -> the core's PlatformError tree (the Sender decides what to do)."""
    if isinstance(exc, discord.RateLimited):
        return PlatformRateLimited(retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429:
            retry = (exc.response.headers.get("Retry-After") if exc.response is not None else None) or "1"
            return PlatformRateLimited(retry_after=float(retry))
        if exc.status >= 500:
            return PlatformUnavailable(f"discord {exc.status}: {exc.text[:200]}")
        return DeliveryRejected(f"discord {exc.status} (code {exc.code}): {exc.text[:300]}")
    if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError | discord.ConnectionClosed):
        return PlatformUnavailable(f"discord unreachable: {exc!r}")
    if isinstance(exc, ValueError | TypeError):
        return DeliveryRejected(f"discord.py refused the message: {exc}")
    return PlatformUnavailable(repr(exc))


class Deliverer:
    """Performs one Action; knows the client, the follow-up records and the bus (receipts, blobs)."""

    def __init__(
        self,
        client: discord.Client,
        bus: Bus,
        interactions: InteractionStore,
    ) -> None:
        self.client = client
        self.bus = bus
        self.interactions = interactions

    async def deliver(self, action: Action, blobs: BlobReader) -> Receipt:
        try:
            message_id = await self._deliver(action, blobs)
        except (DeliveryRejected, PlatformRateLimited, PlatformUnavailable):
            raise
        except Exception as exc:
            translated = translate(exc)
            if isinstance(translated, PlatformUnavailable):
                log.warning("discord: action %s not delivered (will retry): %s", action.id, translated)
            raise translated from exc
        return Receipt(message_ids=(str(message_id),))

    async def _deliver(self, action: Action, blobs: BlobReader) -> int:
        if isinstance(action, Edit):
            return await self._edit(action)
        found = await self._interaction(action)
        command = found[0].command if found else None
        message = await self.render(action, blobs, command)
        if isinstance(action, DirectMessage):
            return await self._send_dm(action.user, message, nonce_for(action.id))
        if found is not None:
            deferred, sent = found
            answers = getattr(action, "reply_to", None) == f"{INTERACTION_PREFIX}{deferred.interaction_id}"
            placeholder = deferred.mode == "thinking" and sent == 0
            if deferred.fresh and (answers or placeholder):
                try:
                    return await self._send_followup(deferred, message)
                except discord.NotFound:  # the interaction was deleted or expired early
                    log.info("discord: follow-up for %s no longer possible", action.id)
                    message = await self.render(action, blobs, command)
            if deferred.ephemeral and (answers or placeholder):
                # A private answer that can no longer be a follow-up stays private: a DM, not the channel.
                return await self._send_dm(deferred.user_id, message, nonce_for(action.id))
        reply_to = getattr(action, "reply_to", None)
        if reply_to and not reply_to.startswith(INTERACTION_PREFIX):
            message.reference = discord.MessageReference(
                message_id=int(reply_to),
                channel_id=int(action.thread or action.channel),
                fail_if_not_exists=False,
            )
        target = self.client.get_partial_messageable(int(action.thread or action.channel))
        posted = await target.send(**message.kwargs(), nonce=nonce_for(action.id))
        return posted.id

    async def _send_dm(self, user_id: str, message: Message, nonce: str) -> int:
        channel = await self.client.create_dm(discord.Object(int(user_id)))
        posted = await channel.send(**message.kwargs(), nonce=nonce)
        return posted.id

    async def render(self, action: Action, blobs: BlobReader, command: str | None = None) -> Message:
        match action:
            case SendImage():
                try:
                    data = await blobs(action.blob)
                except KeyError:
                    raise DeliveryRejected(f"image {action.blob} expired before it was sent") from None
                message = text_message(action.caption) if action.caption else Message()
                message.file = discord.File(
                    io.BytesIO(data),
                    filename=image_filename(data),
                    description=action.alt_text[:MAX_ALT_TEXT] or None,
                )
                return message
            case OfferChoices():
                message = text_message(action.text, as_embed(action, command))
                message.view = await self.view(action.choices, action.allowed_user)
                return message
            case Reply() | Post() | DirectMessage() | Edit():
                return text_message(action.text, as_embed(action, command))
        raise DeliveryRejected(f"unknown action type {type(action).__name__}")

    async def view(self, choices: tuple[Choice, ...], allowed_user: str | None) -> discord.ui.View:
        """Buttons whose custom ids carry the payload and who may press (see ``buttons``)."""
        view = discord.ui.View(timeout=None)
        for choice in choices[:25]:
            custom_id = await buttons.custom_id_for(self.bus.redis, choice.payload, allowed_user)
            style = getattr(discord.ButtonStyle, buttons.style_name(choice.payload))
            view.add_item(discord.ui.Button(label=choice.label[:80] or "…", custom_id=custom_id, style=style))
        view.stop()  # never dispatched by discord.py: presses are read from the custom ids (persistent)
        return view

    async def _interaction(self, action: Action) -> tuple[Deferred, int] | None:
        """The acknowledged interaction this Action answers (same channel), with its follow-ups so far."""
        if not action.event_id or isinstance(action, DirectMessage):
            return None
        found = await self.interactions.get(action.event_id)
        if found is None or str(action.thread or action.channel) != found[0].channel:
            return None
        return found

    async def _send_followup(self, deferred: Deferred, message: Message) -> int:
        webhook = discord.Webhook.from_state(
            data={"id": deferred.application_id, "type": 3, "token": deferred.token},
            state=self.client._connection,
        )
        sent = await webhook.send(**message.kwargs(), ephemeral=deferred.ephemeral, wait=True)
        await self.interactions.answered(deferred.event_id)
        return sent.id

    async def _edit(self, action: Edit) -> int:
        receipt = await self.bus.receipt(action.target_action)
        if receipt is None or not receipt.message_ids:
            raise DeliveryRejected(f"edit target {action.target_action} was never delivered")
        message_id = int(receipt.message_ids[0])
        channel = self.client.get_partial_messageable(int(action.thread or action.channel))
        message = text_message(action.text, as_embed(action))
        await channel.get_partial_message(message_id).edit(
            content=message.content, embed=message.embed, allowed_mentions=ALLOWED_MENTIONS
        )
        return message_id
