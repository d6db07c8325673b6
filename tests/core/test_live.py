"""Live drafts, core side: what the worker publishes, and how the first Reply takes the placeholder's place."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from core import keys
from core.bus import Bus
from core.contract import Capabilities, Edit, Receipt, Reply
from core.live import LivePublisher, LiveShower, LiveUpdate, placeholder_id
from core.platform import BlobReader, EventSink, Platform
from tests.support import event


async def _published(redis: aioredis.Redis, platform: str = "test") -> list[LiveUpdate]:
    entries = await redis.xrange(keys.live(platform))
    return [LiveUpdate.model_validate_json(fields[b"u"]) for _, fields in entries]


async def test_publisher_holds_the_first_text_throttles_and_withdraws_what_rules_refuse(
    redis: aioredis.Redis,
) -> None:
    e = event(text="write a post")
    publish = LivePublisher(
        redis, e, allowed=lambda t: "zorblax" not in t, max_chars=100, interval_s=0.1, first_after_s=0.1
    )
    await publish("Too early")  # a draft finished within the hold is never shown
    assert await _published(redis) == []
    await asyncio.sleep(0.12)
    await publish("Our garden @everyone")
    await publish("Our garden opens")  # within the interval: skipped
    await asyncio.sleep(0.12)
    await publish("Our garden opens Saturday, zorblax")
    await publish("Our garden opens Saturday, zorblax and more")  # stopped: nothing more
    updates = await _published(redis)
    assert [u.withdrawn for u in updates] == [False, True]
    assert "@everyone" not in updates[0].text and updates[0].text.startswith("Our garden")
    assert updates[1].text == "" and updates[0].event_id == e.id and updates[0].reply_to == e.message_id
    assert 0 < await redis.ttl(keys.live("test")) <= 300


class Recording(Platform):
    name = "test"
    capabilities = Capabilities(edits=True, live_drafts=True, live_interval_s=0.05)

    def __init__(self) -> None:
        self.delivered: list[object] = []

    async def start(self, publish: EventSink) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, action: object, blobs: BlobReader) -> Receipt:  # type: ignore[override]
        self.delivered.append(action)
        return Receipt(message_ids=("m1",))


async def test_the_first_reply_edits_the_placeholder_once_later_replies_are_messages(
    redis: aioredis.Redis,
) -> None:
    bus = Bus(redis)
    platform = Recording()
    shower = LiveShower(bus, platform)
    e = event(text="write a post")
    update = LiveUpdate(
        event_id=e.id, platform="test", community=e.community, channel=e.channel, text="Our gar", seq=1
    )
    shower.offer(update)
    await asyncio.sleep(0.1)
    [placeholder] = platform.delivered
    assert (
        isinstance(placeholder, Reply)
        and placeholder.text == "Our gar …"
        and placeholder.id == placeholder_id(e.id)
    )
    final = Reply(
        id=f"{e.id}.0",
        platform="test",
        community=e.community,
        channel=e.channel,
        event_id=e.id,
        text="Done",
        ref="draft:1",
    )
    taken = await shower.take(final)
    assert isinstance(taken, Edit) and taken.target_action == placeholder_id(e.id) and taken.ref == "draft:1"
    assert taken.id == final.id  # recorded under the Reply's id: a redelivery is recognised
    assert isinstance(await shower.take(final), Edit)  # redelivered after a crash: the same edit again
    other = final.model_copy(update={"id": f"{e.id}.1"})
    assert await shower.take(other) == other  # a second Reply of the Event is a message of its own
    shower.offer(update.model_copy(update={"seq": 2, "text": "late"}))  # after the final: ignored
    await asyncio.sleep(0.1)
    assert len(platform.delivered) == 1
