"""The "more like this" / "less like this" choices a digest ends with, and where they are offered.
Pressing one runs ``personal.press`` (registered under these verbs by the feed's install)."""

from __future__ import annotations

from collections.abc import Sequence

from core.contract import Capabilities, Choice
from core.feed.items import Story

MORE = "fmore"  # choice verbs: ``fmore:<story id>`` / ``fless:<story id>`` (under Telegram's 64 bytes)
LESS = "fless"


def offers_feedback(caps: Capabilities) -> bool:
    """Buttons where the platform has them; numbered choices in chats without native threads (the console);
    never on thread platforms (X), where a digest is a public post and a numbered list would be noise."""
    return caps.buttons or not caps.threads


def feedback_choices(stories: Sequence[Story]) -> tuple[Choice, ...]:
    return tuple(
        choice
        for n, story in enumerate(stories, 1)
        for choice in (
            Choice(label=f"👍 More like {n}", payload=f"{MORE}:{story.id}"),
            Choice(label=f"👎 Less like {n}", payload=f"{LESS}:{story.id}"),
        )
    )
