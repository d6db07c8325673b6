"""Mentions sent while the Discord adapter was away (a restart IDENTIFYs a new session, which Discord does
not replay to) are read back from the channels' history when it is ready again, each published once."""

from __future__ import annotations

import asyncio

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


async def test_a_mention_arriving_before_on_ready_does_not_hide_those_sent_while_away(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    """discord.py dispatches the new session's messages from READY on, but on_ready only once no
    GUILD_CREATE came for ``guild_ready_timeout`` (2 s; longer under load). A mention published in that
    window moves its channel's remembered position past the ones sent while away, which must still be
    read back (the chaos run lost every mention sent while away in the channels mentioned then)."""
    async with running(dc, services, pipeline=False) as first:
        await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> before the restart")
        await first.wait_for(lambda: len(first.accepted) == 1, "the live mention")
    missed = [
        await dc.message_create(CHANNEL_ID, people.bob, f"<@{BOT_ID}> while away {i}") for i in range(3)
    ]
    identified = dc.identify_count

    async def mention_once_connected() -> dict[str, object]:
        await dc.wait_for(lambda: dc.identify_count > identified, what="the new session's READY")
        return await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> right after READY")

    early = asyncio.create_task(mention_once_connected())
    async with running(dc, services, pipeline=False, guild_ready_timeout=1.0) as second:
        live = await early
        assert str(live["id"]) in [e.message_id for e in second.published]  # before on_ready
        await second.wait_for(lambda: len(second.accepted) >= 4, "the mentions read back", timeout=10)
        assert sorted(e.message_id for e in second.accepted) == sorted(str(m["id"]) for m in (*missed, live))


async def test_a_guild_available_only_after_on_ready_is_read_back_then(
    dc: FakeDiscord, services: Services, people: People
) -> None:
    """A guild still unavailable at on_ready (its GUILD_CREATE late, as after an outage or under load)
    has no channels yet; what was sent there while away is read back once it becomes available."""
    late_guild = dc.add_guild(name="Late")
    late_channel = dc.add_channel(late_guild, "general")
    carol = dc.add_member(late_guild, username="carol")
    async with running(dc, services, pipeline=False) as first:
        await dc.message_create(late_channel, carol, f"<@{BOT_ID}> before the restart")
        await dc.message_create(CHANNEL_ID, people.alice, f"<@{BOT_ID}> before the restart")
        await first.wait_for(lambda: len(first.accepted) == 2, "the live mentions")
    missed = [await dc.message_create(late_channel, carol, f"<@{BOT_ID}> while away {i}") for i in range(2)]
    dc.hold_guild(late_guild)
    async with running(dc, services, pipeline=False) as second:
        assert second.accepted == []  # ready, and nothing to read back in the guild that is available
        await dc.release_guild(late_guild)
        await second.wait_for(lambda: len(second.accepted) == 2, "the late guild's mentions read back")
        after = await dc.message_create(late_channel, carol, f"<@{BOT_ID}> after it came back")
        await second.wait_for(lambda: len(second.accepted) == 3, "the next live mention")
    assert [e.message_id for e in second.accepted] == [str(m["id"]) for m in (*missed, after)]
    assert all(e.kind is EventKind.MENTION and e.community == str(late_guild) for e in second.accepted)
