"""Prompts as files: one community's prompts and settings in YAML or TOML, for operators who keep them in git.

A file holds the community's own texts in force (slots at their default are left out) and the approval
setting; no timestamps, so exporting the same state twice gives the same bytes. Importing validates the
whole file the way ``/prompt set`` does before changing anything, then makes the community match it:
listed slots whose text differs get a new version, customised slots the file leaves out go back to the
default. Every change is a normal, audited version, so an import can be rolled back like any edit.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import tomli_w
import yaml

from core.community import APPROVAL
from core.errors import InvalidInput
from core.prompts.service import Prompts
from core.prompts.slots import SlotSpec, slot_order, validate
from core.prompts.store import Editor
from core.prompts.template import TemplateError, normalize

FORMAT = "chorus-prompts/1"
Format = Literal["yaml", "toml"]
ApprovalChoice = Literal["on", "off", "default"]

HEADER = (
    "Chorus prompts of one community. Edit, keep in git, then: chorus prompts import <this file>\n"
    'Slots left out use the default; "style@x" is the style for texts published to X.\n'
)
_COMMUNITY = re.compile(r"^([a-z0-9_-]{1,32}):[^\s{}]{1,128}$")


@dataclass
class Bundle:
    community: str
    approval: ApprovalChoice = "default"
    prompts: dict[SlotSpec, str] = field(default_factory=dict)


def check_community(community: str, platforms: Collection[str]) -> str:
    """Operators name communities as ``<platform>:<id>``; anything else could not be a community key."""
    found = _COMMUNITY.match(community)
    if not found or found.group(1) not in platforms:
        raise InvalidInput(
            f"“{community[:80]}” is not a community: write <platform>:<id> with a platform among "
            f"{', '.join(sorted(platforms))} (e.g. discord:123456789 or console:local)."
        )
    return community


async def export_bundle(prompts: Prompts, community: str) -> Bundle:
    custom = await prompts.customized(community)
    setting = await prompts.store.setting(community, APPROVAL)
    approval: ApprovalChoice = "on" if setting == "on" else "off" if setting == "off" else "default"
    ordered = {spec: custom[spec].text for spec in sorted(custom, key=slot_order)}
    return Bundle(community, approval, ordered)


def dump(bundle: Bundle, fmt: Format) -> str:
    data: dict[str, Any] = {
        "format": FORMAT,
        "community": bundle.community,
        "approval": bundle.approval,
        "prompts": {spec.key: text for spec, text in bundle.prompts.items()},
    }
    comment = "".join(f"# {line}\n" for line in HEADER.splitlines())
    if fmt == "toml":
        return comment + tomli_w.dumps(data, multiline_strings=True)
    body = yaml.dump(
        data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1_000_000, default_flow_style=False
    )
    return comment + body


def load(text: str, fmt: Format, platforms: Collection[str]) -> Bundle:
    """Parse and validate a whole file; every problem is reported at once and nothing is applied."""
    try:
        data = tomllib.loads(text) if fmt == "toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"The file is not valid {fmt.upper()}: {_first_line(exc)}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("The file must be a mapping with format, community, approval and prompts.")
    problems: list[str] = []
    unknown = sorted(set(map(str, data)) - {"format", "community", "approval", "prompts"})
    if unknown:
        problems.append(f"unknown keys: {', '.join(unknown)}")
    if data.get("format") != FORMAT:
        problems.append(f"format must be “{FORMAT}” (found {data.get('format')!r})")
    community = data.get("community")
    if not isinstance(community, str):
        problems.append("community must be a string such as discord:123456789")
        community = ""
    approval = _approval(data.get("approval", "default"), problems)
    raw_prompts = data.get("prompts") or {}
    if not isinstance(raw_prompts, dict):
        problems.append("prompts must be a mapping of slot to text")
        raw_prompts = {}
    bundle = Bundle(community, approval)
    for key, value in raw_prompts.items():
        try:
            spec = SlotSpec.parse(str(key), platforms)
        except InvalidInput as exc:
            problems.append(exc.user_message)
            continue
        if spec in bundle.prompts:
            problems.append(f"{spec} is listed twice")
            continue
        if not isinstance(value, str):
            problems.append(f"{spec}: the text must be a string")
            continue
        try:
            validate(spec.slot, value)
        except TemplateError as exc:
            problems.append(f"{spec}: " + exc.user_message)
            continue
        bundle.prompts[spec] = normalize(value)
    if problems:
        raise InvalidInput("The file was not imported; nothing changed:\n- " + "\n- ".join(problems))
    return bundle


async def apply(
    prompts: Prompts, community: str, bundle: Bundle, editor: Editor, reason: str, *, dry_run: bool = False
) -> list[str]:
    """Make ``community`` match ``bundle``; returns what changed (or would, with ``dry_run``)."""
    changes: list[str] = []
    custom = await prompts.customized(community)
    for spec, text in bundle.prompts.items():
        current = custom.get(spec)
        if current is not None and current.text == text:
            continue
        changes.append(f"{spec}: {'new text' if current is None else f'changed (was v{current.number})'}")
        if not dry_run:
            await prompts.set_text(community, spec, text, editor, reason, op="import")
    for spec in sorted(set(custom) - set(bundle.prompts), key=slot_order):
        changes.append(f"{spec}: back to the default (not in the file)")
        if not dry_run:
            await prompts.reset(community, spec, editor, reason, op="import")
    setting = await prompts.store.setting(community, APPROVAL)
    if (setting or "default") != bundle.approval:
        changes.append(f"approval: {setting or 'default'} -> {bundle.approval}")
        if not dry_run:
            value = None if bundle.approval == "default" else bundle.approval
            await prompts.store.set_setting(community, APPROVAL, value, editor, reason)
    return changes


def format_of(path: str, explicit: str | None) -> Format:
    if explicit in ("yaml", "toml"):
        return explicit  # type: ignore[return-value]
    lowered = path.lower()
    if lowered.endswith(".toml"):
        return "toml"
    if lowered.endswith((".yaml", ".yml")) or path == "-":
        return "yaml"
    raise InvalidInput(f"Cannot tell the format of {path}: name it .yaml or .toml, or pass --format.")


def _approval(value: object, problems: list[str]) -> ApprovalChoice:
    if value is True or value == "on":  # YAML 1.1 reads a bare on/off as a boolean
        return "on"
    if value is False or value == "off":
        return "off"
    if value == "default":
        return "default"
    problems.append(f"approval must be on, off or default (found {value!r})")
    return "default"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


class _Dumper(yaml.SafeDumper):
    """Multi-line texts as literal blocks (readable diffs in git); PyYAML quotes them when a block can't."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
