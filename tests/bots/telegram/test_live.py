"""Drafts shown while written, on Telegram: the real adapter and PTB against FakeTelegram, the assistant
streaming from FakeOpenAI (word by word), through the real bus, worker, Sender and live stream.

Private chats get ``sendMessageDraft`` updates, then the finished message; groups get a placeholder that is
edited, then becomes the finished draft (with its image and buttons after it). A refused draft leaves no
streamed text behind; flood control (429) delays updates and never loses the finished draft.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from core.app import build_services
from core.services import Services
from core.settings import Settings
from tests.bots.telegram.stack import running, telegram_env, wait_for_messages
from tests.fakes.openai_api import FakeOpenAI, streamed
from tests.fakes.telegram_api import FakeTelegram

POST = (
    "Our community garden opens this Saturday at 10am. Bring gloves, seeds and a friend, and help us "
    "plant the first beds together. Everyone is welcome. #garden"
)
REFUSED = "Our garden opens on Saturday and everyone is welcome to come along, except the zorblax crowd."


@pytest.fixture
async def api() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def app(
    settings: Settings,
    redis: aioredis.Redis,
    api: FakeOpenAI,
    tg: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Services]:
    telegram_env(
        monkeypatch, tg, TELEGRAM_LIVE_GROUP_INTERVAL_S="1.2", TELEGRAM_LIVE_PRIVATE_INTERVAL_S="0.3"
    )
    configured = api.configure(
        settings,
        auto_image=True,
        blocklist_words=["zorblax"],
    )
    services = await build_services(configured, redis)
    yield services
    await services.aclose()


async def _polling(tg: FakeTelegram) -> None:
    await tg.wait_for(lambda: tg.calls("getUpdates"), what="the adapter's first getUpdates")


def _index(tg: FakeTelegram, method: str) -> int:
    return next(i for i, c in enumerate(tg.requests) if c.method.lower() == method.lower())


async def test_private_mention_shows_draft_updates_before_the_final_message(
    app: Services, tg: FakeTelegram, api: FakeOpenAI
) -> None:
    alice = int(tg.add_user("Alice", username="alice_w")["id"])
    api.script("chat", streamed(POST, chunk_delay=0.12))
    async with running(app):
        await _polling(tg)
        tg.user_message(alice, alice, "write a post announcing our garden opening on Saturday at 10am")
        text, _photo, choices = await wait_for_messages(tg, alice, 3, what="the draft, image and buttons")
    draft = tg.drafts[alice]
    assert len(draft.history) >= 2, draft.history  # the draft grew in several animated steps
    for shown in draft.history:
        assert POST.startswith(shown.removesuffix(" …").rstrip()), shown
    assert len(draft.history[0]) < len(POST)
    assert _index(tg, "sendMessageDraft") < _index(tg, "sendMessage")  # seen before the final message
    assert text.text == POST and text.method == "sendMessage"
    assert tg.visible_draft(alice) is None  # the finished message took the draft's place
    assert choices.reply_markup and choices.text and choices.text.startswith("Draft ")


async def test_group_mention_shows_a_placeholder_updated_then_the_final_draft_with_buttons(
    app: Services, tg: FakeTelegram, api: FakeOpenAI
) -> None:
    alice = int(tg.add_user("Alice", username="alice_w")["id"])
    group = int(tg.add_chat("supergroup", title="Garden", members=[alice])["id"])
    api.script("chat", streamed(POST, chunk_delay=0.2))  # ~5 s of writing
    async with running(app):
        await _polling(tg)
        asked = tg.user_message(group, alice, "@chorus_bot write a post announcing our garden opening")
        text, photo, choices = await wait_for_messages(tg, group, 3, what="the draft, image and buttons")
    sends = [c for c in tg.calls("sendMessage") if c["chat_id"] == str(group)]
    placeholder = sends[0]["text"]
    assert placeholder.endswith("…") and len(placeholder) < len(POST)  # partial text, still being written
    edits = [c["text"] for c in tg.calls("editMessageText") if c["chat_id"] == str(group)]
    assert len(edits) >= 2 and edits[-1] == POST  # updated while written, then the finished draft
    assert any(e.endswith("…") for e in edits[:-1])
    assert text.text == POST and text.edits >= 2
    assert text.reply_to_message_id == asked["message"]["message_id"]
    assert photo.photo and choices.reply_markup
    labels = [b["text"] for row in choices.reply_markup["inline_keyboard"] for b in row]
    assert labels[:3] == ["Post here", "Shorter", "New image"]
    assert tg.flood_refusals == 0  # the interval kept the edits inside Telegram's flood limits


async def test_refused_final_draft_leaves_no_streamed_text_behind(
    app: Services, tg: FakeTelegram, api: FakeOpenAI
) -> None:
    alice = int(tg.add_user("Alice", username="alice_w")["id"])
    group = int(tg.add_chat("supergroup", title="Garden", members=[alice])["id"])
    api.script("chat", *(streamed(REFUSED, chunk_delay=0.2) for _ in range(2)))
    async with running(app):
        await _polling(tg)
        tg.user_message(group, alice, "@chorus_bot write a post announcing our garden opening")
        tg.user_message(alice, alice, "write a post announcing our garden opening")

        def refused() -> bool:
            seen = [m.text or "" for chat in (group, alice) for m in tg.bot_messages(chat)]
            return sum("content rules" in t for t in seen) == 2

        await tg.wait_for(refused, timeout=30, what="both requests refused")
    shown = [
        c["text"] for c in tg.calls("sendMessage") + tg.calls("editMessageText") if c["chat_id"] == str(group)
    ]
    assert any("garden" in t.lower() for t in shown)  # the draft was shown while it was written ...
    for chat in (group, alice):
        (message,) = tg.bot_messages(chat)  # ... and only the refusal is left, in its place
        assert message.text and "content rules" in message.text and "garden" not in message.text.lower()
        assert "zorblax" not in (message.text or "")
    assert all("zorblax" not in c.get("text", "") for c in tg.calls("sendMessageDraft"))
    assert tg.visible_draft(alice) is None


async def test_flood_control_during_streaming_delays_updates_and_never_loses_the_final_draft(
    app: Services, tg: FakeTelegram, api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_LIVE_GROUP_INTERVAL_S", "0.2")  # faster than Telegram allows: 429s
    alice = int(tg.add_user("Alice", username="alice_w")["id"])
    group = int(tg.add_chat("supergroup", title="Garden", members=[alice])["id"])
    api.script("chat", streamed(POST, chunk_delay=0.15))
    async with running(app):
        await _polling(tg)
        tg.user_message(group, alice, "@chorus_bot write a post announcing our garden opening")
        text, _photo, choices = await wait_for_messages(tg, group, 3, timeout=40, what="the whole draft")
        await tg.wait_for(lambda: text.text == POST, timeout=20, what="the finished draft in place")
    assert tg.flood_refusals >= 1  # Telegram said "retry after" while the draft was being shown
    assert text.text == POST and choices.reply_markup  # the finished draft arrived all the same
    assert len(tg.bot_messages(group)) == 3  # once: no duplicate of the draft after the waits
