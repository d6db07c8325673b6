from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from core.errors import InvalidInput
from core.prompts.service import Prompts
from core.prompts.slots import Slot, SlotSpec, default
from core.prompts.store import Editor, Version
from core.prompts.template import TemplateError
from tests.support import CATALOG

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

ADA = Editor(id="u1", name="Ada", platform="discord")
C = "discord:1"


async def test_defaults_until_a_community_sets_its_own(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    assert (await prompts.effective(C, Slot.PERSONA)).text == default("persona").text
    await prompts.set_text(C, SlotSpec(Slot.PERSONA), "  You are Pirate Pete.\r\n", ADA, "arr")
    effective = await prompts.effective(C, Slot.PERSONA)
    assert effective.text == "You are Pirate Pete." and effective.version is not None
    assert (await prompts.effective("discord:2", Slot.PERSONA)).text == default("persona").text


async def test_platform_override_wins_for_that_platform_only(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    await prompts.set_text(C, SlotSpec(Slot.STYLE), "Long and warm.", ADA)
    await prompts.set_text(C, SlotSpec(Slot.STYLE, "x"), "Short. {max_chars} max.", ADA)
    assert (await prompts.effective(C, Slot.STYLE, "x")).text == "Short. {max_chars} max."
    assert (await prompts.effective(C, Slot.STYLE, "telegram")).text == "Long and warm."
    assert (await prompts.effective(C, Slot.STYLE)).text == "Long and warm."  # community's own platform
    await prompts.reset(C, SlotSpec(Slot.STYLE, "x"), ADA)
    assert (await prompts.effective(C, Slot.STYLE, "x")).text == "Long and warm."


async def test_effective_all_gives_every_slot_for_the_assistant(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    await prompts.set_text(C, SlotSpec(Slot.RULES), "- Never mention prices.", ADA)
    await prompts.set_text(C, SlotSpec(Slot.PERSONA, "x"), "You are terse.", ADA)
    on_discord = await prompts.effective_all(C, "discord")
    on_x = await prompts.effective_all(C, "x")
    assert set(on_discord) == {s.value for s in Slot}
    assert on_discord["rules"] == on_x["rules"] == "- Never mention prices."
    assert on_discord["persona"] == default("persona").text and on_x["persona"] == "You are terse."


async def test_set_validates_and_refuses_an_unchanged_text(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    with pytest.raises(TemplateError):
        await prompts.set_text(C, SlotSpec(Slot.POST), "{request.__class__}", ADA)
    assert await prompts.store.head(C, SlotSpec(Slot.POST)) is None
    await prompts.set_text(C, SlotSpec(Slot.POST), "About {request}", ADA)
    with pytest.raises(InvalidInput, match="already has exactly this text"):
        await prompts.set_text(C, SlotSpec(Slot.POST), "About {request}\n", ADA)


async def test_rollback_and_reset_are_new_versions_and_lose_nothing(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    spec = SlotSpec(Slot.PERSONA)
    await prompts.set_text(C, spec, "one", ADA)
    await prompts.set_text(C, spec, "two", ADA)
    back = await prompts.rollback(C, spec, 1, ADA, "two was worse")
    assert back.number == 3 and back.from_version == 1 and back.op == "rollback"
    assert (await prompts.effective(C, Slot.PERSONA)).text == "one"
    reset = await prompts.reset(C, spec, ADA, "start over")
    assert reset is not None and reset.default and reset.number == 4
    assert (await prompts.effective(C, Slot.PERSONA)).text == default("persona").text
    assert await prompts.reset(C, spec, ADA) is None  # already the default: nothing changes
    again = await prompts.rollback(C, spec, 2, ADA)
    assert again.number == 5 and (await prompts.effective(C, Slot.PERSONA)).text == "two"
    versions, current = await prompts.store.versions(C, spec)
    assert [v.text for v in versions][:3] == ["one", "two", "one"] and current == 5
    with pytest.raises(InvalidInput, match="no version 9"):
        await prompts.rollback(C, spec, 9, ADA)
    with pytest.raises(InvalidInput, match="already"):
        await prompts.rollback(C, spec, 5, ADA)


async def test_rolling_back_to_a_reset_means_the_default(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    spec = SlotSpec(Slot.STYLE)
    await prompts.set_text(C, spec, "mine", ADA)
    await prompts.reset(C, spec, ADA)
    await prompts.set_text(C, spec, "mine again", ADA)
    await prompts.rollback(C, spec, 2, ADA)
    assert (await prompts.effective(C, Slot.STYLE)).version is None  # the default file is in force
    assert await prompts.customized(C) == {}


async def test_a_stored_text_that_no_longer_validates_is_skipped(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    # As if the default file had dropped a variable after this version was stored.
    stale = Version(text="About {topic_of_old}", op="set", editor=ADA)
    await prompts.store.append(C, SlotSpec(Slot.POST), stale)
    assert (await prompts.effective(C, Slot.POST)).text == default("post").text


async def test_remember_request_keeps_recent_requests_for_previews(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    await prompts.remember_request(C, "a post about the launch")
    await prompts.remember_request(C, "   ")
    recent = await prompts.store.recent(C)
    assert [(r.text, r.platform) for r in recent] == [("a post about the launch", "discord")]
    assert await prompts.store.recent("discord:2") == []
