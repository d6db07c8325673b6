from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from core.feed import keys as fk
from core.feed.ingest import FeedStore
from core.feed.items import FeedItem
from core.feed.timelines import Scope, Timelines
from tests.core.feed.helpers import item
from tests.support import CATALOG

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

LAUNCH = "Chorus v2.0 is live! Faster digests, smarter summaries and a brand-new console. Try it today."
LAUNCH_TG = (
    "🚀 Chorus v2.0 is live: faster digests, smarter summaries and a brand-new console! https://chorus.dev/v2"
)
MEETUP = "The Berlin meetup is sold out, thanks to everyone who registered and see you on Friday evening."


async def test_same_story_in_three_communities_on_two_platforms_is_one_story(redis: aioredis.Redis) -> None:
    """3 communities x 2 platforms of items; the launch appears twice (X and Telegram) and is one story."""
    store, timelines = FeedStore(redis), Timelines(redis)
    now = time.time()
    chatter = [
        "Does anyone know a good tutorial for writing Discord bots in Python with slash commands?",
        "Our weekly design review moved to Thursday afternoon because of the public holiday on Monday.",
        "I finally fixed the flaky test, it was a race between the worker and the scheduler tick.",
        "Photos from the Lisbon pizza night are in the shared album, thanks for coming everyone!",
    ]
    items = []
    for c in range(3):
        for p, platform in enumerate(("telegram", "x")):
            for k in range(3):
                text = chatter[(c + p + k) % len(chatter)] + f" (community {c}, note {k})"
                items.append(item(text, platform=platform, community=f"comm{c}", created_at=now - 3600 + k))
    launch_x = item(LAUNCH, platform="x", community="comm0", created_at=now - 600)
    launch_tg = item(LAUNCH_TG, platform="telegram", community="comm2", created_at=now - 300)
    result = await store.ingest([*items, launch_x])
    result2 = await store.ingest([launch_tg])
    assert result2.joined == 1 and result2.stories[launch_tg.id] == launch_x.id
    page = await timelines.page(Scope(), "new", 100)
    launch_stories = [s for s in page.stories if any("v2.0" in i.text for i in s.items)]
    assert len(launch_stories) == 1
    assert {i.platform for i in launch_stories[0].items} == {"x", "telegram"}
    # the 18 chatter items stay apart (near-identical chatter differs in its numbers)
    assert len(page.stories) == 19 and result.new == 19
    # the story is in both communities' and both platforms' timelines, once each
    for scope in (
        Scope("community", "x:comm0"),
        Scope("community", "telegram:comm2"),
        Scope("platform", "x"),
    ):
        ids = [s.id for s in (await timelines.page(scope, "new", 100)).stories]
        assert ids.count(launch_x.id) == 1
    assert launch_x.id not in [
        s.id for s in (await timelines.page(Scope("community", "x:comm1"), "new")).stories
    ]


async def test_ingest_is_idempotent_and_updates(redis: aioredis.Redis) -> None:
    store = FeedStore(redis)
    first = item(MEETUP, platform="x", reactions=3)
    assert (await store.ingest([first])).new == 1
    again = item(MEETUP, platform="x", message_id=first.message_id, reactions=10)
    assert (await store.ingest([again])).updated == 1
    stored = await store.get(first.id)
    assert stored is not None and stored.reactions == 3  # event ingest never resets counts
    assert (await store.ingest([again], absolute=True)).updated == 1
    stored = await store.get(first.id)
    assert stored is not None and stored.reactions == 10  # polled sources bring absolute counts
    assert stored.text == MEETUP and stored.author_name == "Ada" and stored.platform == "x"


async def test_edit_and_delete_at_the_source(redis: aioredis.Redis) -> None:
    store, timelines = FeedStore(redis), Timelines(redis)
    a = item(LAUNCH, platform="x", created_at=time.time() - 100)
    b = item(LAUNCH_TG, platform="telegram")
    await store.ingest([a])
    await store.ingest([b])
    gen = [await redis.get(fk.gen(p)) for p in range(fk.PARTITIONS)]
    assert await store.edit(b.id, LAUNCH_TG + " (edited: now with release notes)")
    assert [await redis.get(fk.gen(p)) for p in range(fk.PARTITIONS)] != gen  # unsent digests are rebuilt
    edited = await store.get(b.id)
    assert edited is not None and edited.text.endswith("(edited: now with release notes)")
    assert not await store.edit("missing", "x")
    assert await store.delete(a.id) == 1
    [story] = (await timelines.page(Scope(), "new")).stories
    assert story.id == a.id and [i.id for i in story.items] == [
        b.id
    ]  # the story lives on with its other source
    assert (await timelines.page(Scope("platform", "x"), "new")).stories == []
    assert await store.delete(b.id) == 1
    assert (await timelines.page(Scope(), "hot")).stories == []
    assert await store.delete(b.id) == 0


async def test_optout_drops_and_purges(redis: aioredis.Redis) -> None:
    store, timelines = FeedStore(redis), Timelines(redis)
    mine = [item(f"{MEETUP} Reminder number {n}.", author_id="me", platform="discord") for n in range(3)]
    theirs = item(
        "Welcome to the new members who joined this week, say hi in the intro channel!", author_id="you"
    )
    await store.ingest([*mine, theirs])
    assert await store.optout("discord", "me") == 3
    page = await timelines.page(Scope(), "new")
    assert [s.id for s in page.stories] == [theirs.id]
    late = item(
        "Another message from me after opting out, it should never show up.",
        author_id="me",
        platform="discord",
    )
    assert (await store.ingest([late])).dropped == 1
    assert await store.get(late.id) is None
    assert await store.opted_out("discord", "me")
    assert await store.optin("discord", "me")
    assert (await store.ingest([late])).new == 1


async def test_many_items_in_chunks(redis: aioredis.Redis) -> None:
    store = FeedStore(redis)
    items = [
        item(f"Update number {n} about topic {n % 7}: the build {n} passed all checks.") for n in range(1000)
    ]
    result = await store.ingest(items)
    assert result.new + result.joined == 1000
    stored = [await redis.zcard(fk.timeline(p, "new", "p", "telegram")) for p in range(fk.PARTITIONS)]
    assert sum(stored) == result.new


def test_items_round_trip_through_their_stored_form() -> None:
    from core.feed.items import decode

    original = FeedItem(
        platform="telegram",
        community="-100123",
        channel="7",
        message_id="42",
        author_id="99",
        author_name="Zoë",
        text="Hello\nworld — ünïcode ✓",
        created_at=1700000000.5,
        media=(("image", "https://img"),),
        remix="write about the launch",
        is_bot=True,
    )
    head = "\x1f".join(["1700000000.500", "telegram:-100123", "7", "", "1", "2", "3", "4", "1.5", ""])
    back = decode(original.id, head + "\x1e" + original.body())
    assert back.text == original.text and back.media == original.media and back.remix == original.remix
    assert back.is_bot and back.reactions == 1 and back.views == 4 and back.norm == 1.5
    assert back.story == original.id and back.link(CATALOG) == "https://t.me/c/123/42"


async def test_near_duplicates_are_looked_for_within_the_dedupe_window(redis: aioredis.Redis) -> None:
    store = FeedStore(redis)  # window 24 h: stories from the last 24-48 hours are compared
    now = time.time()
    old = item(LAUNCH, platform="x", created_at=now - 5 * 86400)
    late_copy = item(LAUNCH_TG, platform="telegram", created_at=now - 5 * 86400 + 60)
    await store.ingest([old])
    result = await store.ingest([late_copy])
    assert result.new == 1  # a backfill from five days ago is past every live LSH partition
    recent = item(LAUNCH, platform="x", community="acct2", created_at=now - 20 * 3600)
    copy = item(LAUNCH_TG, platform="telegram", community="-1002", created_at=now - 60)
    await store.ingest([recent])
    assert (await store.ingest([copy])).stories[copy.id] == recent.id


async def test_a_duplicate_within_one_batch_is_grouped(redis: aioredis.Redis) -> None:
    store = FeedStore(redis)
    a, b = item(LAUNCH, platform="x"), item(LAUNCH_TG, platform="discord", community="42")
    result = await store.ingest([a, b])
    assert result.new == 1 and result.joined == 1 and result.stories[b.id] == a.id
    lead = await store.get(a.id)
    assert lead is not None and lead.story == a.id


def _other_partition(community_key: str) -> str:
    """A telegram community whose feed partition differs from ``community_key``'s."""
    home = fk.community_part(community_key)
    return next(c for n in range(100) if fk.community_part(f"telegram:{(c := f'-100{n}')}") != home)


async def test_a_story_joined_from_another_partition_is_found_by_its_items_ids(redis: aioredis.Redis) -> None:
    """The lead's partition is the story's home; the copy from a community in another partition is stored
    there, leaves a stub under its own id, and its community's pages, edits, reactions and deletion follow."""
    store, timelines = FeedStore(redis), Timelines(redis)
    lead = item(LAUNCH, platform="x", community="acct", created_at=time.time() - 60)
    other = _other_partition(lead.community_key)
    copy = item(LAUNCH_TG, platform="telegram", community=other)
    assert fk.part_of(copy.id) != fk.part_of(lead.id)
    await store.ingest([lead])
    result = await store.ingest([copy])
    assert result.joined == 1 and result.stories[copy.id] == lead.id
    assert (await redis.get(fk.item(copy.id))) == (fk.STUB + lead.id).encode()  # a stub where its id leads
    assert await redis.exists(fk.item_in(fk.part_of(lead.id), copy.id))  # the item, with its story
    [story] = (await timelines.page(Scope("community", copy.community_key), "new")).stories
    assert story.id == lead.id and {i.id for i in story.items} == {lead.id, copy.id}
    assert await store.engage(copy.id, reactions=3)
    assert await store.edit(copy.id, LAUNCH_TG + " (edited)")
    stored = await store.get(copy.id)
    assert stored is not None and stored.reactions == 3 and stored.text.endswith("(edited)")
    again = await store.ingest([copy])  # delivered twice: the same item, not a second copy
    assert again.updated == 1 and again.new == again.joined == 0
    assert await store.delete(copy.id) == 1
    assert await store.get(copy.id) is None
    [story] = (await timelines.page(Scope(), "new")).stories
    assert [i.id for i in story.items] == [lead.id]
    assert (await timelines.page(Scope("community", copy.community_key), "new")).stories == []


async def test_global_pages_merge_every_partition_in_one_order_through_cursors(redis: aioredis.Redis) -> None:
    """Stories of 40 communities (every partition) paged 7 at a time: each once, in (score, id) order, with
    equal scores across partitions split by id."""
    store, timelines = FeedStore(redis), Timelines(redis)
    now = float(int(time.time()))
    items = [
        item(
            f"Note {n} from community {n % 40} about nothing much",
            community=f"-77{n % 40}",
            created_at=now - n // 3,
        )
        for n in range(120)
    ]
    await store.ingest(items)
    assert len({fk.part_of(i.id) for i in items}) == fk.PARTITIONS
    expected = sorted(((i.created_at, i.id) for i in items), reverse=True)
    seen: list[tuple[float, str]] = []
    cursor = None
    while True:
        page = await timelines.page(Scope(), "new", 7, cursor)
        seen += [(s.updated_at, s.id) for s in page.stories]
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == expected
