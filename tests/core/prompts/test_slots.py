from __future__ import annotations

import re
from importlib import resources

import pytest

from core.errors import ConfigError, InvalidInput
from core.prompts.slots import Slot, SlotSpec, _parse_default, default, slot_order
from tests.support import CATALOG

DEFAULTS = resources.files("core.prompts") / "defaults"


@pytest.mark.parametrize("name", [*(s.value for s in Slot), "guard"])
def test_each_default_is_a_file_that_documents_its_variables_and_limit(name: str) -> None:
    raw = (DEFAULTS / f"{name}.txt").read_text(encoding="utf-8")
    spec = default(name)
    used = set(re.findall(r"\{([a-z_]+)\}", spec.text))
    assert used <= set(spec.variables), "the template uses a variable its header does not document"
    for variable, meaning in spec.variables.items():
        assert f"{{{variable}}}" in raw and meaning
    assert f"Limit: {spec.max_chars} characters" in raw
    assert spec.text and len(spec.text) <= spec.max_chars
    assert spec.summary


def test_the_system_and_task_slots_are_all_there() -> None:
    assert [s.value for s in Slot] == [
        "persona",
        "style",
        "rules",
        "post",
        "thread",
        "reply",
        "revise",
        "image",
        "digest",
    ]


def test_a_default_that_breaks_the_rules_is_an_operator_error() -> None:
    raw = "# x: broken\n#   {request}  the request\n# Limit: 100 characters.\n# ----\n{request.__class__}\n"
    with pytest.raises(ConfigError, match="not a valid template"):
        _parse_default("x", raw)
    with pytest.raises(ConfigError, match="no '# ----' line"):
        _parse_default("x", "# header only\n")
    with pytest.raises(ConfigError, match="limit"):
        _parse_default("x", "# no limit\n# ----\ntext\n")


def test_changing_a_default_is_editing_its_file() -> None:
    raw = "# post: test\n#   {topic}  what\n# Limit: 50 characters.\n# ----\nAbout {topic}.\n"
    parsed = _parse_default("post", raw)
    assert parsed.variables == {"topic": "what"} and parsed.max_chars == 50
    assert parsed.template.render({"topic": "cats"}) == "About cats."


@pytest.mark.parametrize(
    ("text", "key"),
    [("persona", "persona"), ("Style@X", "style@x"), (" rules ", "rules"), ("digest_summary", "digest")],
)
def test_slot_specs_parse(text: str, key: str) -> None:
    assert SlotSpec.parse(text, CATALOG.names).key == key


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nope", "no prompt slot"),
        ("style@mastodon", "not a platform"),
        ("style@", "not a platform"),
        ("persona}:x", "no prompt slot"),
        ("../persona", "no prompt slot"),
        ("style@x}:{c:discord:2", "not a platform"),
    ],
)
def test_slot_specs_only_let_known_names_through(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        SlotSpec.parse(text, CATALOG.names)


def test_slot_order_puts_general_before_platform_specific() -> None:
    specs = [SlotSpec(Slot.STYLE, "x"), SlotSpec(Slot.POST), SlotSpec(Slot.STYLE), SlotSpec(Slot.PERSONA)]
    assert [s.key for s in sorted(specs, key=slot_order)] == ["persona", "style", "style@x", "post"]
