from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from core.assistant.drafts import Draft, DraftStore, ShareTarget
from core.contract import DraftRef

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster


def _draft(**kw: object) -> Draft:
    base: dict[str, object] = {
        "community_key": "test:c1",
        "platform": "test",
        "channel": "general",
        "author_id": "u1",
        "parts": ["First part.", "Second part."],
    }
    base.update(kw)
    return Draft(**base)  # type: ignore[arg-type]


async def test_saved_draft_round_trips_with_ttl(redis: aioredis.Redis) -> None:
    store = DraftStore(redis, ttl_s=120)
    draft = await store.save(_draft(hashtags=["#launch"], alt_text="alt"))
    loaded = await store.get("test:c1", draft.id)
    assert loaded == draft and loaded.text == "First part.\n\nSecond part."
    ttl = await redis.ttl(f"chorus:{{c:test:c1}}:draft:{draft.id}")
    assert 0 < ttl <= 120


async def test_a_draft_id_from_another_community_does_not_resolve(redis: aioredis.Redis) -> None:
    store = DraftStore(redis)
    draft = await store.save(_draft())
    assert await store.get("test:c2", draft.id) is None
    assert await store.get("test:c1", "../../etc") is None
    assert await store.get("test:c1", "") is None


def test_refs_name_the_draft_and_its_image() -> None:
    draft = _draft()
    assert DraftRef.parse(draft.ref) == DraftRef(draft.id, image=False)
    assert DraftRef.parse(draft.image_ref) == DraftRef(draft.id, image=True)
    assert DraftRef.parse("digest:abc") is None and DraftRef.parse(None) is None


def test_share_targets_parse_or_say_what_is_wrong() -> None:
    target = ShareTarget.parse("telegram:-100123/-100123")
    assert (target.platform, target.community, target.channel) == ("telegram", "-100123", "-100123")
    with pytest.raises(ValueError, match="platform:community/channel"):
        ShareTarget.parse("x")


async def test_publishing_a_draft_to_a_target_happens_once_even_when_racing(redis: aioredis.Redis) -> None:
    store = DraftStore(redis)
    draft = await store.save(_draft())
    target = ShareTarget(platform="x", community="me", channel="timeline")
    results = await asyncio.gather(*(store.mark_published(draft, target) for _ in range(20)))
    assert results.count(True) == 1
    await store.unmark_published(draft, target)
    assert await store.mark_published(draft, target)


async def test_pending_shares_are_taken_by_one_approver(redis: aioredis.Redis) -> None:
    store = DraftStore(redis)
    draft = await store.save(_draft())
    a = ShareTarget(platform="x", community="me", channel="timeline")
    b = ShareTarget(platform="telegram", community="-1", channel="-1")
    await store.add_pending(draft, a)
    await store.add_pending(draft, b)
    await store.add_pending(draft, a)
    assert await store.pending("test:c1", draft.id) == [b, a]
    first, second = await asyncio.gather(
        store.take_pending("test:c1", draft.id), store.take_pending("test:c1", draft.id)
    )
    assert sorted([len(first), len(second)]) == [0, 2]
    assert await store.take_pending("test:c2", draft.id) == []


def test_ids_are_echoed_only_when_they_look_like_ids() -> None:
    from core.assistant.drafts import shown_id

    assert shown_id(" 3f2a9c1e ") == "“3f2a9c1e”"
    assert shown_id("@everyone") == "with that id" and shown_id("<@&123>") == "with that id"
