"""The mention poller against the fake X API and the real bus: cursor, pagination, crash recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bots.x.api import Me, XApi
from bots.x.mentions import MentionPoller, chain_key, conversation_key
from bots.x.rails import Rails
from core.contract import Event
from core.services import Services
from tests.bots.x.xkit import x_settings
from tests.fakes.x_api import FakeX

ME = Me(id="100", username="chorus_bot")


@pytest.fixture
async def x() -> AsyncIterator[FakeX]:
    async with FakeX(me_id="100", me_username="chorus_bot") as fake:
        fake.add_user("200", "alice")
        yield fake


class Published:
    """The bus, with a record of what reached it (and an optional failure, like Redis going away)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.events: list[Event] = []
        self.fail_after: int | None = None

    async def __call__(self, event: Event) -> str | None:
        if self.fail_after is not None and len(self.events) >= self.fail_after:
            raise ConnectionError("redis went away")
        stream_id = await self.services.bus.publish(event)
        if stream_id is not None:
            self.events.append(event)
        return stream_id


def poller(x: FakeX, services: Services, publish: Published, **settings: Any) -> tuple[MentionPoller, XApi]:
    s = x_settings(x, **settings)
    api = XApi(s)
    return MentionPoller(api, services.redis, s, ME, Rails(services.redis, s, ME), publish), api


async def test_pages_are_read_newest_first_and_published_oldest_first(x: FakeX, services: Services) -> None:
    tweets = [x.mention("200", f"request {i}") for i in range(130)]
    published = Published(services)
    p, api = poller(x, services, published, X_REPLIES_PER_AUTHOR_PER_DAY=0, X_MAX_CONVERSATION_DEPTH=0)
    try:
        assert await p.poll_once() == 130
        assert await p.poll_once() == 0
    finally:
        api.close()
    assert [e.message_id for e in published.events] == [t.id for t in tweets]
    calls = x.requests_to("GET /2/users/:id/mentions")
    assert [bool(c.query.get("pagination_token")) for c in calls] == [False, True, False]
    assert calls[2].query["since_id"] == tweets[-1].id
    assert await services.redis.get(p.cursor_key) == tweets[-1].id.encode()


async def test_a_crash_mid_poll_loses_nothing_and_repeats_nothing(x: FakeX, services: Services) -> None:
    tweets = [x.mention("200", f"request {i}") for i in range(3)]
    published = Published(services)
    published.fail_after = 1  # Redis dies after the first Event is on the bus
    p, api = poller(x, services, published)
    try:
        with pytest.raises(ConnectionError):
            await p.poll_once()
        assert await services.redis.get(p.cursor_key) is None  # the cursor did not move
        published.fail_after = None
        restarted, api2 = poller(x, services, published)  # a new process, same Redis
        try:
            assert await restarted.poll_once() == 2
        finally:
            api2.close()
    finally:
        api.close()
    assert [e.message_id for e in published.events] == [t.id for t in tweets]


async def test_the_first_poll_only_looks_back_the_max_age_and_answers_lead_to_the_mention(
    x: FakeX, services: Services
) -> None:
    old = x.mention("200", "ancient", created_at=datetime.now(UTC) - timedelta(hours=8))
    new = x.mention("200", "fresh")
    published = Published(services)
    p, api = poller(x, services, published, X_MAX_MENTION_AGE_S=3600)
    try:
        await p.poll_once()
    finally:
        api.close()
    [event] = published.events
    assert event.message_id == new.id != old.id
    start = x.requests_to("GET /2/users/:id/mentions")[0].query["start_time"]
    assert datetime.fromisoformat(start.replace("Z", "+00:00")) > datetime.now(UTC) - timedelta(
        hours=1, minutes=1
    )
    assert await services.redis.get(chain_key(ME, event.id, event.channel)) == new.id.encode()
    assert await services.redis.get(conversation_key(ME, event.channel)) == new.id.encode()


async def test_run_backs_off_on_5xx_and_keeps_polling(x: FakeX, services: Services) -> None:
    x.fail_next("GET /2/users/:id/mentions", status=503, times=2)
    mention = x.mention("200", "hello")
    published = Published(services)
    p, api = poller(x, services, published)
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop))
    try:
        for _ in range(500):
            if published.events:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
        api.close()
    assert [e.message_id for e in published.events] == [mention.id]
    assert [r.status for r in x.requests_to("GET /2/users/:id/mentions")][:3] == [503, 503, 200]
