"""The Telegram adapter end to end: real PTB over HTTP to FakeTelegram, the real core, real Redis.

``chorus run --platform telegram`` is reproduced in-process with ``core.app.Run`` (adapter built through
bots.registry from TELEGRAM_* variables, Sender, worker, scheduler); the assistant talks to FakeOpenAI
over HTTP through the real openai/langchain clients. What people saw is read back from the fake.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from bots.telegram.polling import offset_key
from core.contract import Choice, OfferChoices, Reply
from core.sender import Sender
from core.services import Services
from core.settings import Settings
from tests.bots.contract import PNG_1PX, Harness, PlatformContract
from tests.bots.telegram.stack import (
    BOT_ID,
    TOKEN,
    Recorder,
    adapter,
    button,
    running,
    telegram_env,
    texts,
    wait_for_messages,
)
from tests.fakes.openai_api import FakeOpenAI, chat, slow
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from tests.support import build_services, wait_until

POST = "Launch day! Chorus is live: write posts together with your community. #launch"
SHORTER = "Chorus is live today. #launch"
PLAYFUL = "Guess who just launched? Chorus! Come write with us. #launch"


@pytest.fixture
async def api() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@dataclass
class World:
    tg: FakeTelegram
    group: int
    channel: int
    alice: int  # a member who asks for drafts
    bob: int  # an administrator of the group
    carol: int  # another member


@pytest.fixture
def world(tg: FakeTelegram) -> World:
    alice = int(tg.add_user("Alice", username="alice_w")["id"])
    bob = int(tg.add_user("Bob", username="bob_admin")["id"])
    carol = int(tg.add_user("Carol", username="carol_c")["id"])
    group = int(tg.add_chat("supergroup", title="Chorus HQ", members=[alice, bob, carol])["id"])
    tg.set_admin(group, bob)
    channel = int(tg.add_chat("channel", title="Chorus News", username="chorus_news")["id"])
    return World(tg, group, channel, alice, bob, carol)


@pytest.fixture
async def app(
    settings: Settings,
    redis: aioredis.Redis,
    api: FakeOpenAI,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Services]:
    """Services as `chorus run` builds them: OpenAI-compatible model at FakeOpenAI, a channel to share to."""
    telegram_env(monkeypatch, world.tg)
    configured = api.configure(
        settings,
        share_targets={"*": [f"telegram:{world.channel}/{world.channel}"]},
    )
    services = await build_services(configured, redis)
    yield services
    await services.aclose()


class TestTelegramContract(PlatformContract):
    @pytest.fixture
    async def harness(self, services: Services, tg: FakeTelegram) -> AsyncIterator[Harness]:
        group = int(tg.add_chat("supergroup", title="Chorus HQ")["id"])
        async with adapter(services, tg) as platform:

            async def seen() -> list[str]:
                return texts(tg, group)

            target = {"platform": "telegram", "community": str(group), "channel": str(group)}
            yield Harness(platform, seen, target)


async def _polling(tg: FakeTelegram) -> None:
    await tg.wait_for(lambda: tg.calls("getUpdates"), what="the adapter's first getUpdates")


async def _draft(w: World, chat: int, count_before: int, timeout: float = 20.0) -> list[SentMessage]:
    """Wait for a whole draft (text, photo, choices) after ``count_before`` bot messages."""
    sent = await wait_for_messages(w.tg, chat, count_before + 3, timeout, "a draft, its image and choices")
    return sent[count_before : count_before + 3]


# -- the assistant through Telegram ----------------------------------------------------------------------


async def test_mention_in_a_group_gets_a_draft_with_image_and_buttons(
    app: Services, world: World, api: FakeOpenAI
) -> None:
    tg = world.tg
    api.script("chat", slow(1.5, chat(POST)))  # slow enough to see "typing…"
    async with running(app):
        await _polling(tg)
        asked = tg.user_message(world.group, world.alice, "@chorus_bot write a post about our launch")
        text, photo, choices = await _draft(world, world.group, 0)
    asked_id = asked["message"]["message_id"]
    assert text.text == POST and text.reply_to_message_id == asked_id and text.parse_mode == "HTML"
    assert photo.photo and photo.method == "sendPhoto" and photo.reply_to_message_id == asked_id
    assert photo.caption and "AI-generated image" in photo.caption and "Image description:" in photo.caption
    assert choices.text and choices.text.startswith("Draft ")
    labels = [b["text"] for row in (choices.reply_markup or {})["inline_keyboard"] for b in row]
    assert labels[:3] == ["Post here", "Shorter", "New image"]
    assert any(label.startswith("Share to telegram:") for label in labels)
    data = [b["callback_data"] for row in (choices.reply_markup or {})["inline_keyboard"] for b in row]
    assert all(d.startswith("c1.") and len(d.encode()) <= 64 for d in data)
    actions = [c for c in tg.calls("sendChatAction") if c["chat_id"] == str(world.group)]
    assert actions and actions[0]["action"] == "typing"
    sent_prompt = api.calls("chat")[0].json or {}
    assert "write a post about our launch" in str(sent_prompt["messages"])
    assert "@chorus_bot" not in str(sent_prompt["messages"])  # the mention itself is stripped


async def test_revise_button_then_a_reply_revises_again(app: Services, world: World, api: FakeOpenAI) -> None:
    tg = world.tg
    api.script("chat", chat(POST), chat(SHORTER), chat(PLAYFUL))
    async with running(app):
        await _polling(tg)
        tg.user_message(world.group, world.alice, "@chorus_bot write a post about our launch")
        _, _, choices = await _draft(world, world.group, 0)
        tg.press_button(world.group, choices.message_id, world.alice, button(choices, "Shorter"))
        revised, _, revised_choices = await _draft(world, world.group, 3)
        assert revised.text == SHORTER and revised_choices.text and "Draft " in revised_choices.text
        # replying to the bot's draft message is a revision request
        reply = tg.user_message(world.group, world.alice, "more playful please", revised.message_id)
        playful, _, _ = await _draft(world, world.group, 6)
    assert playful.text == PLAYFUL
    assert playful.reply_to_message_id == reply["message"]["message_id"]
    revise_prompt = str((api.calls("chat")[2].json or {})["messages"])
    assert "more playful please" in revise_prompt and SHORTER in revise_prompt
    answered = [q for q in tg.callback_answers.values()]
    assert answered and not answered[0]["show_alert"]  # the press was acknowledged without an alert


async def test_share_to_a_channel_waits_for_an_admins_approval(
    app: Services, world: World, api: FakeOpenAI
) -> None:
    tg = world.tg
    api.script("chat", chat(POST))
    async with running(app):
        await _polling(tg)
        tg.user_message(world.group, world.bob, "/prompt approval on")
        await wait_for_messages(tg, world.group, 1)
        tg.user_message(world.group, world.alice, "@chorus_bot write a post about our launch")
        _, _, choices = await _draft(world, world.group, 1)
        tg.press_button(world.group, choices.message_id, world.alice, button(choices, "Share to telegram"))
        [pending] = (await wait_for_messages(tg, world.group, 5))[4:]
        assert pending.text and "needs a moderator's approval" in pending.text
        assert tg.bot_messages(world.channel) == []
        tg.press_button(world.group, pending.message_id, world.carol, button(pending, "Approve"))
        refused = (await wait_for_messages(tg, world.group, 6))[5]
        assert refused.text and "Only moderators" in refused.text
        tg.press_button(world.group, pending.message_id, world.bob, button(pending, "Approve"))
        published = await wait_for_messages(
            tg, world.channel, 2, what="the post and its image in the channel"
        )
        await wait_for_messages(tg, world.group, 7)
        await asyncio.sleep(0.3)  # nothing more may arrive
    assert [m.method for m in published] == ["sendMessage", "sendPhoto"]
    assert published[0].text == POST and published[1].photo
    assert len(tg.bot_messages(world.channel)) == 2
    assert "on its way" in (texts(tg, world.group)[6])


async def test_prompt_set_is_refused_for_members_and_applied_for_admins(
    app: Services, world: World, api: FakeOpenAI
) -> None:
    tg = world.tg
    pirate = "You are a cheerful pirate who writes for the crew."
    async with running(app):
        await _polling(tg)
        tg.user_message(world.group, world.carol, f"/prompt set persona {pirate}")
        [refused] = await wait_for_messages(tg, world.group, 1)
        assert refused.text and "Only moderators" in refused.text
        tg.user_message(world.group, world.bob, f"/prompt set persona {pirate}")
        applied = (await wait_for_messages(tg, world.group, 2))[1]
        assert applied.text and "persona prompt is now v" in applied.text
        tg.user_message(world.group, world.carol, "/prompt@chorus_bot show persona")
        await wait_for_messages(tg, world.group, 3)
        tg.user_message(world.group, world.bob, "/prompt@chorus_bot show persona")
        shown = (await wait_for_messages(tg, world.group, 4))[3]
        api.script("chat", chat(POST))
        tg.user_message(world.group, world.alice, "@chorus_bot write a post about our launch")
        await _draft(world, world.group, 4)
    assert "Only moderators" in texts(tg, world.group)[2]
    assert shown.text and pirate in shown.text
    assert pirate in str((api.calls("chat")[-1].json or {})["messages"])  # the next draft used it
    assert len(tg.calls("getChatAdministrators")) == 1  # asked once, then cached


async def test_subscribe_and_digest_deliver_digests(app: Services, world: World) -> None:
    tg = world.tg
    async with running(app):
        await _polling(tg)
        tg.user_message(world.group, world.bob, "/feed add")
        await wait_for_messages(tg, world.group, 1)
        tg.user_message(world.group, world.carol, "We shipped the new onboarding flow today")
        tg.user_message(world.group, world.bob, "Reminder: community call on Friday")
        tg.user_message(world.group, world.alice, "/subscribe hourly")
        subscribed = (await wait_for_messages(tg, world.group, 2))[1]
        assert subscribed.text and subscribed.text.startswith("Subscribed")
        await wait_until_async(lambda: app.bus.backlog(), 0, "the worker to catch up")
        tg.user_message(world.group, world.alice, "/digest")
        digest = (await wait_for_messages(tg, world.group, 3))[2]
        # the scheduled digest of the hourly subscription, at its next slot
        scheduler = app.scheduler
        assert await scheduler.tick(now=(time.time() // 3600 + 1) * 3600 + 1) >= 1
        scheduled = (await wait_for_messages(tg, world.group, 4, what="the scheduled digest"))[3]
    for message in (digest, scheduled):
        assert message.text and "onboarding flow" in message.text and "community call" in message.text
    assert scheduled.reply_to_message_id is None  # a Post to the channel, not an answer


# -- delivery under pressure -------------------------------------------------------------------------------


async def test_flood_control_is_honoured_and_the_message_arrives_exactly_once(
    app: Services, world: World
) -> None:
    tg = world.tg
    async with running(app):
        await _polling(tg)
        tg.fail_next("sendMessage", status=429, retry_after=1)  # PTB's limiter waits and retries once
        started = time.monotonic()
        tg.user_message(world.group, world.alice, "/help")
        await wait_for_messages(tg, world.group, 1)
        first_wait = time.monotonic() - started
        tg.fail_next("sendMessage", status=429, retry_after=1, times=3)  # then the Sender waits its turn
        started = time.monotonic()
        tg.user_message(world.group, world.carol, "/help")
        await wait_for_messages(tg, world.group, 2)
        second_wait = time.monotonic() - started
        await asyncio.sleep(0.5)
    assert first_wait >= 1.0 and second_wait >= 2.0
    assert len(tg.bot_messages(world.group)) == 2
    attempts = [c for c in tg.calls("sendMessage") if c["chat_id"] == str(world.group)]
    assert len(attempts) == 2 + 1 + 3  # each refused attempt was retried; none acted twice


async def test_a_restart_mid_conversation_loses_and_repeats_nothing(
    app: Services, world: World, api: FakeOpenAI, redis: aioredis.Redis
) -> None:
    tg = world.tg
    api.script("chat", chat(POST), chat(SHORTER), chat(PLAYFUL))
    async with running(app):
        await _polling(tg)
        tg.user_message(world.group, world.alice, "@chorus_bot write a post about our launch")
        text, _, choices = await _draft(world, world.group, 0)
    # the adapter runs without a worker: the press is stored on the bus and confirmed, not answered
    async with running(app, worker=False):
        await _polling(tg)
        pressed = tg.press_button(world.group, choices.message_id, world.alice, button(choices, "Shorter"))
        await wait_until(lambda: not tg.pending_updates(), what="the press to be read")
        await tg.wait_for(lambda: tg.calls("getUpdates")[-1].get("offset") == str(pressed["update_id"] + 1))
    assert int(await redis.get(offset_key(BOT_ID))) == pressed["update_id"] + 1
    # while nothing runs, Alice replies to the draft; Telegram keeps the update
    waiting = tg.user_message(world.group, world.alice, "more playful please", text.message_id)
    polls_before = len(tg.calls("getUpdates"))
    async with running(app):
        await _draft(world, world.group, 3, timeout=30)
        await _draft(world, world.group, 6, timeout=30)
        await asyncio.sleep(0.5)
    first_poll = tg.calls("getUpdates")[polls_before]
    assert first_poll["offset"] == str(waiting["update_id"])  # resumed exactly after the stored offset
    answers = [
        m.text for m in tg.bot_messages(world.group) if m.method == "sendMessage" and not m.reply_markup
    ]
    assert sorted(answers) == sorted([POST, SHORTER, PLAYFUL])  # each request answered exactly once
    assert len(tg.bot_messages(world.group)) == 9


async def test_hostile_text_is_escaped_and_split_within_telegrams_limits(app: Services, world: World) -> None:
    """50 KB of HTML/markdown injection, bidi controls and emoji: delivered whole, in order, never rejected."""
    tg = world.tg
    unit = (
        "<b>bold?</b> </i> &nbsp; &amp; <a href='javascript:x'>x</a> *md* _it_ `code` [l](http://e.x) "
        "\u202eevil\u202c \u2067rtl\u2069 😀👩‍👩‍👧 @everyone @carol_c <tg-spoiler>s</tg-spoiler>. "
    )
    hostile = (unit * (50_000 // len(unit) + 1))[:50_000]
    async with running(app):
        await _polling(tg)
        reply = Reply(platform="telegram", community=str(world.group), channel=str(world.group), text=hostile)
        await app.bus.enqueue([reply])
        for _ in range(300):
            if await app.bus.receipt(reply.id) is not None:
                break
            await asyncio.sleep(0.1)
    receipt = await app.bus.receipt(reply.id)
    assert receipt is not None and len(receipt.message_ids) == len(tg.bot_messages(world.group))
    parts = tg.bot_messages(world.group)
    assert len(parts) >= 13  # 50 KB cannot fit fewer 4096-unit messages
    assert all(len((m.text or "").encode("utf-16-le")) // 2 <= 4096 for m in parts)
    shown = "".join((m.text or "").replace("\u2060", "") for m in parts)
    assert "".join(shown.split()) == "".join(hostile.split())  # nothing lost, nothing added
    assert all(
        e["type"] not in ("bold", "text_link", "spoiler", "mention") for m in parts for e in m.entities
    )


async def test_topics_private_chats_and_the_command_list(
    app: Services, world: World, api: FakeOpenAI
) -> None:
    tg = world.tg
    forum = int(tg.add_chat("supergroup", title="Forum", is_forum=True, members=[world.alice])["id"])
    topic = tg.add_topic(forum, "Launch")
    api.script("chat", chat(POST), chat(SHORTER))
    async with running(app):
        await _polling(tg)
        tg.user_message(
            forum, world.alice, "@chorus_bot write a post about our launch", message_thread_id=topic
        )
        in_topic = await _draft(world, forum, 0)
        tg.user_message(world.alice, world.alice, "write a post about our launch")  # a private chat
        in_private = await _draft(world, world.alice, 0)
        tg.user_message(world.alice, world.alice, "/prompt show persona")
        shown = (await wait_for_messages(tg, world.alice, 4))[3]
    assert all(m.message_thread_id == topic for m in in_topic)
    assert in_private[0].text == SHORTER
    assert shown.text and "persona" in shown.text and "Only moderators" not in shown.text
    everyone = {c["command"] for c in tg.commands["default"]}
    moderators = {c["command"] for c in tg.commands["all_chat_administrators"]}
    assert {"help", "post", "thread", "image", "share", "subscribe", "digest", "feed", "optout"} <= everyone
    assert "prompt" not in everyone and "approve" not in everyone and {"prompt", "approve"} <= moderators
    assert {c["command"] for c in tg.commands["all_private_chats"]} == moderators


async def test_an_adapter_stopped_mid_delivery_leaves_the_rest_for_the_next_start(
    services: Services, world: World
) -> None:
    """The part in flight completes, the rest of the Action stays queued, a new adapter sends only that."""
    tg = world.tg
    tg.flood_control = False  # ~25 messages to one group: the point here is stopping, not the group's pace
    text = " ".join(f"Sentence {i} of a long digest, with <tags> & emoji 🎉." for i in range(1500))
    reply = Reply(platform="telegram", community=str(world.group), channel=str(world.group), text=text)
    tg.delay_next("sendMessage", 0.2, times=100)  # slow enough to stop in the middle
    await services.bus.enqueue([reply])
    stop = asyncio.Event()
    async with adapter(services, tg, Recorder()) as first:
        sender = asyncio.create_task(Sender(services.bus, first, claim_idle_ms=300).run(stop))
        await wait_for_messages(tg, world.group, 2)
        await first.stop()  # while the Sender is inside the Action
        stopped_with = len(tg.bot_messages(world.group))
        stop.set()
        await sender
    assert 2 <= stopped_with < 20 and await services.bus.receipt(reply.id) is None  # not acknowledged
    recorded = [await services.bus.receipt(f"{reply.id}#{i}") for i in range(stopped_with + 1)]
    assert all(recorded[:stopped_with]) and recorded[stopped_with] is None  # no part sent unrecorded
    async with adapter(services, tg, Recorder()) as second:
        stop = asyncio.Event()
        sender = asyncio.create_task(Sender(services.bus, second, claim_idle_ms=300).run(stop))
        for _ in range(300):
            if await services.bus.receipt(reply.id) is not None:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await sender
    receipt = await services.bus.receipt(reply.id)
    parts = tg.bot_messages(world.group)
    assert receipt is not None and len(receipt.message_ids) == len(parts) > stopped_with
    shown = " ".join(m.text or "" for m in parts)
    assert [int(n) for n in re.findall(r"Sentence (\d+) ", shown)] == list(range(1500))  # once each, in order


# -- what the adapter publishes (no worker: a recording sink) ---------------------------------------------


async def test_feed_traffic_edits_and_reactions_are_published(services: Services, world: World) -> None:
    tg, sink = world.tg, Recorder()
    tg.set_admin(world.group, BOT_ID)  # Telegram sends reactions only to admins
    async with adapter(services, tg, sink):
        said = tg.user_message(world.group, world.carol, "We shipped the onboarding flow")["message"]
        posted = tg.channel_post(world.channel, "Chorus 1.0 is out")["channel_post"]
        tg.edit_user_message(world.group, said["message_id"], "We shipped the new onboarding flow")
        tg.react(world.group, said["message_id"], world.alice, "👍")
        tg.react(world.group, said["message_id"], world.alice, "🔥")
        for counts in ([("👍", 2)], [("👍", 1), ("🔥", 3)]):
            tg._push("message_reaction_count", {
                "chat": tg.chats[world.channel], "message_id": posted["message_id"], "date": int(time.time()),
                "reactions": [{"type": {"type": "emoji", "emoji": e}, "total_count": n} for e, n in counts],
            })  # fmt: skip
        await wait_until(lambda: len(sink.events) == 9, what="nine events")
    kinds = [(e.kind.value, e.text or e.reaction, e.reaction_delta) for e in sink.events]
    assert kinds == [
        ("message", "We shipped the onboarding flow", 1),
        ("message", "Chorus 1.0 is out", 1),
        ("edited", "We shipped the new onboarding flow", 1),
        ("reaction", "👍", 1),
        ("reaction", "🔥", 1),
        ("reaction", "👍", -1),
        ("reaction", "👍", 2),
        ("reaction", "👍", -1),
        ("reaction", "🔥", 3),
    ]
    group_ref = f"{world.group}:{said['message_id']}"
    assert {e.message_id for e in sink.events[:6] if e.channel == str(world.group)} == {group_ref}
    assert sink.events[1].author.id == str(world.channel) and sink.events[1].channel == str(world.channel)


async def test_forged_stale_and_other_peoples_presses_are_refused(services: Services, world: World) -> None:
    tg, sink = world.tg, Recorder()
    where = {"platform": "telegram", "community": str(world.group), "channel": str(world.group)}
    choices = (Choice(label="Post here", payload="post:d1"), Choice(label="Shorter", payload="revise:d1"))
    async with adapter(services, tg, sink) as platform:
        await platform.deliver(
            OfferChoices(**where, text="Draft d1", choices=choices, allowed_user=str(world.alice)), _no_blob
        )
        other_chat = int(tg.add_chat("supergroup", members=[world.alice])["id"])
        await platform.deliver(
            OfferChoices(platform="telegram", community=str(other_chat), channel=str(other_chat), text="Elsewhere",
                         choices=choices), _no_blob,
        )  # fmt: skip
        [draft] = tg.bot_messages(world.group)
        [foreign] = tg.bot_messages(other_chat)
        presses = [
            (world.alice, "c1.forgedforgedforgedforg"),  # never issued
            (world.alice, button(foreign, "Post here")),  # issued for another chat
            (world.carol, button(draft, "Shorter")),  # not hers, and she is no moderator
            (world.bob, button(draft, "Shorter")),  # an admin may
            (world.alice, button(draft, "Post here")),  # the author may
        ]
        queries = [
            tg.press_button(world.group, draft.message_id, user, data, check=False) for user, data in presses
        ]
        await wait_until(lambda: len(tg.callback_answers) == 5, what="every press answered")
        await asyncio.sleep(0.1)
    answers = [tg.callback_answers[q["callback_query"]["id"]] for q in queries]
    assert [a["show_alert"] for a in answers] == [True, True, True, False, False]
    assert "expired" in answers[0]["text"] and "expired" in answers[1]["text"]
    assert "Only the person who asked" in answers[2]["text"]
    assert [(e.choice, e.author.id, e.author.is_moderator) for e in sink.events] == [
        ("revise:d1", str(world.bob), True),
        ("post:d1", str(world.alice), False),
    ]


async def test_photos_are_attachments_that_download_through_get_file(
    services: Services, world: World
) -> None:
    tg, sink = world.tg, Recorder()
    png = PNG_1PX
    async with adapter(services, tg, sink) as platform:
        tg.user_photo(world.alice, world.alice, png, caption="make a post from this")
        await wait_until(lambda: bool(sink.events), what="the photo")
        [event] = sink.events
        assert event.kind.value == "mention" and event.text == "make a post from this"
        [attachment] = event.attachments
        assert attachment.kind == "image" and TOKEN not in attachment.url
        assert await platform.download(attachment.url) == png
        tg.set_admin(world.group, world.carol)
        await platform.moderators.admin_ids(world.group)
        member = tg.members[world.group][world.carol]
        tg._push("chat_member", {
            "chat": tg.chats[world.group], "from": tg.users[world.bob], "date": int(time.time()),
            "old_chat_member": member, "new_chat_member": {"status": "member", "user": tg.users[world.carol]},
        })  # fmt: skip
        key = f"chorus:{{c:telegram:{world.group}}}:tg-admins"
        await wait_until_async(lambda: services.redis.exists(key), expect=0, what="the admin cache dropped")


async def _no_blob(blob_id: str) -> bytes:
    return PNG_1PX


async def wait_until_async(check: Any, expect: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while await check() != expect:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_channel_joins_the_feed_and_gets_its_digest(app: Services, world: World) -> None:
    tg = world.tg
    async with running(app):
        await _polling(tg)
        tg.channel_post(world.channel, "/feed@chorus_bot add")  # only the channel's admins can post this
        [added] = await wait_for_messages(tg, world.channel, 1)
        assert added.text and "is in the feed now" in added.text
        tg.channel_post(world.channel, "Chorus 1.0 is out: drafts, images and digests")
        tg.user_message(world.group, world.alice, "@chorus_bot shall we celebrate?")  # not opted in
        await wait_until_async(lambda: app.bus.backlog(), 0, "the worker to catch up")
        tg.channel_post(world.channel, "/digest")
        digest = (await wait_for_messages(tg, world.channel, 2, what="the channel's digest"))[1]
    assert digest.text and "Chorus 1.0 is out" in digest.text and "celebrate" not in digest.text


async def test_stop_does_not_wait_forever_for_a_poller_that_ignores_cancellation(
    services: Services, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bots.telegram.adapter as module

    monkeypatch.setattr(module, "STOP_GRACE_S", 0.3)
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # e.g. stuck in an HTTP client that swallowed the cancellation

    async with adapter(services, world.tg, Recorder()) as platform:
        real = platform._poller
        assert real is not None
        real.cancel()
        stuck = platform._poller = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        started = time.monotonic()
    assert time.monotonic() - started < 5 and not stuck.done()  # stop() returned; the task was left
    release.set()
    await stuck
