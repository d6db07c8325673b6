"""Builders shared by the feed tests."""

from __future__ import annotations

import itertools
import time
from typing import Any

from core.feed.items import FeedItem

_ids = itertools.count(1)


def item(
    text: str, platform: str = "telegram", community: str = "-1001", channel: str = "news", **kw: Any
) -> FeedItem:
    defaults: dict[str, Any] = {
        "message_id": str(next(_ids)),
        "author_id": "u1",
        "author_name": "Ada",
        "created_at": time.time(),
    }
    defaults.update(kw)
    return FeedItem(platform=platform, community=community, channel=channel, text=text, **defaults)


class CountingSummarizer:
    """Stands in for the assistant's summarizer: counts calls, answers with a marked first sentence."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts: list[str] = []

    async def __call__(self, text: str, *, max_chars: int) -> str:
        self.calls += 1
        self.texts.append(text)
        first = " ".join(text.split())[: max_chars - 10]
        return f"Summary: {first}"
