from __future__ import annotations

from core.contract import Author, EventKind, Post, Receipt, ReplyContext, SendImage
from core.feed.ingest import event_item_id
from core.feed.service import FeedService
from core.feed.timelines import Scope
from core.services import Services
from tests.support import CATALOG, event

TEXT = "The community call moved to Thursday at 18:00 UTC so more people in the Americas can join."


async def _seen(feed: FeedService) -> list[str]:
    return [i.text for s in (await feed.timelines.page(Scope(), "new", 50)).stories for i in s.items]


async def test_only_opted_in_channels_are_ingested(services: Services) -> None:
    feed = FeedService(services)
    message = event(EventKind.MESSAGE, TEXT)
    await feed.observe(message, services)
    assert await _seen(feed) == []
    assert await feed.add_channel(message.community_key, message.channel)
    await feed.observe(message, services)
    await feed.observe(event(EventKind.MESSAGE, "private " + TEXT, private=True), services)
    await feed.observe(event(EventKind.MESSAGE, "bot " + TEXT, author=Author(id="b", is_bot=True)), services)
    await feed.observe(event(EventKind.MESSAGE, "elsewhere " + TEXT, channel="random"), services)
    await feed.observe(event(EventKind.MESSAGE, "other community " + TEXT, community="c2"), services)
    assert await _seen(feed) == [TEXT]
    assert await feed.channels(message.community_key) == ["general"]
    assert await feed.channels("test:c2") == []  # one community's configuration is not another's


async def test_replies_reactions_edits_and_deletions(services: Services) -> None:
    feed = FeedService(services)
    parent = event(EventKind.MESSAGE, TEXT, message_id="m1")
    await feed.add_channel(parent.community_key, parent.channel)
    await feed.observe(parent, services)
    reply = event(
        EventKind.MESSAGE,
        "Great, that works much better for me!",
        message_id="m2",
        reply_to=ReplyContext(message_id="m1"),
    )
    await feed.observe(reply, services)
    await feed.observe(reply, services)  # a redelivered event does not count twice
    await feed.observe(event(EventKind.REACTION, "", message_id="m1", reaction="🎉"), services)
    await feed.observe(event(EventKind.REACTION, "", message_id="m1", reaction="👍"), services)
    await feed.observe(
        event(EventKind.REACTION, "", message_id="m1", reaction="👍", reaction_delta=-1), services
    )
    stored = await feed.store.get(event_item_id(parent))
    assert stored is not None and stored.replies == 1 and stored.reactions == 1
    await feed.observe(event(EventKind.EDITED, TEXT.replace("Thursday", "Friday"), message_id="m1"), services)
    stored = await feed.store.get(event_item_id(parent))
    assert stored is not None and "Friday" in stored.text
    await feed.observe(event(EventKind.DELETED, "", message_id="m1"), services)
    assert await feed.store.get(event_item_id(parent)) is None
    assert await _seen(feed) == ["Great, that works much better for me!"]


async def test_published_drafts_join_the_feed_with_their_remix_prompt(services: Services) -> None:
    feed = FeedService(services)
    asked: list[tuple[str, str]] = []

    async def remix_prompt(community_key: str, draft_id: str) -> str:
        asked.append((community_key, draft_id))
        return "write a launch post for v2.0"

    services.draft_requests.provide(remix_prompt)
    post = Post(platform="x", community="acct", channel="timeline", text=TEXT, ref="draft:abc123")
    await feed.on_delivered(post, Receipt(message_ids=("1800000000000000009",)))
    await feed.on_delivered(post.model_copy(update={"ref": "digest:s1:1"}), Receipt(message_ids=("9",)))
    image = SendImage(platform="x", community="acct", channel="timeline", blob="b", ref="draft:abc123:image")
    await feed.on_delivered(image, Receipt(message_ids=("10",)))
    [story] = (await feed.timelines.page(Scope(), "new")).stories
    [bot_item] = story.items
    assert (
        bot_item.is_bot
        and bot_item.remix == "write a launch post for v2.0"
        and bot_item.author_name == "Chorus"
    )
    assert bot_item.link(CATALOG) == "https://x.com/i/web/status/1800000000000000009"
    assert asked == [("x:acct", "abc123")]


async def test_remix_prompt_from_the_assistants_draft_store(services: Services) -> None:
    from core.assistant import drafts
    feed = FeedService(services)
    draft = drafts.Draft(
        community_key="telegram:-100",
        platform="telegram",
        channel="7",
        author_id="u",
        request="a post about the meetup",
        parts=[TEXT],
    )
    await drafts.DraftStore(services.redis).save(draft)
    post = Post(platform="telegram", community="-100", channel="7", text=draft.text, ref=draft.ref)
    await feed.on_delivered(post, Receipt(message_ids=("77",)))
    [story] = (await feed.timelines.page(Scope(), "new")).stories
    assert story.items[0].remix == "a post about the meetup"
