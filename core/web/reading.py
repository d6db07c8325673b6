"""Reading the feed as one reader may: only the communities they may see, in every scope and order.

``scope=all`` and ``scope=platform:<name>`` merge the timelines of the visible communities instead of the
global per-platform timelines, and a story that also gathered items from a private community shows only
its visible items, so nothing private leaks through a shared story.

Merging many community timelines costs a k-way merge per page; when no community with items in the scope
is hidden from this reader (every one is public, or their own), the global per-platform timelines hold the
same stories and are read instead. Items are still filtered one by one, so a community that gains its
first item between the check and the read shows nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from core.feed.items import Story
from core.feed.timelines import Order, Page, Scope, Sources, Timelines
from core.web.visibility import public_communities

MERGE_LIMIT = 4
"""Above this many visible communities in a scope, check whether the global timelines can be read."""


class VisibleTimelines(Timelines):
    """The feed's read side restricted to ``communities`` (it shares the base instance's scripts)."""

    def __init__(self, base: Timelines, communities: frozenset[str]) -> None:
        self.__dict__.update(base.__dict__)
        self.communities = communities
        self._hidden: frozenset[str] | None = None  # communities with items this reader may not see

    async def timeline_keys(self, scope: Scope, order: Literal["hot", "new"]) -> Sources:
        if scope.kind == "community":
            return await super().timeline_keys(scope, order) if scope.value in self.communities else []
        chosen = sorted(ck for ck in self.communities if _in(scope, ck))
        if len(chosen) > MERGE_LIMIT and not any(_in(scope, ck) for ck in await self._hidden_communities()):
            return await super().timeline_keys(scope, order)
        return await self.community_keys(chosen, order)

    async def _hidden_communities(self) -> frozenset[str]:
        if self._hidden is None:  # once per reader: "top" asks for its new and hot keys separately
            hidden = await self.all_communities() - await public_communities(self.redis)
            self._hidden = frozenset(hidden) - self.communities
        return self._hidden

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

    async def stories(self, story_ids: Sequence[str]) -> list[Story]:
        """Stories by id with only their visible items (``top`` pages and digests read through this)."""
        return [s for story in await super().stories(story_ids) if (s := self.visible(story)) is not None]

    async def visible_story(self, story_id: str) -> Story | None:
        stories = await self.stories([story_id])
        return stories[0] if stories else None


def _in(scope: Scope, community_key: str) -> bool:
    return scope.kind == "all" or community_key.partition(":")[0] == scope.value
