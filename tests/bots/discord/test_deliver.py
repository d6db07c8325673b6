"""Delivering each Action through real discord.py to the fake, and translating SDK errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bots.discord.deliver import (
    DIGEST_COLOUR,
    DRAFT_COLOUR,
    as_embed,
    image_filename,
    nonce_for,
    text_message,
    translate,
)
from bots.discord.interactions import Deferred
from bots.discord.sdk import discord
from core.contract import (
    Choice,
    DirectMessage,
    Edit,
    OfferChoices,
    Post,
    Receipt,
    Reply,
    SendImage,
)
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable
from core.services import Services
from tests.bots.contract import HOSTILE, PNG_1PX
from tests.bots.discord.harness import CHANNEL_ID, GUILD_ID, People, Running, running, shown
from tests.fakes.discord_api import FakeDiscord

WHERE = {"platform": "discord", "community": str(GUILD_ID), "channel": str(CHANNEL_ID)}


async def _blob(_: str) -> bytes:
    return PNG_1PX


@pytest.fixture
async def run(dc: FakeDiscord, services: Services) -> AsyncIterator[Running]:
    async with running(dc, services, pipeline=False) as started:
        yield started


async def test_each_action_becomes_the_right_message(run: Running, people: People) -> None:
    dc, deliver = run.dc, run.platform.deliver
    asked = await dc.message_create(CHANNEL_ID, people.alice, "a question")
    draft = Reply(**WHERE, text="A draft", reply_to=asked["id"], ref="draft:abc")
    [draft_id] = (await deliver(draft, _blob)).message_ids
    await deliver(Post(**WHERE, text="Published **post**", ref="draft:abc"), _blob)
    await deliver(SendImage(**WHERE, blob="b", alt_text="A red square", caption="AI-generated image"), _blob)
    choices = (
        Choice(label="Post here", payload="post:abc"),
        Choice(label="Share to X", payload="share:abc:x:1"),
    )
    await deliver(
        OfferChoices(**WHERE, text="Draft abc", choices=choices, allowed_user=str(people.alice)), _blob
    )
    await deliver(Post(**WHERE, text="📰 Daily digest", ref="digest:s1:t"), _blob)
    reply, post, image, offer, digest = dc.messages
    assert (
        int(draft_id) == reply.id and reply.embeds[0]["color"] == DRAFT_COLOUR and shown(reply) == "A draft"
    )
    assert reply.message_reference is not None and int(reply.message_reference["message_id"]) == int(
        asked["id"]
    )
    assert reply.pinged_user_ids == [people.alice]  # only the person answered is notified
    assert post.content == "Published \\*\\*post\\*\\*" and not post.embeds and post.message_reference is None
    [attachment] = image.attachments
    assert (attachment.description, attachment.data, image.content) == (
        "A red square",
        PNG_1PX,
        "AI-generated image",
    )
    buttons = [c for row in offer.components for c in row["components"]]
    assert [(b["label"], b["style"]) for b in buttons] == [("Post here", 3), ("Share to X", 1)]
    assert buttons[0]["custom_id"] == f"chorus|{people.alice}|post:abc"
    assert digest.embeds[0]["color"] == DIGEST_COLOUR


async def test_edit_changes_the_delivered_message(run: Running) -> None:
    reply = Reply(**WHERE, text="first")
    receipt = await run.platform.deliver(reply, _blob)
    await run.services.bus.record_sent(reply, receipt)
    edited = await run.platform.deliver(Edit(**WHERE, target_action=reply.id, text="second"), _blob)
    assert edited.message_ids == receipt.message_ids
    assert [(m.action, shown(m)) for m in run.dc.messages] == [("create", "first"), ("edit", "second")]
    with pytest.raises(DeliveryRejected):
        await run.platform.deliver(Edit(**WHERE, target_action="never-sent", text="x"), _blob)


async def test_direct_messages_and_rejections(run: Running, people: People) -> None:
    await run.platform.deliver(DirectMessage(**WHERE, user=str(people.bob), text="psst"), _blob)
    assert run.dc.messages[-1].channel_id == run.dc.dm_channel(people.bob)
    with pytest.raises(DeliveryRejected):  # 404 Unknown Channel: retrying would not help
        await run.platform.deliver(Reply(**{**WHERE, "channel": "999"}, text="nowhere"), _blob)
    with pytest.raises(DeliveryRejected, match="expired"):  # the image is gone from the blob store
        await run.platform.deliver(SendImage(**WHERE, blob="gone"), run.services.bus.get_blob)


async def test_text_that_escaping_makes_too_long_goes_into_an_embed(run: Running) -> None:
    text = "*" * 1500 + " " + HOSTILE
    await run.platform.deliver(Reply(**WHERE, text=text), _blob)
    [message] = run.dc.messages
    assert message.content == "" and shown(message) == text


async def test_a_resent_action_is_not_posted_twice(run: Running) -> None:
    post = Post(**WHERE, text="only once")
    first = await run.platform.deliver(post, _blob)
    again = await run.platform.deliver(post, _blob)  # e.g. the response was lost and the Sender retried
    assert first == again and len(run.dc.messages) == 1 and run.dc.nonce_hits == 1


async def test_late_answers_to_interactions(run: Running, people: People) -> None:
    store = run.platform.interactions

    async def answer(event_id: str, *, ephemeral: bool, age_s: float) -> None:
        await store.save(
            Deferred(
                event_id=event_id,
                interaction_id=77,
                application_id=run.dc.app_id,
                token="expired-token",
                channel=str(CHANNEL_ID),
                user_id=str(people.alice),
                mode="thinking",
                ephemeral=ephemeral,
                created=time.time() - age_s,
            )
        )
        await run.platform.deliver(Reply(**WHERE, event_id=event_id, reply_to="i77", text=event_id), _blob)

    await answer("public-late", ephemeral=False, age_s=3600)  # too late for a follow-up: the channel
    await answer("private-late", ephemeral=True, age_s=3600)  # a private answer stays private: a DM
    await answer("public-unknown", ephemeral=False, age_s=1)  # Discord no longer knows it: the channel
    await answer("private-unknown", ephemeral=True, age_s=1)
    dm = run.dc.dm_channel(people.alice)
    assert [(m.channel_id, shown(m)) for m in run.dc.messages] == [
        (CHANNEL_ID, "public-late"),
        (dm, "private-late"),
        (CHANNEL_ID, "public-unknown"),
        (dm, "private-unknown"),
    ]


def test_embeds_only_for_drafts_under_review_and_digests() -> None:
    assert as_embed(Reply(**WHERE, text="x", ref="draft:a")) == DRAFT_COLOUR
    assert as_embed(Reply(**WHERE, text="x", ref="draft:a:image")) is None
    assert as_embed(Post(**WHERE, text="x", ref="draft:a")) is None  # published posts are plain
    assert as_embed(Post(**WHERE, text="x", ref="digest:s:t")) == DIGEST_COLOUR
    assert as_embed(Reply(**WHERE, text="x"), command="digest") == DIGEST_COLOUR
    assert as_embed(Reply(**WHERE, text="x")) is None
    assert text_message("fits").content == "fits"
    assert text_message("x" * 2000).content and text_message("_" * 1001).embed is not None


def test_image_names_nonces() -> None:
    assert image_filename(PNG_1PX) == "image.png" and image_filename(b"\xff\xd8\xff") == "image.jpg"
    assert image_filename(b"RIFF\x00\x00\x00\x00WEBPVP8") == "image.webp"
    assert nonce_for("abc#1") == "abc#1" and len(nonce_for("digest-" + "x" * 40)) == 25


class _Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.reason = "reason"
        self.headers = headers or {}


def _http(status: int, headers: dict[str, str] | None = None) -> discord.HTTPException:
    exc_type: Any = {403: discord.Forbidden, 404: discord.NotFound}.get(status, discord.HTTPException)
    if status >= 500:
        exc_type = discord.DiscordServerError
    return exc_type(_Response(status, headers), {"message": "m", "code": 50013})  # type: ignore[no-any-return]


def test_sdk_errors_are_translated_at_the_boundary() -> None:
    limited = translate(discord.RateLimited(2.5))
    assert isinstance(limited, PlatformRateLimited) and limited.retry_after == 2.5
    too_many = translate(_http(429, {"Retry-After": "3"}))
    assert isinstance(too_many, PlatformRateLimited) and too_many.retry_after == 3.0
    assert isinstance(translate(_http(502)), PlatformUnavailable)
    assert isinstance(translate(_http(403)), DeliveryRejected)
    assert isinstance(translate(_http(404)), DeliveryRejected)
    assert isinstance(translate(_http(400)), DeliveryRejected)
    assert isinstance(translate(aiohttp.ClientConnectionError()), PlatformUnavailable)
    assert isinstance(translate(TimeoutError()), PlatformUnavailable)
    assert isinstance(translate(ValueError("bad")), DeliveryRejected)


async def test_receipts_name_the_created_message(run: Running) -> None:
    receipt = await run.platform.deliver(Reply(**WHERE, text="hello"), _blob)
    assert receipt == Receipt(message_ids=(str(run.dc.messages[0].id),))
