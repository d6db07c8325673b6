"""Reading the feed as one reader may: only the communities they may see, in every scope and order.

``scope=all`` and ``scope=platform:<name>`` merge the timelines of the visible communities instead of the
global per-platform timelines, and a story that also gathered items from a private community shows only
its visible items, so nothing private leaks through a shared story.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from core.feed import keys as fk
from core.feed.items import Story
from core.feed.timelines import Order, Page, Scope, Timelines


class VisibleTimelines(Timelines):
    """The feed's read side restricted to ``communities`` (it shares the base instance's scripts)."""

    def __init__(self, base: Timelines, communities: frozenset[str]) -> None:
        self.__dict__.update(base.__dict__)
        self.communities = communities

    async def timeline_keys(self, scope: Scope, order: Literal["hot", "new"]) -> list[str]:
        if scope.kind == "community":
            return [fk.timeline(order, "c", scope.value)] if scope.value in self.communities else []
        chosen = sorted(
            ck for ck in self.communities if scope.kind == "all" or ck.partition(":")[0] == scope.value
        )
        return [fk.timeline(order, "c", ck) for ck in chosen]

    def visible(self, story: Story) -> Story | None:
        items = [i for i in story.items if i.community_key in self.communities]
        if not items:
            return None
        return story if len(items) == len(story.items) else replace(story, items=items)

    async def visible_page(
        self,
        scope: Scope,
        order: Order = "hot",
        limit: int = 20,
        cursor: str | None = None,
        *,
        period_s: float = 86400.0,
    ) -> Page:
        page = await self.page(scope, order, limit, cursor, period_s=period_s)
        return Page([s for story in page.stories if (s := self.visible(story)) is not None], page.cursor)

    async def visible_story(self, story_id: str) -> Story | None:
        stories = await self.stories([story_id])
        return self.visible(stories[0]) if stories else None
