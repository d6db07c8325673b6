"""Mentions sent while the Discord adapter was away (a restart IDENTIFYs a new session, which Discord does
not replay to) are read back from the channels' history when it is ready again, each published once."""

from __future__ import annotations

from core.contract import EventKind
from core.services import Services
from tests.bots.discord.harness import BOT_ID, CHANNEL_ID, OTHER_CHANNEL_ID, People, running
from tests.fakes.discord_api import FakeDiscord


async def test_mentions_sent_while_away_are_read_back_once(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    async with running(dc, services, pipeline=False) as first:
        before = await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> before the restart")
        await first.wait_for(lambda: len(first.accepted) == 1, "the live mention")
    identified = dc.identify_count
    missed = [
        await dc.message_create(CHANNEL_ID, people.bob, f"<@{BOT_ID}> while away {i}") for i in range(3)
    ]  # no gateway connection: Discord delivers these to nobody
    first_there = await dc.message_create(OTHER_CHANNEL_ID, people.bob, f"<@{BOT_ID}> a channel never seen")
    async with running(dc, services, pipeline=False) as second:
        await second.wait_for(lambda: len(second.accepted) == 4, "the mentions read back")
        after = await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> after the restart")
        await second.wait_for(lambda: len(second.accepted) == 5, "the next live mention")
    assert dc.identify_count == identified + 1  # a new session, not a resumed one
    accepted = [e.message_id for e in second.accepted]
    assert sorted(accepted[:4]) == sorted(str(m["id"]) for m in (*missed, first_there))
    assert accepted[4] == str(after["id"])
    assert [e.message_id for e in second.accepted if e.channel == str(CHANNEL_ID)][:3] == [
        str(m["id"]) for m in missed
    ]  # in the order they were sent
    assert all(e.kind is EventKind.MENTION for e in second.accepted)
    assert str(before["id"]) not in [e.message_id for e in second.published]  # only what came after it
    reads = {r.path: r.query.get("after") for r in dc.requests if r.method == "GET" and "/messages" in r.path}
    assert reads == {
        f"/channels/{CHANNEL_ID}/messages": str(before["id"]),  # after the newest seen there
        f"/channels/{OTHER_CHANNEL_ID}/messages": str(before["id"]),  # after the newest seen anywhere
    }
