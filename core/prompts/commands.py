"""The ``prompt`` command: moderators show, set, version, diff, roll back, reset and preview their prompts.

Every subcommand acts on ``event.community_key`` only; nothing a moderator types can name another
community. Moderator-only is checked by the router from the Event's moderator flag (which each adapter
fills from the platform's own roles) and again here, so a handler reached another way still refuses.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re

from core.commands import Command, Option
from core.community import APPROVAL
from core.contract import Action, Event, reply_to_event
from core.errors import InvalidInput, PermissionDenied
from core.features import Feature
from core.prompts.cli import CLI
from core.prompts.preview import PreviewCase, preview
from core.prompts.service import Effective, Prompts
from core.prompts.slots import Slot, SlotSpec, default, slot_order
from core.prompts.store import Editor, Version
from core.services import Services
from core.text import clean, truncate

ACTIONS = ("show", "set", "history", "diff", "rollback", "reset", "preview", "approval", "audit")
MAX_REASON = 200
HISTORY_SHOWN = 15

USAGE = """Prompt commands (moderators):
  /prompt show [slot] — the prompts in force (all, or one in full)
  /prompt set <slot> [-m "reason"] <text> — replace a prompt (a new version)
  /prompt history <slot> — its versions
  /prompt diff <slot> <v1> <v2> — what changed (versions, "default" or "current")
  /prompt rollback <slot> <version> [reason] — bring an earlier version back
  /prompt reset <slot> [reason] — back to the default
  /prompt preview <slot> <text> — try a text on recent requests without saving it
  /prompt approval [on|off|default] — moderator approval before drafts are published
  /prompt audit — the latest changes
Slots: {slots}. Add @<platform> for a platform of its own, e.g. style@x."""

_REASON = re.compile(r"^(?:-m|--reason)(?:\s+|=)(?:\"([^\"\n]*)\"|'([^'\n]*)'|“([^”\n]*)”|(\S+))\s*")
_HEAD = re.compile(r"^\s*(\S+)\s*(.*)$", re.DOTALL)


async def install(svc: Services) -> None:
    svc.commands.register(
        Command(
            "prompt",
            "show and change this community's prompts",
            "prompt show|set|history|diff|rollback|reset|preview|approval|audit ...",
            handle,
            moderator_only=True,
            options=(
                Option("action", "what to do", required=True, choices=ACTIONS),
                Option("slot", "which prompt, e.g. persona or style@x"),
                Option("text", "the text, versions or reason", rest=True),
            ),
            group="prompts",
        )
    )


async def handle(event: Event, svc: Services) -> list[Action]:
    if not event.author.is_moderator:
        raise PermissionDenied("Only moderators of this community can see or change its prompts.")
    prompts = svc.prompts
    action, rest = _split(event.args)
    action = action.lower()
    community = event.community_key
    if action in ("", "help"):
        return _say(event, USAGE.format(slots=", ".join(s.value for s in Slot)))
    if action == "show":
        text = await _show(prompts, community, rest) if rest else await _overview(prompts, community)
    elif action == "approval":
        text = await _approval(prompts, event, rest)
    elif action == "audit":
        text = await _audit(prompts, community)
    elif action in ACTIONS:
        spec_text, rest = _split(rest)
        if not spec_text:
            raise InvalidInput(f"Which prompt? Use /prompt {action} <slot> … (see /prompt help).")
        spec = SlotSpec.parse(spec_text, prompts.platforms.names)
        editor = Editor(id=event.author.id, name=event.author.name, platform=event.platform)
        match action:
            case "set":
                reason, body = _take_reason(rest)
                version = await prompts.set_text(community, spec, body, editor, reason)
                text = f"The {spec} prompt is now v{version.number}." + _note_platform(spec)
            case "history":
                text = await _history(prompts, community, spec)
            case "diff":
                text = await _diff(prompts, community, spec, rest)
            case "rollback":
                number_text, rest = _split(rest)
                number = _version_number(number_text, spec)
                version = await prompts.rollback(community, spec, number, editor, _reason(rest))
                text = f"The {spec} prompt is back to the text of v{number} (recorded as v{version.number})."
            case "reset":
                reset = await prompts.reset(community, spec, editor, _reason(rest))
                text = (
                    f"The {spec} prompt was already the default; nothing changed."
                    if reset is None
                    else f"The {spec} prompt is back to the default (recorded as v{reset.number})."
                )
            case _:  # preview
                if not rest.strip():
                    raise InvalidInput(f"Give the text to try: /prompt preview {spec} <text>.")
                cases = await preview(prompts, event, spec, rest, svc.previewer.optional())
                text = _render_preview(spec, cases)
    else:
        raise InvalidInput(f"Unknown prompt action “{action[:24]}”. " + "Use one of: " + ", ".join(ACTIONS))
    return _say(event, text)


# -- subcommands --------------------------------------------------------------------------------
async def _overview(prompts: Prompts, community: str) -> str:
    custom = await prompts.customized(community)
    lines = [f"Prompts of this community ({community}):"]
    for slot in Slot:
        general = custom.get(SlotSpec(slot))
        lines.append(f"  {slot.value:<8} {_describe(general)}")
        for spec in sorted((s for s in custom if s.slot is slot and s.platform), key=slot_order):
            lines.append(f"  {spec.key:<8} {_describe(custom[spec])}")
    lines.append("")
    lines.append(await _approval_line(prompts, community))
    lines.append("Full text: /prompt show <slot>. All commands: /prompt help.")
    return "\n".join(lines)


def _describe(version: Version | None) -> str:
    if version is None:
        return "default"
    return f"v{version.number} by {version.editor}, {_when(version.at)} — {truncate(version.text, 60)}"


async def _show(prompts: Prompts, community: str, spec_text: str) -> str:
    spec = SlotSpec.parse(spec_text.split()[0], prompts.platforms.names)
    effective = await prompts.effective(community, spec.slot, spec.platform)
    info = default(spec.slot.value)
    variables = " ".join(f"{{{n}}}" for n in info.variables) or "none"
    lines = [f"{spec} — {info.summary}"]
    if spec.platform and (effective.spec is None or effective.spec.platform is None):
        lines.append(f"No text of its own for {spec.platform}; in force there: {_source(effective)}.")
    else:
        lines.append(f"In force: {_source(effective)}.")
    lines.append(f"Variables: {variables}. Limit: {info.max_chars:,} characters.")
    lines.append("")
    lines.append(effective.text)
    return "\n".join(lines)


def _source(effective: Effective) -> str:
    version = effective.version
    if version is None or effective.spec is None:
        return "the default"
    reason = f" — “{version.reason}”" if version.reason else ""
    return f"{effective.spec} v{version.number}, by {version.editor}, {_when(version.at)}{reason}"


async def _history(prompts: Prompts, community: str, spec: SlotSpec) -> str:
    versions, current = await prompts.store.versions(community, spec)
    if not versions:
        return f"The {spec} prompt has never been changed here; the default is in force."
    lines = [f"History of {spec} (newest first):"]
    for version in reversed(versions[-HISTORY_SHOWN:]):
        marker = " ← in force" if version.number == current else ""
        what = {
            "set": "set",
            "import": "imported",
            "reset": "reset to default",
            "rollback": f"rollback to v{version.from_version}",
        }.get(version.op, version.op)
        if version.op == "import" and version.default:
            what = "imported (default)"
        reason = f" — “{version.reason}”" if version.reason else ""
        lines.append(f"  v{version.number}{marker} · {_when(version.at)} · {version.editor} · {what}{reason}")
        lines.append(f"      {truncate(version.text.replace(chr(10), ' '), 80)}")
    if len(versions) > HISTORY_SHOWN:
        lines.append(f"  … {len(versions) - HISTORY_SHOWN} older versions")
    lines.append(f"Compare: /prompt diff {spec} <v1> <v2>. Restore: /prompt rollback {spec} <version>.")
    return "\n".join(lines)


async def _diff(prompts: Prompts, community: str, spec: SlotSpec, rest: str) -> str:
    words = rest.split()
    if len(words) != 2:
        raise InvalidInput(f"Use /prompt diff {spec} <v1> <v2> (versions, “default” or “current”).")
    (name_a, text_a), (name_b, text_b) = [await _text_of(prompts, community, spec, w) for w in words]
    if text_a == text_b:
        return f"{name_a} and {name_b} of {spec} have the same text."
    return f"Changes in {spec} from {name_a} to {name_b}:\n" + diff_text(text_a, text_b, name_a, name_b)


async def _text_of(prompts: Prompts, community: str, spec: SlotSpec, word: str) -> tuple[str, str]:
    word = word.lower()
    if word == "default":
        return "the default", default(spec.slot.value).text
    if word in ("current", "now"):
        effective = await prompts.effective(community, spec.slot, spec.platform)
        return "the current text", effective.text
    number = _version_number(word, spec)
    version = await prompts.store.get(community, spec, number)
    if version is None:
        raise InvalidInput(f"The {spec} prompt has no version {number}. See /prompt history {spec}.")
    return f"v{number}", version.text


def diff_text(a: str, b: str, name_a: str, name_b: str) -> str:
    """A line diff; prompts are often one long line, so short texts get a word diff instead."""
    lines_a, lines_b = a.splitlines(), b.splitlines()
    if max(len(lines_a), len(lines_b)) <= 3:
        words_a, words_b = a.split(" "), b.split(" ")
        out: list[str] = []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, words_a, words_b).get_opcodes():
            if op == "equal":
                out.append(" ".join(words_a[i1:i2]))
                continue
            if i2 > i1:
                out.append("[-" + " ".join(words_a[i1:i2]) + "-]")
            if j2 > j1:
                out.append("{+" + " ".join(words_b[j1:j2]) + "+}")
        return " ".join(out) + "\n([-removed-] {+added+})"
    return "\n".join(difflib.unified_diff(lines_a, lines_b, name_a, name_b, lineterm="", n=2))


async def _approval(prompts: Prompts, event: Event, rest: str) -> str:
    community = event.community_key
    choice = rest.strip().lower()
    if not choice:
        return await _approval_line(prompts, community) + "\nChange it: /prompt approval on|off|default."
    if choice not in ("on", "off", "default"):
        raise InvalidInput("Use /prompt approval on, off or default.")
    editor = Editor(id=event.author.id, name=event.author.name, platform=event.platform)
    await prompts.store.set_setting(community, APPROVAL, None if choice == "default" else choice, editor)
    return await _approval_line(prompts, community)


async def _approval_line(prompts: Prompts, community: str) -> str:
    value = await prompts.store.setting(community, APPROVAL)
    if value == "on":
        return "Approval before publishing: on (a moderator approves every draft before it is published)."
    if value == "off":
        return "Approval before publishing: off (drafts can be published without a moderator)."
    where = ", ".join(f.label for f in prompts.platforms if f.approval_by_default) or "no platform"
    return f"Approval before publishing: default (required for posts to {where}, not elsewhere)."


async def _audit(prompts: Prompts, community: str) -> str:
    entries = await prompts.store.audit(community)
    if not entries:
        return "No prompt or setting has been changed in this community yet."
    lines = ["Latest changes (newest first):"]
    for entry in entries:
        what = entry.spec if entry.version is None else f"{entry.spec} v{entry.version}"
        detail = f" = {entry.detail}" if entry.detail else ""
        reason = f" — “{entry.reason}”" if entry.reason else ""
        lines.append(f"  {_when(entry.at)} · {entry.editor} · {entry.op} {what}{detail}{reason}")
    return "\n".join(lines)


def _render_preview(spec: SlotSpec, cases: list[PreviewCase]) -> str:
    lines = [f"Preview of {spec} (not saved), on {_count(cases)}:"]
    for case in cases:
        lines.append("")
        lines.append(f"— {case.label}: “{truncate(' '.join(case.request.split()), 80)}”")
        if case.ran:
            lines.append(truncate(case.output.strip(), 1200))
        else:
            lines.append(f"The {spec.slot} prompt the model would get:")
            lines.append(truncate(case.output.strip(), 1200))
    if cases and not cases[0].ran:
        lines.append("")
        lines.append(
            "(Shown as the model would receive it: previews write a post with the model for "
            "persona, style, rules and post, when the assistant is available.)"
        )
    lines.append(f"Save it with /prompt set {spec} <text>.")
    return "\n".join(lines)


def _count(cases: list[PreviewCase]) -> str:
    if cases and cases[0].label.startswith("sample"):
        return "a sample request (this community has no recent requests)"
    return f"{len(cases)} recent request" + ("s" if len(cases) != 1 else "")


# -- parsing ------------------------------------------------------------------------------------
def _split(text: str) -> tuple[str, str]:
    m = _HEAD.match(text)
    return (m.group(1), m.group(2)) if m else ("", "")


def _take_reason(text: str) -> tuple[str, str]:
    """An optional leading ``-m "reason"``; returns (reason, the rest)."""
    m = _REASON.match(text.lstrip())
    if not m:
        return "", text
    reason = next(g for g in m.groups() if g is not None)
    return _check_reason(reason), text.lstrip()[m.end() :]


def _reason(text: str) -> str:
    """Rollback and reset take the rest as the reason, with or without ``-m``."""
    reason, rest = _take_reason(text)
    return reason or _check_reason(rest)


def _check_reason(reason: str) -> str:
    reason = " ".join(clean(reason).split())  # one line, no control or invisible characters
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"Keep the reason to one line of at most {MAX_REASON} characters.")
    return reason


def _version_number(word: str, spec: SlotSpec) -> int:
    digits = word.lower().removeprefix("v")
    if not digits.isdigit() or int(digits) < 1:
        raise InvalidInput(f"“{word[:16]}” is not a version number. See /prompt history {spec}.")
    return int(digits)


def _note_platform(spec: SlotSpec) -> str:
    if spec.platform:
        return f" It is used for texts published to {spec.platform}; elsewhere {spec.slot} is used."
    return ""


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _say(event: Event, text: str) -> list[Action]:
    return [reply_to_event(event, text)]


FEATURE = Feature("prompts", install, cli=(CLI,))
