"""``prompt preview``: a candidate text tried on the community's last real requests (or a sample), unsaved.

The model belongs to the assistant, which provides a ``Previewer`` (``Services.previewer``): given the
moderator's Event, slot -> template overrides and a request, it writes a post exactly as a real request
would be written, without storing anything. The slots a post is written with (persona, style,
rules, post) are previewed through it; the others, and every slot when no assistant is installed, are
shown rendered with the request, which is what the model would be given.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from core.contract import Event
from core.errors import ChorusError
from core.ports import Previewer
from core.prompts.service import Prompts
from core.prompts.slots import Slot, SlotSpec, validate
from core.prompts.template import normalize

log = logging.getLogger(__name__)


RUN_SLOTS = frozenset({Slot.PERSONA, Slot.STYLE, Slot.RULES, Slot.POST})
"""Slots a post is written with, so a post preview shows their effect."""
PREVIEW_SAMPLES = 3
RUN_TIMEOUT_S = 60.0
SAMPLE_REQUEST = "our community meetup on Friday at 6 pm: everyone is welcome"
SAMPLE_VALUES: dict[str, str] = {
    "context": "(none)",
    "parts": "4",
    "message": "Is the meetup on Friday open to newcomers?",
    "draft": "Join us on Friday at 6 pm for our monthly meetup! Everyone is welcome.",
    "instruction": "shorter and more playful",
    "post": "Join us on Friday at 6 pm for our monthly meetup!",
    "items": "1. Meetup on Friday at 6 pm\n2. New member guide published\n3. Poll: next workshop topic",
    "count": "3",
    "period": "daily",
}


@dataclass(frozen=True, slots=True)
class PreviewCase:
    label: str  # "recent request 1" or "sample request"
    request: str
    output: str  # what the model wrote, or the rendered candidate when ``ran`` is False
    ran: bool


async def preview(
    prompts: Prompts,
    event: Event,
    spec: SlotSpec,
    candidate: str,
    composer: Previewer | None,
    *,
    samples: int = PREVIEW_SAMPLES,
) -> list[PreviewCase]:
    """Try ``candidate`` for ``spec`` on a few requests. Nothing is stored, not even the requests."""
    template = validate(spec.slot, candidate)
    recent = await prompts.store.recent(event.community_key, samples * 3)
    if spec.platform:  # requests written for that platform first (stable sort keeps newest first)
        recent.sort(key=lambda r: r.platform != spec.platform)
    requests = [(f"recent request {i}", r.text) for i, r in enumerate(recent[:samples], 1)]
    if not requests:
        requests = [("sample request", SAMPLE_REQUEST)]
    platform = spec.platform or event.platform
    out: list[PreviewCase] = []
    for label, request in requests:
        if composer is not None and spec.slot in RUN_SLOTS:
            output = await _run(composer, event, {spec.slot.value: normalize(candidate)}, request)
            out.append(PreviewCase(label, request, output, ran=True))
            continue
        values = {
            **SAMPLE_VALUES,
            "request": request,
            "community": event.community,
            "platform": platform,
            "max_chars": str(prompts.platforms.capabilities(platform).max_text),
            "bot_name": "Chorus",
        }
        out.append(PreviewCase(label, request, template.render(values), ran=False))
    return out


async def _run(composer: Previewer, event: Event, overrides: dict[str, str], request: str) -> str:
    try:
        return await asyncio.wait_for(composer(event, overrides, request), timeout=RUN_TIMEOUT_S)
    except TimeoutError:
        return f"(the model did not answer within {RUN_TIMEOUT_S:.0f} s)"
    except ChorusError as exc:
        return f"(no preview: {exc.user_message})"
    except Exception:
        log.exception("prompt preview run failed")
        return "(no preview: the model failed; see the logs)"
