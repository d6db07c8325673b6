"""Why a story is where it is: a short line built from the very numbers that ranked it.

The feed's orders (``scripts.py``): ``hot`` = ln(1 + normalised engagement) + first time / tau; ``new`` =
the latest item's time; ``top`` = normalised engagement in the period. Normalised engagement is each item's
weighted engagement (reactions, replies ×2, reposts ×3, views ×0.01) divided by its source's usual engagement
per item, summed over the story's items: "4× this chat's usual" is that figure. A ``Reason`` keeps those
components (``as_dict``, for the JSON Feed ``_chorus.reason`` extension and the web pages) and says them in
words (``text``): "hot in Telegram · 3 sources · 12 reactions, 4× this chat's usual", "new",
"you asked for more about gardening".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from core.catalog import PlatformCatalog
from core.feed.items import Story
from core.feed.scripts import engagement

ReasonOrder = Literal["hot", "new", "top"]
FRESH_S = 3600.0  # younger than this, without engagement: "new"


@dataclass(frozen=True, slots=True)
class Reason:
    order: ReasonOrder
    score: float  # the story's score in that order, as the timeline holds it
    platforms: tuple[str, ...]
    sources: int  # items in the story (the same news seen in several places)
    channels: int  # distinct (community, channel) sources
    counts: tuple[tuple[str, int], ...]  # reactions, replies, reposts, views (non-zero)
    weighted: float  # weighted engagement, before normalising
    normalised: float  # sum over items of weighted engagement / the source's usual per item
    first_at: float
    latest_at: float
    tau_s: float
    now: float
    more: tuple[str, ...] = ()  # this person's terms that moved it up
    less: tuple[str, ...] = ()  # and down

    @property
    def engagement_term(self) -> float:
        """The hot score's engagement part: ln(1 + normalised engagement)."""
        return math.log1p(self.normalised)

    @property
    def freshness_term(self) -> float:
        """The hot score's time part: first time / tau (one tau later is worth e× the engagement)."""
        return self.first_at / self.tau_s

    @property
    def age_s(self) -> float:
        return max(0.0, self.now - self.first_at)

    def text(self, platforms: PlatformCatalog) -> str:
        where = ", ".join(platforms.label(p) for p in self.platforms)
        parts: list[str] = []
        if self.order == "new" or (self.normalised <= 0 and self.age_s < FRESH_S):
            parts.append(f"new in {where}" if self.order == "new" else "new")
            if self.order == "new":
                parts.append(_ago(self.now - self.latest_at))
        else:
            parts.append(f"{self.order} in {where}")
        if self.sources > 1:
            parts.append(f"{self.sources} sources")
        if self.counts:
            shown = ", ".join(f"{n} {name}" for name, n in self.counts if name != "views") or ", ".join(
                f"{n} {name}" for name, n in self.counts
            )
            if self.normalised > 0:
                usual = "this chat's usual" if self.channels == 1 else "their sources' usual"
                shown += f", {_times(self.normalised)} {usual}"
            parts.append(shown)
        if self.more:
            parts.append("you asked for more about " + ", ".join(self.more))
        if self.less:
            parts.append("lower: you asked for less about " + ", ".join(self.less))
        return " · ".join(parts)

    def as_dict(self, platforms: PlatformCatalog) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text(platforms),
            "order": self.order,
            "score": self.score,
            "sources": self.sources,
            "platforms": list(self.platforms),
            "engagement": dict(self.counts),
            "weighted_engagement": round(self.weighted, 4),
            "normalised_engagement": round(self.normalised, 6),
            "age_s": round(self.age_s, 1),
        }
        if self.order == "hot":
            data["engagement_term"] = self.engagement_term
            data["freshness_term"] = self.freshness_term
        if self.more or self.less:
            data["personal"] = {"more": list(self.more), "less": list(self.less)}
        return data


def explain(
    story: Story,
    order: ReasonOrder,
    *,
    tau_s: float,
    now: float | None = None,
    more: tuple[str, ...] = (),
    less: tuple[str, ...] = (),
) -> Reason:
    e = story.engagement
    return Reason(
        order=order,
        score=story.score,
        platforms=tuple(story.platforms),
        sources=len(story.items),
        channels=len({(i.community_key, i.channel) for i in story.items}),
        counts=tuple((k, v) for k, v in e.items() if v),
        weighted=engagement(e["reactions"], e["replies"], e["reposts"], e["views"]),
        normalised=story.norm,
        first_at=story.created_at,
        latest_at=story.updated_at,
        tau_s=tau_s,
        now=time.time() if now is None else now,
        more=more,
        less=less,
    )


def _times(x: float) -> str:
    return f"{x:.1f}×" if x < 10 else f"{x:.0f}×"


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 90:
        return "just now"
    if s < 5400:
        return f"{round(s / 60)} min ago"
    if s < 129600:
        return f"{round(s / 3600)} h ago"
    return f"{round(s / 86400)} days ago"
