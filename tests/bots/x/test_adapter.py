"""The X adapter end to end: real tweepy over real sockets to the loopback fake X API, real Redis, and the
core's Worker, Router, Sender and assistant (its model served by the loopback fake OpenAI API)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from bots.x.adapter import XPlatform
from core.app import Run, choose_platforms
from core.contract import Author, Event, EventKind
from core.errors import ConfigError
from core.feed.ingest import FeedStore
from core.feed.sources import Poller
from core.sender import Sender
from core.services import Services
from core.settings import Settings
from core.text import x_weighted_length
from tests.bots.contract import Harness, PlatformContract
from tests.bots.x.xkit import running_bot, x_settings
from tests.fakes.openai_api import FakeOpenAI, chat
from tests.fakes.x_api import FakeX
from tests.support import RecordingPlatform, build_services

LAUNCH = (
    "Our launch is today! We built Chorus so every community gets posts people love to share. "
    "Try it now and tell us what you think."
)
THREAD = " ".join(
    f"Point {i}: the launch brings feature number {i} that saves everyone a little time every day."
    for i in range(1, 8)
)


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX(me_id="100", me_username="chorus_bot") as fake:
        fake.add_user("200", "alice", name="Alice")
        fake.add_user("300", "bob", name="Bob")
        fake.add_user("400", "owner", name="Owner")
        yield fake


class TestXContract(PlatformContract):
    @pytest.fixture
    async def harness(self, services: Services, x: FakeX) -> AsyncIterator[Harness]:
        platform = XPlatform(x_settings(x), services)

        async def seen() -> list[str]:
            return [t.text for t in x.created_tweets if not t.deleted]

        try:
            yield Harness(platform, seen, {"platform": "x", "community": "100", "channel": "timeline"})
        finally:
            await platform.stop()


# ---- the assistant behind the X bot ----------------------------------------------------------------


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def bot_services(
    openai: FakeOpenAI, settings: Settings, redis: aioredis.Redis
) -> AsyncIterator[Services]:
    configured = settings.model_copy(
        update={
            "openai_api_key": SecretStr(openai.api_key or ""),
            "openai_base_url": openai.base_url,
            "image_provider": "card",
            "moderation_provider": "local",
            "model_timeout_s": 5.0,
            "share_targets": {"console:local": ["x:100/timeline"]},
        }
    )
    svc = await build_services(configured, redis)
    yield svc
    await svc.aclose()


async def test_a_mention_gets_a_reply_with_an_image_and_alt_text(
    x: FakeX, openai: FakeOpenAI, bot_services: Services
) -> None:
    openai.script("chat", chat(LAUNCH))
    mention = x.mention("200", "write a post about our launch")
    async with running_bot(bot_services, x, x_settings(x)) as bot:
        thread = await bot.until(
            lambda: len(bot.thread_under(mention.id)) >= 3 and bot.thread_under(mention.id)
        )
    text, image, choices = thread[:3]
    assert text.text.startswith("Our launch is today!") and not text.media
    [media] = image.media
    assert media.data.startswith(b"\x89PNG") and media.alt_text and image.text
    assert "1. Post here" in choices.text and "choose" in choices.text
    assert x.tweet(text.id).in_reply_to_user_id == "200"


async def test_a_thread_request_posts_a_chained_thread_and_choosing_post_publishes_it(
    x: FakeX, openai: FakeOpenAI, bot_services: Services
) -> None:
    openai.script("chat", chat(THREAD))
    mention = x.mention("200", "thread about our launch")
    async with running_bot(bot_services, x, x_settings(x)) as bot:
        draft = await bot.until(
            lambda: (t := bot.thread_under(mention.id)) and "choose" in t[-1].text and t, what="the draft"
        )
        parts = [t for t in draft if t.text.split(" ", 1)[0].count("/") == 1 and not t.media]
        assert len(parts) >= 2 and parts[0].text.startswith("1/")
        assert all(x.tweet(p.id).conversation_id == mention.id for p in parts)
        # "@chorus_bot choose 1" (Post here) in reply to the choices: the thread is published, chained
        choose = x.mention("200", "choose 1", in_reply_to=draft[-1].id)
        published = await bot.until(
            lambda: len(bot.thread_under(choose.id)) >= len(parts) + 1 and bot.thread_under(choose.id),
            what="the published thread",
        )
    posted = published[: len(parts)]
    assert [p.text for p in posted] == [p.text for p in parts]
    assert posted[0].reply_to == choose.id
    assert all(b.reply_to == a.id for a, b in itertools.pairwise(posted))
    assert published[len(parts)].media  # the draft's image follows the thread
    # X refuses the same text twice: the draft's preview tweets made way for the published ones
    assert all(p.deleted for p in parts) and not any(p.deleted for p in published)


async def test_approval_holds_a_timeline_post_until_approved_from_another_platform(
    x: FakeX, openai: FakeOpenAI, bot_services: Services
) -> None:
    openai.script("chat", chat(LAUNCH))
    console = RecordingPlatform("console")
    console_sender = Sender(bot_services.bus, console)

    def said(text: str) -> Event:
        return Event(
            kind=EventKind.MENTION,
            platform="console",
            community="local",
            channel="console",
            message_id=f"c-{time.monotonic_ns()}",
            author=Author(
                id="mod" if text.startswith("approve") else "member", is_moderator=text.startswith("approve")
            ),
            text=text,
        )

    async with running_bot(bot_services, x, x_settings(x)) as bot:
        drain = asyncio.create_task(console_sender.run(bot.stop))
        await bot_services.bus.publish(said("post about our launch"))
        draft = await bot.until(lambda: [a for a in console.sent if "Draft " in getattr(a, "text", "")])
        draft_id = draft[0].text.split("Draft ", 1)[1].split(" ", 1)[0]
        await bot_services.bus.publish(said(f"share {draft_id} x"))
        await bot.until(lambda: any("approval" in getattr(a, "text", "") for a in console.sent))
        await asyncio.sleep(1.0)
        assert x.created_tweets == []  # held: nothing reached X
        await bot_services.bus.publish(said(f"approve {draft_id}"))
        posted = await bot.until(lambda: len(x.created_tweets) >= 2 and x.created_tweets)
        await bot.until(lambda: any("on its way" in getattr(a, "text", "") for a in console.sent))
    await drain
    post, image = posted[:2]
    assert post.reply_to is None and post.text.startswith("Our launch is today!")  # on the timeline
    assert image.reply_to == post.id and image.media[0].alt_text
    assert any("on its way to x:100/timeline" in getattr(a, "text", "") for a in console.sent)


async def test_restart_between_polls_neither_misses_nor_repeats_a_mention(
    x: FakeX, services: Services
) -> None:
    first = x.mention("200", "choose 7")
    async with running_bot(services, x, x_settings(x)) as bot:
        await bot.until(lambda: bot.replies_to(first.id), what="the first answer")
    second = x.mention("300", "choose 8")  # arrives while the bot is down
    async with running_bot(services, x, x_settings(x)) as bot:
        await bot.until(lambda: bot.replies_to(second.id), what="the second answer")
        await asyncio.sleep(0.5)  # several more polls
    assert len(bot.replies_to(first.id)) == 1 and len(bot.replies_to(second.id)) == 1
    polls = x.requests_to("GET /2/users/:id/mentions")
    assert polls[0].query.get("start_time") and "since_id" not in polls[0].query
    assert all(p.query.get("since_id") for p in polls[1:])
    assert len(x.requests_to("GET /2/users/me")) == 1  # the account is cached across restarts


async def test_wrong_credentials_stop_the_start_with_a_clear_message(x: FakeX, services: Services) -> None:
    platform = XPlatform(x_settings(x, X_ACCESS_TOKEN_SECRET="not-the-secret"), services)
    try:
        with pytest.raises(ConfigError, match="rejected the credentials") as exc:
            await platform.start(services.bus.publish)
    finally:
        await platform.stop()
    assert "not-the-secret" not in str(exc.value) and x.created_tweets == []


async def test_a_429_on_mentions_waits_until_the_reset(x: FakeX, services: Services) -> None:
    x.fail_next("GET /2/users/:id/mentions", status=429, reset_in=1.5)
    mention = x.mention("200", "choose 3")
    started = time.time()
    async with running_bot(services, x, x_settings(x)) as bot:
        await bot.until(lambda: bot.replies_to(mention.id), what="the answer after the reset")
        answered = time.time()
    polls = x.requests_to("GET /2/users/:id/mentions")
    assert [p.status for p in polls[:2]] == [429, 200]
    assert answered - started >= 1.5  # x-rate-limit-reset was ceil(now + 1.5): nothing was polled before
    # polling every 0.05 s, the bot would have polled ~30 times in that time had it not waited
    assert len(polls) <= 2 + (time.time() - answered) / 0.05 + 2


async def test_a_429_on_posting_waits_and_posts_once(x: FakeX, services: Services) -> None:
    x.fail_next("POST /2/tweets", status=429, reset_in=1.0)
    mention = x.mention("200", "choose 3")
    started = time.time()
    async with running_bot(services, x, x_settings(x)) as bot:
        await bot.until(lambda: bot.replies_to(mention.id), what="the answer after the reset")
    assert time.time() - started >= 1.0
    assert [r.status for r in x.requests_to("POST /2/tweets")] == [429, 201]


async def test_the_per_author_cap_and_the_bot_list_hold(x: FakeX, services: Services) -> None:
    x.add_user("500", "other_bot")
    mentions = [x.mention("200", f"choose {i}") for i in range(4, 8)]
    from_bot = x.mention("500", "choose 9")
    settings = x_settings(x, X_REPLIES_PER_AUTHOR_PER_DAY=2, X_BOT_ACCOUNTS="@Other_Bot")
    async with running_bot(services, x, settings) as bot:
        await bot.until(lambda: sum(bool(bot.replies_to(m.id)) for m in mentions) == 2)
        await asyncio.sleep(0.6)
    assert [bool(bot.replies_to(m.id)) for m in mentions] == [True, True, False, False]
    assert not bot.replies_to(from_bot.id)
    assert bot.platform.mentions is not None
    assert bot.platform.mentions.refused == {"author_cap": 2, "bot_account": 1}


async def test_the_loop_guard_stops_a_bot_to_bot_conversation(x: FakeX, services: Services) -> None:
    x.add_user("600", "chatty_bot")
    settings = x_settings(x, X_MAX_CONVERSATION_DEPTH=3)
    last = x.mention("600", "choose 1")
    conversation = last.id
    answered = 0
    async with running_bot(services, x, settings) as bot:
        for turn in range(6):  # the other bot answers every answer, forever
            try:
                reply = await bot.until(lambda at=last.id: bot.replies_to(at), timeout=2.0)
            except AssertionError:
                break
            answered += 1
            last = x.mention("600", f"choose {turn + 2}", in_reply_to=reply[-1].id)
    assert answered == 3
    assert all(x.tweet(t.id).conversation_id == conversation for t in x.created_tweets)
    assert bot.platform.mentions is not None and bot.platform.mentions.refused == {"conversation_depth": 1}


async def test_people_talking_in_a_thread_the_bot_was_in_are_not_answered(
    x: FakeX, services: Services
) -> None:
    asked = x.mention("300", "choose 4")
    async with running_bot(services, x, x_settings(x)) as bot:
        [answer] = await bot.until(lambda: bot.replies_to(asked.id))
        bob = x.post_as("300", "choose 6", in_reply_to=answer.id)  # a reply to the bot: answered
        alice = x.post_as("200", "Bob, I agree", in_reply_to=bob.id)  # "@bob @chorus_bot" only as prefix
        typed = x.mention("200", "choose 5", in_reply_to=bob.id)  # the handle typed: answered
        await bot.until(lambda: bot.replies_to(bob.id) and bot.replies_to(typed.id))
        await asyncio.sleep(0.3)
    assert alice.text.startswith("@bob @chorus_bot ") and not bot.replies_to(alice.id)
    assert bot.platform.mentions is not None and bot.platform.mentions.refused == {"not_addressed": 1}


async def test_moderators_are_the_owner_accounts(x: FakeX, services: Services) -> None:
    """``/prompt set`` from X: refused for a member, applied for an owner account."""
    member = x.mention("200", "prompt set persona You are a pirate.")
    owner = x.mention("400", "prompt set persona You are upbeat and brief.")
    async with running_bot(services, x, x_settings(x, X_OWNER_ACCOUNTS="@owner")) as bot:
        await bot.until(lambda: bot.replies_to(owner.id) and bot.replies_to(member.id))
    assert "Only moderators" in bot.replies_to(member.id)[0].text
    assert bot.replies_to(owner.id)[0].text.startswith("The persona prompt is now v1")
    effective = await services.prompts.effective_all("x:100", "x")
    assert "upbeat and brief" in effective["persona"] and "pirate" not in effective["persona"]


async def test_chorus_run_platform_x_starts_the_adapter_with_a_worker_and_a_sender(
    x: FakeX, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="X_API_KEY"):
        choose_platforms(["x"])
    c = x.credentials
    env = {
        "X_API_KEY": c["consumer_key"],
        "X_API_SECRET": c["consumer_secret"],
        "X_ACCESS_TOKEN": c["access_token"],
        "X_ACCESS_TOKEN_SECRET": c["access_token_secret"],
        "X_BEARER_TOKEN": c["bearer_token"],
        "X_API_BASE_URL": x.base_url,
        "X_POLL_INTERVAL_S": "0.05",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert choose_platforms(["x"]) == ["x"]
    mention = x.mention("200", "choose 2")
    run = Run(services.settings, platforms=["x"], background=False)
    task = asyncio.create_task(run.serve(services))
    try:
        for _ in range(500):
            if any(t.reply_to == mention.id for t in x.created_tweets):
                break
            await asyncio.sleep(0.02)
    finally:
        run.stop.set()
        await task
    [answer] = [t for t in x.created_tweets if t.reply_to == mention.id]
    assert "no such choice" in answer.text and services.platforms.capabilities("x").weighted_length


async def test_subscribe_and_digest_of_the_x_feed_arrive_as_replies(
    x: FakeX, openai: FakeOpenAI, bot_services: Services
) -> None:
    """Posts of a configured account reach the feed; ``@bot digest`` answers with them in the conversation."""
    news = x.post_as("300", "Chorus 1.0 is out today with digests for every community", like_count=30)
    settings = x_settings(x, X_FEED_ACCOUNTS="bob", X_FEED_POLL_INTERVAL_S=0.001)
    async with running_bot(bot_services, x, settings) as bot:
        assert await Poller(bot_services, FeedStore(bot_services.redis), 1).poll_all() == 1
        subscribe = x.mention("200", "subscribe daily 08:00 UTC")
        await bot.until(lambda: bot.replies_to(subscribe.id), what="the subscription answer")
        digest = x.mention("200", "digest")
        replies = await bot.until(lambda: bot.thread_under(digest.id), what="the digest")
        await asyncio.sleep(0.5)
        replies = bot.thread_under(digest.id)
    assert "daily" in bot.replies_to(subscribe.id)[0].text.lower()
    text = "\n".join(t.text for t in replies)
    assert news.id in text or "Chorus 1.0" in text
    assert all(x_weighted_length(t.text) <= 280 for t in replies)
