"""Actions as tweets, through the adapter's ``deliver`` against the fake X API (as the Sender calls it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bots.x.adapter import XPlatform
from bots.x.api import Me
from bots.x.deliver import image_mime, inert_handles
from bots.x.mentions import chain_key, conversation_key
from core.contract import Action, DirectMessage, Post, Receipt, Reply, SendImage
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable
from core.services import Services
from core.text import x_weighted_length
from tests.bots.x.xkit import PNG, x_settings
from tests.fakes.x_api import FakeX

ME = Me(id="100", username="chorus_bot")
HERE = {"platform": "x", "community": "100"}


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX(me_id="100", me_username="chorus_bot") as fake:
        fake.add_user("200", "alice")
        yield fake


@pytest.fixture
async def platform(x: FakeX, services: Services) -> AsyncIterator[XPlatform]:
    p = XPlatform(x_settings(x, X_REPLY_SETTINGS="mentionedUsers"), services)
    yield p
    await p.stop()


async def send(platform: XPlatform, action: Action) -> Receipt:
    async def blob(_: str) -> bytes:
        return PNG

    return await platform.deliver(action, blob)


def test_handles_are_made_inert_and_images_are_recognised() -> None:
    assert inert_handles("thanks @alice and @Bob_2!") == "thanks @\u2060alice and @\u2060Bob_2!"
    assert inert_handles("mail a@b.example, @ alone") == "mail a@b.example, @ alone"
    assert image_mime(PNG) == "image/png" and image_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    with pytest.raises(DeliveryRejected):
        image_mime(b"%PDF-1.7")


async def test_answers_chain_under_the_mention_and_ping_nobody(
    x: FakeX, platform: XPlatform, services: Services
) -> None:
    mention = x.mention("200", "hi")
    await services.redis.set(chain_key(ME, "ev1", mention.conversation_id), mention.id)
    base = {**HERE, "channel": mention.conversation_id, "event_id": "ev1"}
    first = await send(platform, Reply(**base, text="Thanks @alice! @everyone look", reply_to=mention.id))
    second = await send(platform, SendImage(**base, blob="b", alt_text="A card", caption="Text card"))
    [a, b] = x.created_tweets
    assert first.message_ids == (a.id,) and second.message_ids == (b.id,)
    assert a.reply_to == mention.id and b.reply_to == a.id  # one thread under the mention
    assert x.tweet(a.id).mentions == []  # X sees no handle to link or notify
    assert "@\u2060alice" in a.text and "@\u2060everyone" in a.text
    assert b.alt_texts == ["A card"] and b.text == "Text card" and b.reply_settings is None


async def test_answers_without_an_event_go_to_the_latest_mention_of_the_conversation(
    x: FakeX, platform: XPlatform, services: Services
) -> None:
    root = x.mention("200", "subscribe daily")
    later = x.mention("200", "and weekly?", in_reply_to=root.id)
    await services.redis.set(conversation_key(ME, root.conversation_id), later.id)
    await send(platform, Post(**HERE, channel=root.conversation_id, text="Your digest"))
    unknown = x.post_as("200", "no mention of the bot here")
    await send(platform, Post(**HERE, channel=unknown.id, text="Another digest"))
    assert [t.reply_to for t in x.created_tweets] == [later.id, unknown.id]


async def test_a_timeline_thread_stands_alone_and_resumes_after_a_failure(
    x: FakeX, platform: XPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = tuple(f"{i}/3 part number {i} of the thread" for i in range(1, 4))
    post = Post(**HERE, channel="timeline", event_id="ev9", text="\n\n".join(parts), parts=parts)
    real = platform.api.create_tweet
    calls: list[str] = []

    async def flaky(text: str, **kw: Any) -> str:
        calls.append(text)
        if len(calls) == 2:  # X is down for the second tweet
            raise PlatformUnavailable("X answered 503")
        return await real(text, **kw)

    monkeypatch.setattr(platform.api, "create_tweet", flaky)
    with pytest.raises(PlatformUnavailable):
        await send(platform, post)
    receipt = await send(platform, post)  # the Sender's retry
    tweets = list(x.created_tweets)
    assert [t.text for t in tweets] == list(parts)  # part 1 was not posted twice
    assert receipt.message_ids == tuple(t.id for t in tweets)
    assert tweets[0].reply_to is None and tweets[0].reply_settings == "mentionedUsers"
    assert [t.reply_to for t in tweets[1:]] == [tweets[0].id, tweets[1].id]
    image = await send(platform, SendImage(**HERE, channel="timeline", event_id="ev9", blob="b", caption="c"))
    assert x.created_tweets[-1].reply_to == tweets[-1].id and image.message_ids  # under the post


async def test_text_stays_within_the_weighted_length(x: FakeX, platform: XPlatform) -> None:
    text = "日本語のテキスト。" * 40  # CJK weighs 2: ~720 weighted characters
    receipt = await send(platform, Reply(**HERE, channel="timeline", text=text))
    assert len(receipt.message_ids) == 3
    assert all(x_weighted_length(t.text) <= 280 for t in x.created_tweets)
    assert "".join(t.text for t in x.created_tweets) == text


async def test_the_same_answer_twice_gets_past_the_duplicate_rule(x: FakeX, platform: XPlatform) -> None:
    one, two = x.mention("200", "choose 9"), x.mention("200", "choose 8")
    text = "There is no such choice here any more. Please ask again."
    await send(platform, Reply(**HERE, channel=one.id, reply_to=one.id, text=text, id="aaaaaaaa11"))
    await send(platform, Reply(**HERE, channel=two.id, reply_to=two.id, text=text, id="bbbbbbbb22"))
    assert [t.text for t in x.created_tweets] == [text, f"{text} (ref bbbbbbbb)"]
    with pytest.raises(DeliveryRejected, match="duplicate"):  # a post is never altered
        await send(platform, Post(**HERE, channel="timeline", text=text))


async def test_publishing_a_draft_replaces_its_preview(x: FakeX, platform: XPlatform) -> None:
    mention = x.mention("200", "post about cats")
    text = "Cats are great. #cats"
    await send(platform, Reply(**HERE, channel=mention.id, reply_to=mention.id, text=text, ref="draft:d1"))
    [preview] = x.created_tweets
    await send(platform, Post(**HERE, channel="timeline", text=text, ref="draft:d1"))
    assert x.tweet(preview.id).deleted and x.created_tweets[-1].text == text
    assert x.created_tweets[-1].reply_to is None


async def test_no_direct_messages_and_a_spent_budget_waits(x: FakeX, services: Services) -> None:
    platform = XPlatform(x_settings(x, X_POSTS_PER_DAY=1), services)
    try:
        with pytest.raises(DeliveryRejected, match="direct messages"):
            await send(platform, DirectMessage(**HERE, channel="dm", user="200", text="psst"))
        await send(platform, Post(**HERE, channel="timeline", text="the only post today"))
        with pytest.raises(PlatformRateLimited) as exc:
            await send(platform, Post(**HERE, channel="timeline", text="one too many"))
        assert exc.value.retry_after > 86000 and len(x.created_tweets) == 1
        assert await send(platform, Reply(**HERE, channel="timeline", text="   ")) == Receipt()
    finally:
        await platform.stop()
