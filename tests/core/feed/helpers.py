"""Builders shared by the feed tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

from core.feed.items import FeedItem
from core.ports import SummaryKind

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
    """Stands in for the assistant's summarizer: ``calls`` counts the texts summarised (intros and stories),
    ``requests`` the model requests (a batch of stories is one) and ``batches`` what each batch held;
    answers with a marked opening of each text."""

    def __init__(self) -> None:
        self.calls = 0
        self.requests = 0
        self.texts: list[str] = []
        self.batches: list[tuple[str, list[str]]] = []  # (community_key, texts) of each batched request
        self.kinds: list[SummaryKind] = []  # what each batched request wrote

    async def __call__(self, text: str, *, max_chars: int) -> str:
        self.calls += 1
        self.requests += 1
        self.texts.append(text)
        return _marked(text, max_chars)

    async def many(
        self, texts: Sequence[str], *, max_chars: int, community_key: str = "", kind: SummaryKind = "stories"
    ) -> list[str]:
        self.calls += len(texts)
        self.requests += 1
        self.texts.extend(texts)
        self.batches.append((community_key, list(texts)))
        self.kinds.append(kind)
        return [_marked(text, max_chars) for text in texts]


def _marked(text: str, max_chars: int) -> str:
    first = " ".join(text.split())[: max_chars - 10]
    return f"Summary: {first}"
