"""The web app re-checks a Discord moderator by fetching the member over REST (real discord.py against the
loopback Discord), with the same rule as chat: Manage Server (owners, administrators) or a moderator role."""

from __future__ import annotations

import pytest

from core.services import Services
from core.web import auth as auth_module
from core.web.auth import Identity
from core.web.visibility import is_public
from tests.bots.discord.harness import GUILD_ID, People, running
from tests.core.web.signin import signed_in
from tests.fakes.discord_api import ADMINISTRATOR, FakeDiscord


async def test_the_member_is_fetched_and_judged_by_the_chat_rule(
    dc: FakeDiscord, people: People, services: Services
) -> None:
    admin = dc.add_member(GUILD_ID, username="admin", permissions=ADMINISTRATOR)
    slot = services.roles.slot("discord")
    assert slot is not None and not slot.filled
    async with running(dc, services, pipeline=False, DISCORD_MODERATOR_ROLES=["Helpers"]):
        check = slot.get()
        g = str(GUILD_ID)
        owner = dc.guilds[GUILD_ID].owner_id
        found = [await check(g, str(u)) for u in (owner, admin, people.mod, people.helper, people.alice)]
        assert found == [True, True, True, True, False]
        assert not await check(g, "1200000000000000999")  # not (or no longer) in the server: Unknown Member
        assert not await check("1200000000000000998", str(people.mod))  # a server the bot is not in
        assert not await check(f"dm-{people.mod}", str(people.mod))  # a DM has no moderators
        fetched = [r for r in dc.requests if r.method == "GET" and "/members/" in r.path]
        assert len(fetched) == 6  # the member is asked every time: no members intent, no stale cache
        dc.guilds[GUILD_ID].members[people.helper]["roles"] = []  # the helper role taken away
        assert not await check(g, str(people.helper))
    assert not slot.filled


async def test_a_demoted_moderators_web_session_is_refused_writes(
    dc: FakeDiscord, people: People, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_module, "ROLE_CACHE_S", 0.0)  # re-check on every request
    who = Identity(platform="discord", community=str(GUILD_ID), user=str(people.helper), moderator=True)
    key = f"discord:{GUILD_ID}"
    async with (
        running(dc, services, pipeline=False, DISCORD_MODERATOR_ROLES=["Helpers"]),
        signed_in(services, who) as web,
    ):
        page, status = await web.post(web.dashboard + "/feed", {"action": "visibility", "value": "public"})
        assert status == 200 and await is_public(services.redis, key)
        dc.guilds[GUILD_ID].members[people.helper]["roles"] = []  # demoted on Discord while signed in
        page, status = await web.post(web.dashboard + "/feed", {"action": "visibility", "value": "private"})
        assert status == 403 and "Only moderators" in page
        assert await is_public(services.redis, key)  # the write did not happen
        page, status = await web.get(web.dashboard)
        assert status == 403 and "Feed visibility" not in page
