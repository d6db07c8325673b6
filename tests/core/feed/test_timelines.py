from __future__ import annotations

import random
import time

import pytest
import redis.asyncio as aioredis

from core.errors import InvalidInput
from core.feed import keys as fk
from core.feed.ingest import FeedStore
from core.feed.timelines import Scope, Timelines
from tests.core.feed.helpers import item
from tests.support import CATALOG

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

_NATO = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa"
WORDS = _NATO.split()


def _text(rng: random.Random, n: int) -> str:
    return f"Note {n}: " + " ".join(rng.choice(WORDS) for _ in range(12)) + f" ({n})"


async def _fill(redis: aioredis.Redis, count: int = 150) -> tuple[FeedStore, Timelines, list[str]]:
    store = FeedStore(redis)
    rng = random.Random(3)
    now = time.time()
    items = []
    for n in range(count):
        platform = ("x", "telegram", "discord")[n % 3]
        community = f"{platform}-c{n % 2}"
        same_second = now - (n // 5)  # ties: five items share each timestamp
        items.append(item(_text(rng, n), platform=platform, community=community, created_at=same_second))
    await store.ingest(items)
    for it in items[::4]:
        await store.engage(it.id, reactions=rng.randint(1, 9))
    return store, Timelines(redis), [i.id for i in items]


@pytest.mark.parametrize("order", ["hot", "new", "top"])
async def test_cursor_pages_cover_everything_once(redis: aioredis.Redis, order: str) -> None:
    _, timelines, ids = await _fill(redis)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await timelines.page(Scope(), order, 17, cursor)  # type: ignore[arg-type]
        seen += [s.id for s in page.stories]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert pages == 9
    one_go = [s.id for s in (await timelines.page(Scope(), order, 100)).stories]  # type: ignore[arg-type]
    assert seen[:100] == one_go  # pages continue exactly where the previous one stopped


async def test_orders(redis: aioredis.Redis) -> None:
    _, timelines, _ = await _fill(redis, 60)
    new = (await timelines.page(Scope(), "new", 60)).stories
    assert [s.updated_at for s in new] == sorted((s.updated_at for s in new), reverse=True)
    top = (await timelines.page(Scope(), "top", 60)).stories
    assert [s.norm for s in top] == sorted((s.norm for s in top), reverse=True)
    hot = (await timelines.page(Scope(), "hot", 60)).stories
    assert [s.score for s in hot] == sorted((s.score for s in hot), reverse=True)


async def test_scopes(redis: aioredis.Redis) -> None:
    _, timelines, _ = await _fill(redis, 60)
    x_only = (await timelines.page(Scope("platform", "x"), "new", 100)).stories
    assert len(x_only) == 20 and {i.platform for s in x_only for i in s.items} == {"x"}
    community = (await timelines.page(Scope("community", "telegram:telegram-c0"), "new", 100)).stories
    assert {(i.platform, i.community) for s in community for i in s.items} == {("telegram", "telegram-c0")}
    assert (await timelines.page(Scope("community", "telegram:nobody"), "new")).stories == []
    about = (await timelines.page(Scope().with_topics(["Kilo"]), "new", 100)).stories
    assert about and all("kilo" in s.lead.text for s in about)
    assert len(about) == sum(
        1 for s in (await timelines.page(Scope(), "new", 100)).stories if "kilo" in s.lead.text
    )


async def test_top_of_period_window(redis: aioredis.Redis) -> None:
    store, timelines = FeedStore(redis), Timelines(redis)
    now = time.time()
    old = item(
        "An old post with a lot of reactions from the previous week, still remembered fondly.",
        created_at=now - 3 * 86400,
        reactions=50,
    )
    fresh = item(
        "A post from this morning that got a couple of reactions from early risers.",
        created_at=now - 3600,
        reactions=2,
    )
    await store.ingest([old, fresh])
    day = await timelines.page(Scope(), "top", 10, period_s=86400, now=now)
    assert [s.id for s in day.stories] == [fresh.id]
    week = await timelines.page(Scope(), "top", 10, period_s=7 * 86400, now=now)
    assert [s.id for s in week.stories] == [old.id, fresh.id]


def test_bad_cursors_and_scopes_are_user_errors() -> None:
    with pytest.raises(InvalidInput):
        Timelines._parse_cursor("1.0~bad id!")
    with pytest.raises(InvalidInput):
        Scope.parse("community:")
    assert Scope.parse("community:telegram:-100123") == Scope("community", "telegram:-100123")
    assert Scope.parse("platform:x").label(CATALOG) == "X"


async def test_bad_cursor_in_a_page(redis: aioredis.Redis) -> None:
    with pytest.raises(InvalidInput):
        await Timelines(redis).page(Scope(), "top", 5, "12~abc")


async def test_window_ranking_sums_a_grouped_storys_items_and_forgets_it_when_they_are_gone(
    redis: aioredis.Redis,
) -> None:
    store, timelines = FeedStore(redis), Timelines(redis)
    now = time.time()
    text = "Chorus 2.0 ships today with cross-platform digests, a ranked feed and moderator prompts for all!"
    first = item(text, platform="telegram", created_at=now - 600, reactions=3)
    second = item("📣 " + text + " #news", platform="x", community="acct", created_at=now - 300, reactions=4)
    alone = item(
        "A quiet note about the weekly call, which moved to Thursday evening this time.", reactions=1
    )
    await store.ingest([first, alone])
    await store.ingest([second])
    story = first.id
    assert await redis.sismember(fk.multi(fk.part_of(story)), story)  # ranked from its items, not one score
    ranked = await timelines.ranked_window(Scope(), now - 3600, now + 1)
    grouped = {sid: total for sid, total, _ in ranked}
    assert set(grouped) == {story, alone.id}
    [before] = [i.norm for i in [await store.get(first.id), await store.get(second.id)] if i][:1]
    both = sum(i.norm for i in [await store.get(first.id), await store.get(second.id)] if i)
    assert grouped[story] == pytest.approx(both) and both > before
    assert ranked[0][0] == story and len(ranked) == 2 and ranked[:1] == [ranked[0]]
    await store.delete(second.id)
    await store.delete(first.id)
    assert not await redis.sismember(fk.multi(fk.part_of(story)), story)
    assert [sid for sid, _, _ in await timelines.ranked_window(Scope(), now - 3600, now + 1)] == [alone.id]
