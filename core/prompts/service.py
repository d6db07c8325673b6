"""What the rest of Chorus uses: the prompts in force for a community, and the moderators' changes to them.

The assistant reads ``effective_all`` for every request and composes the system prompt from persona, style
and rules (rules always included, in code), filling the task template with the member's words as data.
Resolution per slot: the community's text for the target platform (``style@x``), else the community's
text, else the default file. A stored text that no longer validates (a default file dropped a variable)
is skipped with a warning rather than rendered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from core.catalog import PlatformCatalog
from core.errors import InvalidInput
from core.prompts.slots import Slot, SlotSpec, default, validate
from core.prompts.store import Editor, PromptStore, RecentRequest, Version
from core.prompts.template import Template, TemplateError, normalize

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Effective:
    """The template in force for one slot, and where it came from."""

    slot: Slot
    text: str
    template: Template
    spec: SlotSpec | None = None  # the community's slot key that supplied it; None = the default file
    version: Version | None = None


class Prompts:
    """Each community's prompts and settings (``Services.prompts``); the prompt commands change them, the
    assistant reads them. ``platforms`` decides which per-platform overrides (``style@x``) exist."""

    def __init__(self, redis: aioredis.Redis, platforms: PlatformCatalog) -> None:
        self.store = PromptStore(redis)
        self.platforms = platforms
        for slot in Slot:  # a broken default file fails at start-up, not in the middle of a request
            default(slot.value)
        default("guard")

    # -- reading (the assistant) ---------------------------------------------------------------
    async def effective(self, community: str, slot: Slot, platform: str | None = None) -> Effective:
        """The template in force for ``slot`` when writing for ``platform`` in ``community``."""
        return (await self._resolve(community, (slot,), platform))[slot]

    async def effective_all(self, community_key: str, platform: str | None = None) -> dict[str, str]:
        """Slot name -> template text in force for texts published to ``platform`` (one Redis round trip)."""
        resolved = await self._resolve(community_key, tuple(Slot), platform)
        return {slot.value: effective.text for slot, effective in resolved.items()}

    async def _resolve(
        self, community: str, slots: tuple[Slot, ...], platform: str | None
    ) -> dict[Slot, Effective]:
        target = platform or _platform_of(community)
        levels = {slot: (SlotSpec(slot, target), SlotSpec(slot)) for slot in slots}
        heads = await self.store.heads(community, [spec for pair in levels.values() for spec in pair])
        out: dict[Slot, Effective] = {}
        for slot, specs in levels.items():
            out[slot] = self._first_valid(community, slot, [(s, heads.get(s)) for s in specs])
        return out

    @staticmethod
    def _first_valid(
        community: str, slot: Slot, candidates: list[tuple[SlotSpec, Version | None]]
    ) -> Effective:
        for spec, version in candidates:
            if version is None or version.default:
                continue
            try:
                return Effective(slot, version.text, validate(slot, version.text), spec, version)
            except TemplateError as exc:  # a default file dropped a variable since this was stored
                log.warning(
                    "%s %s v%d is no longer valid (%s); using the next level",
                    community,
                    spec,
                    version.number,
                    exc.problems[:1],
                )
        spec_default = default(slot.value)
        return Effective(slot, spec_default.text, spec_default.template)

    async def remember_request(self, community_key: str, request: str, platform: str | None = None) -> None:
        """Keep a real request briefly, so ``prompt preview`` can replay it with a candidate text."""
        text = request.strip()
        if text:
            target = platform or _platform_of(community_key)
            await self.store.remember(community_key, RecentRequest(text=text, platform=target))

    # -- changing (callers check that the editor moderates ``community``) --------------------------
    async def check(self, community: str, spec: SlotSpec, text: str) -> str:
        """What ``set_text`` would store, or the InvalidInput it would refuse with (the web app's live
        check of a prompt being edited asks exactly this)."""
        text = normalize(text)
        if not text:
            raise InvalidInput(f"Give the new text: /prompt set {spec} <text>.")
        validate(spec.slot, text)
        head = await self.store.head(community, spec)
        if head is not None and not head.default and head.text == text:
            raise InvalidInput(f"The {spec} prompt already has exactly this text (v{head.number}).")
        return text

    async def set_text(
        self,
        community: str,
        spec: SlotSpec,
        text: str,
        editor: Editor,
        reason: str = "",
        *,
        op: Literal["set", "import"] = "set",
    ) -> Version:
        """Validate and store a new version; an unchanged text is refused so history stays meaningful."""
        text = await self.check(community, spec, text)
        version = Version(text=text, op=op, editor=editor, reason=reason)
        return await self.store.append(community, spec, version)

    async def rollback(
        self, community: str, spec: SlotSpec, number: int, editor: Editor, reason: str = ""
    ) -> Version:
        """Make an earlier version current again (as a new version that copies it)."""
        old = await self.store.get(community, spec, number)
        if old is None:
            raise InvalidInput(f"The {spec} prompt has no version {number}. See /prompt history {spec}.")
        head = await self.store.head(community, spec)
        if head is not None and head.number == number:
            raise InvalidInput(f"v{number} is already the {spec} prompt in force.")
        if not old.default:
            validate(spec.slot, old.text)  # a default file may have changed its variables since
        version = Version(
            text=default(spec.slot.value).text if old.default else old.text,
            default=old.default,
            op="rollback",
            editor=editor,
            reason=reason,
            from_version=number,
        )
        return await self.store.append(community, spec, version)

    async def reset(
        self,
        community: str,
        spec: SlotSpec,
        editor: Editor,
        reason: str = "",
        *,
        op: Literal["reset", "import"] = "reset",
    ) -> Version | None:
        """Return the slot to the default (None if it already was: nothing changes)."""
        head = await self.store.head(community, spec)
        if head is None or head.default:
            return None
        version = Version(
            text=default(spec.slot.value).text, default=True, op=op, editor=editor, reason=reason
        )
        return await self.store.append(community, spec, version)

    async def customized(self, community: str) -> dict[SlotSpec, Version]:
        """The community's own texts in force (slots at their default are left out)."""
        out: dict[SlotSpec, Version] = {}
        for spec in await self.store.specs(community):
            head = await self.store.head(community, spec)
            if head is not None and not head.default:
                out[spec] = head
        return out


def _platform_of(community: str) -> str:
    return community.partition(":")[0]
