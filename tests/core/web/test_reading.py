"""The feed as one reader may see it: merged visible timelines, or the global ones when nothing is hidden."""

from __future__ import annotations

import time

from core.feed import keys as fk
from core.feed.timelines import Scope, Sources
from core.services import Services
from core.web.reading import FILTER_RATIO, MERGE_LIMIT, VisibleTimelines
from core.web.visibility import set_visibility, visible_to
from tests.core.feed.helpers import item
from tests.support import feed_of

PUBLIC = [f"telegram:-10{n}" for n in range(MERGE_LIMIT + 2)]
PRIVATE = "telegram:-999"


async def _seed(services: Services) -> None:
    now = time.time()
    items = [
        item(
            f"Open note {n} about topic{n} and more words here",
            community=ck.split(":")[1],
            created_at=now - n,
        )
        for n, ck in enumerate(PUBLIC)
    ]
    items.append(item("SECRET minutes of the private committee", community="-999", created_at=now))
    await feed_of(services).store.ingest(items)
    for ck in PUBLIC:
        await set_visibility(services.redis, ck, "public")


def _flat(sources: Sources) -> list[str]:
    """The timeline keys of (partition, keys) pairs."""
    return [k for _, keys in sources for k in keys]


def _texts(stories: list) -> list[str]:  # type: ignore[type-arg]
    return [i.text for s in stories for i in s.items]


async def test_a_hidden_community_keeps_the_merge_and_stays_hidden(services: Services) -> None:
    await _seed(services)
    base = feed_of(services).timelines
    anonymous = VisibleTimelines(base, await visible_to(services.redis))
    keys = await anonymous.timeline_keys(Scope(), "hot")
    assert sorted(_flat(keys)) == sorted(fk.timeline(fk.community_part(ck), "hot", "c", ck) for ck in PUBLIC)
    for order in ("hot", "new", "top"):
        page = await anonymous.visible_page(Scope(), order, 50)  # type: ignore[arg-type]
        assert len(page.stories) == len(PUBLIC) and not any("SECRET" in t for t in _texts(page.stories)), (
            order
        )


async def test_when_nothing_is_hidden_the_global_timelines_are_read(services: Services) -> None:
    await _seed(services)
    base = feed_of(services).timelines
    member = VisibleTimelines(base, await visible_to(services.redis, [PRIVATE]))
    keys = _flat(await member.timeline_keys(Scope("platform", "telegram"), "new"))
    assert keys == [fk.timeline(p, "new", "p", "telegram") for p in range(fk.PARTITIONS)]
    page = await member.visible_page(Scope(), "new", 50)
    assert len(page.stories) == len(PUBLIC) + 1 and any("SECRET" in t for t in _texts(page.stories))


async def test_a_community_that_appears_after_the_check_shows_nothing(services: Services) -> None:
    await _seed(services)
    await set_visibility(services.redis, PRIVATE, "public")
    reader = VisibleTimelines(feed_of(services).timelines, await visible_to(services.redis))
    keys = _flat(await reader.timeline_keys(Scope(), "new"))
    assert keys and {k.split("}:", 1)[1] for k in keys} == {"tl:new:p:telegram"}  # nothing hidden
    await feed_of(services).store.ingest([item("LATE private news from a new group", community="-777")])
    page = await reader.visible_page(Scope(), "new", 50)
    assert not any("LATE" in t for t in _texts(page.stories)) and len(page.stories) == len(PUBLIC) + 1


async def test_with_few_hidden_communities_the_global_timelines_are_read_and_filtered(
    services: Services,
) -> None:
    now = time.time()
    public = [f"telegram:-2{n:02d}" for n in range(FILTER_RATIO * 2)]
    hidden = ["telegram:-301", "telegram:-302"]  # one for every FILTER_RATIO public communities
    items = [
        item(
            f"Story {n} of {ck} about subject{n} with more words",
            community=ck.split(":")[1],
            created_at=now - n,
        )
        for n, ck in enumerate(public * 6)  # six stories per public community
    ]
    items += [
        item(
            f"SECRET {n} of {ck} about hush{n} plus other words",
            community=ck.split(":")[1],
            created_at=now - n,
        )
        for n, ck in enumerate(hidden * 12)  # interleaved with the public ones, newest first
    ]
    feed = feed_of(services)
    await feed.store.ingest(items)
    for ck in public:
        await set_visibility(services.redis, ck, "public")
    reader = await VisibleTimelines.for_reader(feed.timelines, services.redis)
    assert reader.communities == frozenset(public) and reader._hidden == frozenset(hidden)
    assert await reader._few_hidden(Scope())
    shown: list[str] = []
    cursor = None
    while True:  # every page full, no secret, no story twice or missed across the cursors
        page = await reader.visible_page(Scope(), "new", 10, cursor)
        assert not any("SECRET" in t for t in _texts(page.stories))
        shown += [s.id for s in page.stories]
        cursor = page.cursor
        if cursor is None:
            break
        assert len(page.stories) == 10
    merged = VisibleTimelines(feed.timelines, reader.communities, reader._hidden)  # the k-way merge's answer
    everything = (await merged.page(Scope(), "new", 100)).stories
    assert shown == [s.id for s in everything] and len(shown) == len(public) * 6


async def test_read_gives_the_same_pages_as_the_reader_in_every_case(services: Services) -> None:
    await _seed(services)  # nothing hidden but the private community, which is one of many: filtered
    feed = feed_of(services)
    for own in ([], [PRIVATE]):
        for scope in (
            Scope(),
            Scope("platform", "telegram"),
            Scope("community", PUBLIC[0]),
            Scope("community", PRIVATE),
        ):
            for order in ("hot", "new", "top"):
                reader, page = await VisibleTimelines.read(
                    feed.timelines, services.redis, own, scope, order, 3, None
                )  # type: ignore[arg-type]
                alone = await VisibleTimelines.for_reader(feed.timelines, services.redis, own)
                if scope.kind == "community" and scope.value not in alone.communities:
                    assert page.stories == [] and scope.value not in reader.communities
                    continue
                expected = await alone.visible_page(scope, order, 3)  # type: ignore[arg-type]
                assert [s.id for s in page.stories] == [s.id for s in expected.stories], (own, scope, order)
                assert page.cursor == expected.cursor
                assert ("SECRET" in " ".join(_texts(page.stories))) == (
                    (PRIVATE in own and scope.kind != "community") or scope.value == PRIVATE
                )
    for ck in PUBLIC[1:]:  # now most communities are hidden: the merge, after the speculative read
        await set_visibility(services.redis, ck, "private")
    reader, page = await VisibleTimelines.read(feed.timelines, services.redis, [], Scope(), "new", 50, None)
    assert [i.community_key for s in page.stories for i in s.items] == [PUBLIC[0]]
