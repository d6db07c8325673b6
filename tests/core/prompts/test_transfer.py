from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from core.errors import InvalidInput
from core.prompts.service import Prompts
from core.prompts.slots import Slot, SlotSpec
from core.prompts.store import Editor
from core.prompts.transfer import FORMAT, Format, apply, check_community, dump, export_bundle, load
from tests.support import CATALOG

OPS = Editor(id="cli:ops", name="ops", platform="cli")
A = "discord:111"

TRICKY: dict[SlotSpec, str] = {
    SlotSpec(Slot.PERSONA): "You are “Zorblax” 👩‍💻 — poet of {community}.\n\nSecond paragraph: yes/no? on",
    SlotSpec(
        Slot.STYLE
    ): "Trailing spaces here   \n\tTabbed line\n- looks like a list\n# looks like a comment",
    SlotSpec(Slot.STYLE, "x"): "Quotes \"\"\" and ''' and backslashes \\n \\t \\\\ and {max_chars}",
    SlotSpec(Slot.RULES): "on",
    SlotSpec(Slot.POST): "key: value\n[brackets] here: " + "long " * 400 + "{request}",
    SlotSpec(Slot.DIGEST): "123",
}


async def seed(prompts: Prompts, community: str) -> None:
    for spec, text in TRICKY.items():
        await prompts.set_text(community, spec, text, OPS)
    await prompts.store.set_setting(community, "approval", "off", OPS)


@pytest.mark.parametrize("fmt", ["yaml", "toml"])
async def test_export_then_import_round_trips_byte_identical(redis: aioredis.Redis, fmt: Format) -> None:
    prompts = Prompts(redis, CATALOG)
    await seed(prompts, A)
    first = dump(await export_bundle(prompts, A), fmt)
    await redis.flushall()
    changes = await apply(prompts, A, load(first, fmt, CATALOG.names), OPS, "restore")
    assert len(changes) == len(TRICKY) + 1
    second = dump(await export_bundle(prompts, A), fmt)
    assert second.encode() == first.encode()
    for spec, text in TRICKY.items():  # and the texts themselves, byte for byte
        assert (await prompts.effective(A, spec.slot, spec.platform)).text.encode() == text.encode()
    assert await apply(prompts, A, load(second, fmt, CATALOG.names), OPS, "again") == []  # importing again: no new versions


async def test_import_into_another_community_copies_the_content(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    await seed(prompts, A)
    text = dump(await export_bundle(prompts, A), "yaml")
    await apply(prompts, "telegram:-100", load(text, "yaml", CATALOG.names), OPS, "copy")
    copied = dump(await export_bundle(prompts, "telegram:-100"), "yaml")
    assert copied == text.replace(f"community: {A}", "community: telegram:-100")


async def test_export_is_readable(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    await prompts.set_text(A, SlotSpec(Slot.PERSONA), "Line one.\nLine two.", OPS)
    text = dump(await export_bundle(prompts, A), "yaml")
    assert text.startswith("# Chorus prompts of one community.")
    assert (
        f"format: {FORMAT}\ncommunity: {A}\napproval: default\nprompts:\n  persona: |-\n    Line one.\n"
        in text
    )
    toml = dump(await export_bundle(prompts, A), "toml")
    assert 'persona = """\nLine one.\nLine two."""' in toml


async def test_import_makes_the_community_match_the_file(redis: aioredis.Redis) -> None:
    prompts = Prompts(redis, CATALOG)
    await prompts.set_text(A, SlotSpec(Slot.STYLE), "Old style.", OPS)
    await prompts.set_text(A, SlotSpec(Slot.PERSONA), "Same persona.", OPS)
    file = f"format: {FORMAT}\ncommunity: {A}\napproval: on\nprompts:\n  persona: Same persona.\n  rules: No spam.\n"
    dry = await apply(prompts, A, load(file, "yaml", CATALOG.names), OPS, "plan", dry_run=True)
    assert dry == [
        "rules: new text",
        "style: back to the default (not in the file)",
        "approval: default -> on",
    ]
    assert (await prompts.effective(A, Slot.STYLE)).text == "Old style."  # dry run changed nothing
    assert await apply(prompts, A, load(file, "yaml", CATALOG.names), OPS, "sync") == dry
    assert (await prompts.effective(A, Slot.STYLE)).version is None
    history, _ = await prompts.store.versions(A, SlotSpec(Slot.STYLE))
    assert [(v.op, v.default, v.reason) for v in history] == [("set", False, ""), ("import", True, "sync")]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("prompts: [", "not valid YAML"),
        ("- a list", "must be a mapping"),
        (f"format: other/9\ncommunity: {A}\nprompts: {{}}\n", "format must be"),
        (f"format: {FORMAT}\ncommunity: {A}\nextra: 1\n", "unknown keys: extra"),
        (f"format: {FORMAT}\ncommunity: 5\n", "community must be a string"),
        (f"format: {FORMAT}\ncommunity: {A}\napproval: maybe\n", "approval must be"),
        (f"format: {FORMAT}\ncommunity: {A}\nprompts: nope\n", "prompts must be a mapping"),
        (f"format: {FORMAT}\ncommunity: {A}\nprompts:\n  secrets: hi\n", "no prompt slot"),
        (f"format: {FORMAT}\ncommunity: {A}\nprompts:\n  persona: [1, 2]\n", "must be a string"),
        (
            f"format: {FORMAT}\ncommunity: {A}\nprompts:\n  post: '{{request.__class__}}'\n",
            "post: The post prompt",
        ),
        (f"format: {FORMAT}\ncommunity: {A}\nprompts:\n  digest: a\n  digest_summary: b\n", "listed twice"),
    ],
)
def test_invalid_files_are_refused_whole(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load(text, "yaml", CATALOG.names)
    assert fragment in caught.value.user_message


def test_every_bad_slot_is_reported_at_once() -> None:
    file = (
        f"format: {FORMAT}\ncommunity: {A}\nprompts:\n  persona: Fine.\n  rules: '{{{{ jinja }}}}'\n"
        "  post: '{nope}'\n"
    )
    with pytest.raises(InvalidInput, match="nothing changed") as caught:
        load(file, "yaml", CATALOG.names)
    message = caught.value.user_message
    assert "rules: The rules prompt was not accepted" in message and "Jinja" in message
    assert "post: The post prompt was not accepted" in message and "unknown variable" in message
    assert "persona" not in message.replace("Allowed", "")


def test_toml_errors_and_bare_yaml_booleans() -> None:
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load("prompts = [", "toml", CATALOG.names)
    assert load(f"format: {FORMAT}\ncommunity: {A}\napproval: on\n", "yaml", CATALOG.names).approval == "on"


@pytest.mark.parametrize("community", ["discord:123", "x:42", "console:local", "telegram:-1001"])
def test_community_names_that_are_accepted(community: str) -> None:
    assert check_community(community, CATALOG.names) == community


@pytest.mark.parametrize("community", ["discord", "mastodon:1", "discord:1}:x", "x:a b", "x:"])
def test_community_names_that_are_refused(community: str) -> None:
    with pytest.raises(InvalidInput, match="is not a community"):
        check_community(community, CATALOG.names)
