"""Sharing and approval: targets, fitting to the target platform, approval per community, publish once."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from core.assistant.drafts import Draft, DraftStore, ShareTarget
from core.assistant.publish import Publisher, fit_parts
from core.community import settings_key
from core.contract import Author, OfferChoices, Post, Reply, SendImage
from core.errors import InvalidInput, PermissionDenied
from core.settings import Settings
from core.text import x_weighted_length
from tests.support import CATALOG, event

MEMBER = Author(id="u1")
MODERATOR = Author(id="m1", is_moderator=True)


def _publisher(redis: aioredis.Redis, settings: Settings, **targets: list[str]) -> Publisher:
    configured = settings.model_copy(
        update={"share_targets": {k.replace("_", ":"): v for k, v in targets.items()}}
    )
    return Publisher(DraftStore(redis), configured, redis, CATALOG)


async def _draft(store: DraftStore, **kw: object) -> Draft:
    values: dict[str, object] = {
        "community_key": "test:c1",
        "platform": "test",
        "channel": "general",
        "author_id": "u1",
        "parts": ["Our launch is today. Come and see it! " * 3],
    }
    values.update(kw)
    return await store.save(Draft(**values))  # type: ignore[arg-type]


def test_targets_come_from_the_operator_for_all_or_one_community(
    redis: aioredis.Redis, settings: Settings
) -> None:
    p = _publisher(redis, settings, **{"*": ["x:bot/timeline", "broken"], "test_c1": ["telegram:-100/-100"]})
    assert [t.label for t in p.allowed_targets("test:c1")] == ["x:bot/timeline", "telegram:-100/-100"]
    assert [t.label for t in p.allowed_targets("test:c2")] == ["x:bot/timeline"]


def test_resolve_allows_configured_targets_and_channels_of_the_own_community_only(
    redis: aioredis.Redis, settings: Settings
) -> None:
    p = _publisher(redis, settings, **{"*": ["x:bot/timeline"]})
    e = event()
    assert p.resolve(e, "X", None).label == "x:bot/timeline"
    assert p.resolve(e, "test", "#news") == ShareTarget(platform="test", community="c1", channel="news")
    with pytest.raises(InvalidInput, match="Share targets: x:bot/timeline"):
        p.resolve(e, "telegram", "-100999")  # another platform's chat that nobody configured


def test_a_draft_is_fitted_to_the_target_platform() -> None:
    long_post = Draft(
        community_key="test:c1",
        platform="discord",
        channel="g",
        author_id="u",
        parts=["A sentence about the launch. " * 40],
    )
    parts = fit_parts(long_post, CATALOG.capabilities("x"))
    assert len(parts) > 1 and all(x_weighted_length(p) <= 280 for p in parts) and parts[0].startswith("1/")
    assert fit_parts(long_post, CATALOG.capabilities("discord")) == long_post.parts
    cjk = Draft(
        community_key="t:c", platform="telegram", channel="g", author_id="u", parts=["発表します。" * 100]
    )
    assert all(x_weighted_length(p) <= 280 for p in fit_parts(cjk, CATALOG.capabilities("x")))


async def test_publishing_here_needs_no_approval_and_carries_the_draft_ref(
    redis: aioredis.Redis, settings: Settings
) -> None:
    p = _publisher(redis, settings)
    draft = await _draft(
        p.store, image_blob="b1", alt_text="alt", image_label="Text card drawn by Chorus (not AI art)"
    )
    actions = await p.post_here(event(author=MEMBER, thread="t9"), draft)
    post, image = actions
    assert isinstance(post, Post) and post.ref == f"draft:{draft.id}" and post.thread == "t9"
    assert isinstance(image, SendImage) and image.blob == "b1" and image.alt_text == "alt"
    assert "not AI art" in image.caption


async def test_x_needs_approval_by_default_and_a_moderator_publishes(
    redis: aioredis.Redis, settings: Settings
) -> None:
    p = _publisher(redis, settings)
    draft = await _draft(p.store)
    x = ShareTarget(platform="x", community="bot", channel="timeline")
    [waiting] = await p.share(event(author=MEMBER), draft, x)
    assert isinstance(waiting, OfferChoices) and waiting.choices[0].payload == f"approve:{draft.id}"
    with pytest.raises(PermissionDenied):
        await p.approve(event(author=MEMBER), draft.id)
    results = await asyncio.gather(
        p.approve(event(author=MODERATOR), draft.id), p.approve(event(author=MODERATOR), draft.id)
    )
    posts = [a for r in results for a in r if isinstance(a, Post)]
    assert len(posts) == 1 and posts[0].platform == "x" and posts[0].ref == f"draft:{draft.id}"
    assert any(isinstance(a, Reply) and "nothing waiting" in a.text for r in results for a in r)


async def test_a_moderators_share_is_its_own_approval(redis: aioredis.Redis, settings: Settings) -> None:
    p = _publisher(redis, settings)
    draft = await _draft(p.store)
    actions = await p.share(
        event(author=MODERATOR), draft, ShareTarget(platform="x", community="bot", channel="timeline")
    )
    assert [type(a).__name__ for a in actions] == ["Post", "Reply"]
    [again] = await p.share(
        event(author=MODERATOR), draft, ShareTarget(platform="x", community="bot", channel="timeline")
    )
    assert isinstance(again, Reply) and "already published" in again.text


async def test_approval_follows_the_community_setting(redis: aioredis.Redis, settings: Settings) -> None:
    p = _publisher(redis, settings)
    draft = await _draft(p.store)
    telegram = ShareTarget(platform="telegram", community="-100", channel="-100")
    actions = await p.share(event(author=MEMBER), draft, telegram)  # default: only X needs approval
    assert isinstance(actions[0], Post) and actions[0].platform == "telegram"
    await redis.hset(settings_key("test:c1"), "approval", "on")
    other = await _draft(p.store)
    [waiting] = await p.share(event(author=MEMBER), other, telegram)
    assert isinstance(waiting, OfferChoices)
    await redis.hset(settings_key("test:c1"), "approval", "off")
    third = await _draft(p.store)
    actions = await p.share(
        event(author=MEMBER), third, ShareTarget(platform="x", community="bot", channel="timeline")
    )
    assert isinstance(actions[0], Post)


async def test_approve_only_sees_drafts_of_its_own_community(
    redis: aioredis.Redis, settings: Settings
) -> None:
    p = _publisher(redis, settings)
    draft = await _draft(p.store)
    await p.share(event(author=MEMBER), draft, ShareTarget(platform="x", community="bot", channel="timeline"))
    with pytest.raises(InvalidInput, match="no draft"):
        await p.approve(event(author=MODERATOR, community="c2"), draft.id)
    assert await p.store.pending("test:c1", draft.id)  # still waiting for c1's moderators
