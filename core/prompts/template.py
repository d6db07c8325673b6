"""Strict ``{variable}`` templates for text written by moderators, who are untrusted.

Why not ``str.format`` or Jinja: both can reach attributes (``{x.__class__}``), index (``{x[0]}``) or run
expressions, and a template is stored and rendered later in a worker. Here a template is parsed once by a
small tokenizer that knows exactly one construct, ``{name}`` with ``name`` in the slot's whitelist; anything
else that involves a brace is an error that names the problem, where it is and which variables are allowed.
Values are inserted verbatim and never parsed again, so a member's ``{request}`` text cannot inject fields.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.errors import InvalidInput

MAX_FIELDS = 40  # placeholders in one template: bounds how far a template can amplify its inputs
MAX_PROBLEMS = 4  # problems listed in one error message

_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
# Invisible, direction-changing or control characters hide text from the moderator reading a template
# (tag characters U+E0000.. are a known way to smuggle instructions to models). Zero-width (non-)joiners
# stay allowed: emoji sequences need them.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ALLOWED_CONTROLS = frozenset("\n\t\u200c\u200d")


class TemplateError(InvalidInput):
    """A template was refused; ``problems`` lists each reason (the message joins them for the user)."""

    def __init__(self, slot: str, problems: list[str], allowed: Iterable[str]) -> None:
        self.slot = slot
        self.problems = problems
        names = sorted(allowed)
        allowed_text = " ".join(f"{{{n}}}" for n in names) if names else "none"
        listed = problems[:MAX_PROBLEMS]
        more = f" (and {len(problems) - len(listed)} more)" if len(problems) > len(listed) else ""
        body = "; ".join(listed)
        super().__init__(
            f"The {slot} prompt was not accepted: {body}{more}. Allowed variables for {slot}: {allowed_text}."
        )


@dataclass(frozen=True, slots=True)
class Field:
    name: str


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and fields, in order."""

    parts: tuple[str | Field, ...]

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(p.name for p in self.parts if isinstance(p, Field))

    def render(self, values: Mapping[str, object]) -> str:
        """Insert values verbatim; a whitelisted variable the caller did not supply renders empty."""
        return "".join(p if isinstance(p, str) else _value(values.get(p.name)) for p in self.parts)


def _value(value: object) -> str:
    return "" if value is None else str(value)


def normalize(text: str) -> str:
    """The form every stored template has: Unix newlines, no surrounding whitespace."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def parse(text: str, *, slot: str, allowed: Iterable[str], max_chars: int) -> Template:
    """Validate ``text`` (already normalised) for ``slot`` and return its parsed form, or raise TemplateError."""
    allowed_set = frozenset(allowed)
    problems = _check_characters(text, max_chars)
    if problems:  # positions inside a text with hidden characters or of a huge size are not worth parsing
        raise TemplateError(slot, problems, allowed_set)
    parts, problems = _tokenize(text, allowed_set)
    fields = sum(1 for p in parts if isinstance(p, Field))
    if fields > MAX_FIELDS:
        problems.append(f"it uses {fields} placeholders; at most {MAX_FIELDS} are allowed")
    if problems:
        raise TemplateError(slot, problems, allowed_set)
    return Template(tuple(parts))


def _check_characters(text: str, max_chars: int) -> list[str]:
    if not text.strip():
        return ["it is empty (use `prompt reset` to go back to the default)"]
    if len(text) > max_chars:
        return [f"it is {len(text):,} characters long; the limit for this prompt is {max_chars:,}"]
    problems: list[str] = []
    seen: set[str] = set()
    for index, ch in enumerate(text):
        if ch in seen or ch in _ALLOWED_CONTROLS or unicodedata.category(ch) not in _FORBIDDEN_CATEGORIES:
            continue
        seen.add(ch)
        line, col = _position(text, index)
        name = unicodedata.name(ch, "")
        label = f"U+{ord(ch):04X}" + (f" ({name})" if name else "")
        problems.append(f"line {line}, column {col}: it contains the invisible or control character {label}")
    return problems


def _tokenize(text: str, allowed: frozenset[str]) -> tuple[list[str | Field], list[str]]:
    parts: list[str | Field] = []
    problems: list[str] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch not in "{}":
            literal.append(ch)
            i += 1
            continue
        line, col = _position(text, i)
        where = f"line {line}, column {col}:"
        if ch == "}":
            pair = text.startswith("}}", i)
            problems.append(
                f"{where} “}}}}” looks like Jinja syntax, which is not supported"
                if pair
                else f"{where} a “}}” closes nothing (braces are only for {{variable}})"
            )
            i += 2 if pair else 1
            continue
        jinja = text[i : i + 2]
        if jinja in ("{{", "{%", "{#"):
            problems.append(
                f"{where} “{jinja}” looks like Jinja syntax, which is not supported; use {{name}}"
            )
            closer = {"{{": "}}", "{%": "%}", "{#": "#}"}[jinja]
            end = text.find(closer, i + 2)
            i = end + 2 if end != -1 else i + 2
            continue
        close = text.find("}", i + 1)
        reopen = text.find("{", i + 1)
        if close == -1:
            problems.append(f"{where} a “{{” is never closed")
            i += 1
            continue
        if reopen != -1 and reopen < close:
            end = _matching_close(text, i)
            problems.append(f"{where} nested braces are not allowed")
            i = end + 1 if end != -1 else reopen
            continue
        inner = text[i + 1 : close]
        problem = _field_problem(inner, allowed)
        if problem:
            problems.append(f"{where} {problem}")
        else:
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(Field(inner))
        i = close + 1
    if literal:
        parts.append("".join(literal))
    return parts, problems


def _field_problem(inner: str, allowed: frozenset[str]) -> str | None:
    shown = _shorten(inner)
    if inner == "":
        return "empty braces “{}”"
    if inner != inner.strip():
        return f"“{{{shown}}}” has spaces inside the braces (write {{{inner.strip()}}})"
    if "." in inner:
        return f"“{{{shown}}}” uses attribute access, which is not allowed"
    if "[" in inner or "]" in inner:
        return f"“{{{shown}}}” uses indexing, which is not allowed"
    if "(" in inner or ")" in inner:
        return f"“{{{shown}}}” looks like a call, which is not allowed"
    if "!" in inner:
        return f"“{{{shown}}}” uses a conversion (!r/!s/!a), which is not allowed"
    if ":" in inner:
        return f"“{{{shown}}}” has a format spec, which is not allowed"
    if "=" in inner:
        return f"“{{{shown}}}” has an expression, which is not allowed"
    if inner.isdigit():
        return f"numbered field “{{{shown}}}” is not allowed; use a variable name"
    if not _NAME.match(inner):
        lower = inner.lower()
        hint = f" (did you mean {{{lower}}}?)" if lower in allowed else ""
        return f"“{{{shown}}}” is not a valid variable name{hint}"
    if inner not in allowed:
        return f"unknown variable “{{{shown}}}”"
    return None


def _matching_close(text: str, start: int) -> int:
    """Index of the brace that closes the one at ``start``, counting nesting; -1 if none."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
