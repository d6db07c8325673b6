"""Money caps: a community reaches its daily cap through real requests (langchain over loopback HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from core.assistant.budget import Budget, has_link
from core.assistant.drafts import Draft, ShareTarget
from core.bus import Bus, load_action
from core.contract import Action, Author, Capabilities, EventKind, Post, Reply, SendImage
from core.errors import BudgetExceeded
from core.router import Router
from core.sender import Sender
from core.services import Services
from core.settings import Settings
from tests.fakes.openai_api import FakeOpenAI, chat
from tests.support import RecordingPlatform, assistant_of, build_services, declare, event, wait_until

POST = "Our launch is today! We built Chorus to help communities write better posts. Come and try it."
USAGE = {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}  # $0.06 at the test price
MOD = Author(id="m1", name="Mo", is_moderator=True)


@pytest.fixture
async def svc(api: FakeOpenAI, settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Services]:
    configured = api.configure(
        settings,
        image_provider="card",
        moderation_provider="local",
        prices={"gpt-4.1-mini": {"input": 1000.0, "output": 1000.0}},  # $0.001 a token
        budget_community_usd_per_day=0.10,
        budget_deployment_usd_per_day=1.00,
    )
    services = await build_services(configured, redis)
    declare(services.platforms, "test", Capabilities(max_text=2000, buttons=True))
    yield services
    await services.aclose()


async def _outbox(redis: aioredis.Redis) -> list[Action]:
    return [load_action(a) for a in await Bus(redis).outbox("test")]


async def test_a_community_reaching_its_cap_is_refused_and_stats_show_the_spend(
    api: FakeOpenAI, svc: Services, redis: aioredis.Redis
) -> None:
    router = Router(svc)
    api.script("chat", chat(POST, usage=USAGE), chat(POST, usage=USAGE))

    first = await router.route(event(text="write about our launch"))
    assert any(isinstance(a, Reply) and a.text.startswith(POST) for a in first)
    assert await _outbox(redis) == []  # 60 %: no warning yet

    await router.route(event(text="write about our launch again"))  # 120 %: passed 80 % now
    [warning] = await _outbox(redis)
    assert isinstance(warning, Reply) and warning.channel == "general"
    assert warning.text.startswith("Note for moderators: this community has used $0.1200 of $0.10 (120%)")

    calls = len(api.calls("chat"))
    [refusal] = await router.route(event(text="and one more"))
    assert isinstance(refusal, Reply)
    assert refusal.text.startswith("This community has reached its daily AI spending limit ($0.10).")
    assert "again at 00:00 UTC" in refusal.text
    assert len(api.calls("chat")) == calls  # refused before any money was spent
    [image_refusal] = await router.route(event(kind=EventKind.COMMAND, command="image", args="a cat"))
    assert isinstance(image_refusal, Reply) and "spending limit" in image_refusal.text

    [stats] = await router.route(event(kind=EventKind.COMMAND, command="stats", author=MOD))
    assert isinstance(stats, Reply)
    assert "Spend today (models, images, X posts): $0.1200 of $0.10 (120%)" in stats.text

    # another community is not affected, and the warning was given once
    api.script("chat", chat(POST, usage=USAGE))
    other = await router.route(event(text="write about our launch", community="c2"))
    assert any(isinstance(a, Reply) and a.text.startswith(POST) for a in other)
    assert [a.community for a in await _outbox(redis)] == ["c1"]  # c2 is at 60 %: only c1's one warning


async def test_the_deployment_cap_stops_every_community(svc: Services, redis: aioredis.Redis) -> None:
    budget = Budget(redis, svc.settings)
    for i in range(10):
        await budget.charge(f"test:c{i}", 0.0999)
    await budget.charge("test:c10", 0.01)  # $1.00 in all
    with pytest.raises(BudgetExceeded) as info:
        await budget.check("test:fresh")
    assert "Chorus has reached its daily spending limit ($1.00) for everyone" in info.value.user_message
    assert info.value.retry_at is not None


async def test_concurrent_charges_count_exactly_and_warn_once(svc: Services, redis: aioredis.Redis) -> None:
    budget = Budget(redis, svc.settings)
    warnings = await asyncio.gather(*(budget.charge("test:c1", 0.001) for _ in range(200)))
    assert sum(w is not None for w in warnings) == 1  # the 80th call crossed $0.08, and only it
    community, deployment = await budget.today("test:c1")
    assert community.spent == pytest.approx(0.2) and deployment.spent == pytest.approx(0.2)


def test_x_posts_are_priced_per_post_and_links_cost_more(settings: Settings) -> None:
    budget = Budget.__new__(Budget)
    budget.settings = settings
    base = {"platform": "x", "community": "acct", "channel": "timeline"}
    plain = Post(**base, text="hello")
    linked = Post(**base, text="see https://example.com")
    thread = Post(**base, text="a\n\nb", parts=("one", "two www.example.org", "three"))
    image = SendImage(**base, blob="b", caption="AI-generated image")
    elsewhere = Post(platform="discord", community="g", channel="c", text="free")
    assert budget.x_posts_cost([plain]) == pytest.approx(0.015)
    assert budget.x_posts_cost([linked]) == pytest.approx(0.20)
    assert budget.x_posts_cost([thread, image]) == pytest.approx(0.015 * 3 + 0.20)
    assert budget.x_posts_cost([elsewhere]) == 0
    assert has_link("chorus.dev/docs") and not has_link("a.b")


async def test_publishing_to_x_is_charged_and_refused_at_the_cap(
    svc: Services, redis: aioredis.Redis
) -> None:
    publisher = assistant_of(svc).publisher
    target = ShareTarget(platform="x", community="acct", channel="timeline")

    def draft() -> Draft:
        return Draft(
            community_key="test:c1", platform="test", channel="general", author_id="m1", kind="post",
            request="r", parts=("Launch day! https://example.com",),
        )  # fmt: skip

    mod_event = event(kind=EventKind.COMMAND, command="share", author=MOD)
    shared = await publisher.share(mod_event, draft(), target)
    assert any(isinstance(a, Post) and a.platform == "x" for a in shared)
    community, _ = await publisher.budget.today("test:c1")
    assert community.spent == pytest.approx(0.20)  # one post with a link: over the $0.10 cap
    assert any(isinstance(a, Reply) and a.text.startswith("Note for moderators") for a in shared)
    with pytest.raises(BudgetExceeded):
        await publisher.share(mod_event, draft(), target)


async def test_what_the_bot_posts_on_x_is_charged_when_delivered(
    svc: Services, redis: aioredis.Redis
) -> None:
    x = RecordingPlatform("x", Capabilities(max_text=280, weighted_length=True, threads=True))
    sender = Sender(svc.bus, x, hooks=svc.delivery_hooks)
    where = {"platform": "x", "community": "acct", "channel": "900"}
    answer = Reply(**where, text="Here is your draft, see https://example.com", ref="draft:abc123")
    published = Post(**where, text="Launch day!", ref="draft:abc123")  # charged when it was shared
    await svc.bus.enqueue([answer, published])
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    await wait_until(lambda: len(x.sent) == 2, what="both delivered")
    stop.set()
    await task
    budget = Budget(redis, svc.settings)
    spent, _ = await budget.today("x:acct")
    assert spent.spent == pytest.approx(0.20)  # one reply with a link; the published post not again
