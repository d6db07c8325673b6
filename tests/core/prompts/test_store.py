from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from core.prompts.slots import Slot, SlotSpec
from core.prompts.store import RECENT_KEEP, Editor, PromptStore, RecentRequest, Version

pytestmark = pytest.mark.topologies  # core flows: on one server and on a cluster

ADA = Editor(id="u1", name="Ada", platform="discord")
PERSONA = SlotSpec(Slot.PERSONA)


def version(text: str, **kw: object) -> Version:
    return Version(text=text, op="set", editor=ADA, **kw)  # type: ignore[arg-type]


async def test_versions_are_numbered_appended_and_current(redis: aioredis.Redis) -> None:
    store = PromptStore(redis)
    assert await store.head("discord:1", PERSONA) is None
    first = await store.append("discord:1", PERSONA, version("one", reason="first try"))
    second = await store.append("discord:1", PERSONA, version("two"))
    assert (first.number, second.number) == (1, 2)
    head = await store.head("discord:1", PERSONA)
    assert head is not None and head.text == "two" and head.editor == ADA
    older = await store.get("discord:1", PERSONA, 1)
    assert older is not None and older.text == "one" and older.reason == "first try"
    versions, current = await store.versions("discord:1", PERSONA)
    assert [v.number for v in versions] == [1, 2] and current == 2


async def test_concurrent_appends_get_distinct_numbers(redis: aioredis.Redis) -> None:
    store = PromptStore(redis)
    made = await asyncio.gather(*(store.append("x:9", PERSONA, version(f"t{i}")) for i in range(20)))
    assert sorted(v.number for v in made) == list(range(1, 21))
    versions, current = await store.versions("x:9", PERSONA)
    assert len(versions) == 20 and current in range(1, 21)


async def test_every_change_is_audited_newest_first(redis: aioredis.Redis) -> None:
    store = PromptStore(redis)
    await store.append("discord:1", PERSONA, version("one", reason="why not"))
    await store.append("discord:1", SlotSpec(Slot.STYLE, "x"), version("short"))
    await store.set_setting("discord:1", "approval", "on", ADA, "launch week")
    audit = await store.audit("discord:1")
    assert [(e.spec, e.version, e.op) for e in audit] == [
        ("setting:approval", None, "setting"),
        ("style@x", 1, "set"),
        ("persona", 1, "set"),
    ]
    assert audit[0].detail == "on" and audit[0].reason == "launch week"
    assert audit[2].reason == "why not" and audit[2].editor == ADA


async def test_communities_are_isolated_under_their_own_hash_tag(redis: aioredis.Redis) -> None:
    store = PromptStore(redis)
    await store.append("discord:1", PERSONA, version("A's persona"))
    assert await store.head("discord:2", PERSONA) is None
    assert await store.audit("discord:2") == []
    keys = [k.decode() for k in await redis.keys("*")]
    assert keys and all(k.startswith("chorus:{c:discord:1}:") for k in keys)
    assert await store.communities() == ["discord:1"]


async def test_specs_lists_changed_slots_in_order(redis: aioredis.Redis) -> None:
    store = PromptStore(redis)
    for spec in (SlotSpec(Slot.POST), SlotSpec(Slot.STYLE, "x"), SlotSpec(Slot.STYLE)):
        await store.append("t:1", spec, version("text"))
    assert [s.key for s in await store.specs("t:1")] == ["style", "style@x", "post"]


async def test_recent_requests_are_capped_trimmed_and_expire(redis: aioredis.Redis) -> None:
    store = PromptStore(redis)
    for i in range(RECENT_KEEP + 5):
        await store.remember("t:1", RecentRequest(text=f"request {i} " + "x" * 2000, platform="t"))
    recent = await store.recent("t:1")
    assert len(recent) == RECENT_KEEP
    assert recent[0].text.startswith(f"request {RECENT_KEEP + 4} ") and len(recent[0].text) == 1000
    ttl = await redis.ttl("chorus:{c:t:1}:prompt:recent")
    assert 0 < ttl <= 14 * 86400


async def test_heads_reads_many_slots_at_once(redis: aioredis.Redis) -> None:
    store = PromptStore(redis)
    style_x = SlotSpec(Slot.STYLE, "x")
    await store.append("t:1", PERSONA, version("p1"))
    await store.append("t:1", PERSONA, version("p2"))
    await store.append("t:1", style_x, version("short"))
    heads = await store.heads("t:1", [PERSONA, SlotSpec(Slot.STYLE), style_x])
    assert {spec.key: (v.number, v.text) for spec, v in heads.items()} == {
        "persona": (2, "p2"),
        "style@x": (1, "short"),
    }
    assert await store.heads("t:2", [PERSONA]) == {}
    assert await store.heads("t:1", []) == {}
