"""The prompt slots and their defaults, which are data files in ``core/prompts/defaults/``.

Each file documents its variables and its size limit in a ``#`` header that ends with a dashed line; the
template follows. The header is the whitelist: changing a default, its variables or its limit is editing a
file, never Python. A slot may be kept per target platform inside a community (``style@x``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

from core.errors import ConfigError, InvalidInput
from core.prompts.template import Template, TemplateError, normalize, parse

"""Target platforms a slot can be overridden for (the names adapters use as ``Event.platform``)."""


class Slot(StrEnum):
    PERSONA = "persona"
    STYLE = "style"
    RULES = "rules"
    POST = "post"
    THREAD = "thread"
    REPLY = "reply"
    REVISE = "revise"
    IMAGE = "image"
    DIGEST = "digest"


SYSTEM_SLOTS = (Slot.PERSONA, Slot.STYLE, Slot.RULES)
"""Composed, in this order, into the system prompt of every task."""
TASK_SLOTS = (Slot.POST, Slot.THREAD, Slot.REPLY, Slot.REVISE, Slot.IMAGE, Slot.DIGEST)
"""One of these is the user message of a request."""
ALIASES = {"digest_summary": Slot.DIGEST, "summary": Slot.DIGEST}

_VARIABLE = re.compile(r"^#\s+\{([a-z][a-z0-9_]*)\}\s+(.+?)\s*$")
_LIMIT = re.compile(r"^#\s*Limit:\s*([\d,]+)\s*characters", re.IGNORECASE)
_END = re.compile(r"^#\s*-{3,}\s*$")


@dataclass(frozen=True, slots=True)
class Default:
    """A default template file: what the slot is for, its variables (name -> meaning) and limit."""

    name: str
    summary: str
    variables: dict[str, str]
    max_chars: int
    text: str
    template: Template


@functools.cache
def default(name: str) -> Default:
    """Load ``defaults/<name>.txt`` (a slot or ``guard``); a malformed default is an operator error."""
    try:
        raw = (resources.files("core.prompts") / "defaults" / f"{name}.txt").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"default prompt file defaults/{name}.txt is missing") from exc
    return _parse_default(name, raw)


def _parse_default(name: str, raw: str) -> Default:
    lines = raw.splitlines()
    end = next((i for i, line in enumerate(lines) if _END.match(line)), None)
    if end is None:
        raise ConfigError(f"defaults/{name}.txt has no '# ----' line between its header and its template")
    header = lines[:end]
    variables = {m.group(1): m.group(2) for m in map(_VARIABLE.match, header) if m}
    limits = [int(m.group(1).replace(",", "")) for m in map(_LIMIT.match, header) if m]
    if not limits:
        raise ConfigError(f"defaults/{name}.txt does not state its limit ('# Limit: N characters.')")
    summary = header[0].lstrip("# ").split(":", 1)[-1].strip() if header else name
    text = normalize("\n".join(lines[end + 1 :]))
    try:
        template = parse(text, slot=name, allowed=variables, max_chars=limits[0])
    except TemplateError as exc:
        raise ConfigError(f"defaults/{name}.txt is not a valid template: {exc.user_message}") from exc
    return Default(name, summary, variables, limits[0], text, template)


def validate(slot: Slot, text: str) -> Template:
    """Check a moderator's text for ``slot`` against the slot's whitelist and limit (TemplateError if not)."""
    return _validated(slot, normalize(text))


@functools.lru_cache(maxsize=1024)
def _validated(slot: Slot, text: str) -> Template:
    """Stored texts are re-checked on every read; parsing each distinct text once keeps that cheap."""
    spec = default(slot.value)
    return parse(text, slot=slot.value, allowed=spec.variables, max_chars=spec.max_chars)


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """A slot, optionally for one target platform: ``style`` or ``style@x``."""

    slot: Slot
    platform: str | None = None

    @property
    def key(self) -> str:
        return f"{self.slot.value}@{self.platform}" if self.platform else self.slot.value

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, text: str, platforms: Collection[str] | None) -> SlotSpec:
        """Parse what a moderator typed; only known slots and ``platforms`` get through (they become keys).
        ``None`` reads back a key that was checked when it was written."""
        raw = text.strip().lower()
        name, _, platform = raw.partition("@")
        slot = ALIASES.get(name) or next((s for s in Slot if s.value == name), None)
        if slot is None:
            names = ", ".join(s.value for s in Slot)
            raise InvalidInput(f"There is no prompt slot “{text.strip()[:32]}”. Slots: {names}.")
        if "@" in raw and platforms is not None and platform not in platforms:
            raise InvalidInput(
                f"“{platform[:32]}” is not a platform. Per-platform prompts are written "
                f"{slot.value}@<platform>, with one of: {', '.join(sorted(platforms))}."
            )
        return cls(slot, platform or None)


def slot_order(spec: SlotSpec) -> tuple[int, str]:
    """Slots in their natural order, general before per-platform."""
    return (list(Slot).index(spec.slot), spec.platform or "")
