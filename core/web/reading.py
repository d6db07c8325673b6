"""Reading the feed as one reader may: only the communities they may see, in every scope and order.

``scope=all`` and ``scope=platform:<name>`` never show a story of a community the reader may not see, and a
story that also gathered items from a private community shows only its visible items, so nothing private
leaks through a shared story. Three ways to read a page, cheapest first:

* nothing in the scope is hidden from this reader (every community is public, or their own): the global
  per-platform timelines hold exactly the visible stories and are read as they are;
* a few communities are hidden (at most one for every ``FILTER_RATIO`` visible ones, "hot" and "new"): the
  global timelines are read and the hidden stories dropped, reading on from the cursor until the page is
  full. Every story read is either shown or hidden, so the cursor of the last read is exact;
* otherwise (many hidden, or "top"), the timelines of the visible communities are merged (a k-way merge in
  the page script, which costs about a millisecond more per ten communities).

Items are still filtered one by one, so a community that gains its first item between the check and the
read shows nothing. ``read`` asks for the visible and hidden sets while it reads the first page of the global
(or the community's) timelines, which is what it will show in all but the "many hidden" case, so a page
costs one Redis round trip less; what it read speculatively is filtered before anything is rendered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Literal

import redis.asyncio as aioredis

from core.decode import as_str
from core.feed import keys as fk
from core.feed.items import Story
from core.feed.timelines import Order, Page, Scope, Sources, Timelines
from core.web.visibility import public_communities

MERGE_LIMIT = 4
"""Above this many visible communities in a scope, check whether the global timelines can be read."""
FILTER_RATIO = 4
"""Read the global timelines and drop hidden stories when at most one community in this many is hidden."""
MAX_READS = 8
"""Reads of the global timelines for one filtered page; a page cut short still carries an exact cursor."""


class VisibleTimelines(Timelines):
    """The feed's read side restricted to ``communities`` (it shares the base instance's scripts)."""

    def __init__(
        self, base: Timelines, communities: frozenset[str], hidden: frozenset[str] | None = None
    ) -> None:
        self.__dict__.update(base.__dict__)
        self.base = base
        self.communities = communities
        self._hidden = hidden  # communities with items this reader may not see (None: asked when needed)

    @classmethod
    async def for_reader(
        cls, base: Timelines, redis: aioredis.Redis, own: Iterable[str] = ()
    ) -> VisibleTimelines:
        """The public communities and the reader's ``own``, and which communities are hidden from them:
        both sets in one round trip (a page then needs no other question before its read)."""
        async with redis.pipeline(transaction=False) as pipe:
            pipe.smembers(fk.PUBLIC)
            for part in range(fk.PARTITIONS):  # each feed partition's communities (a pipeline per node)
                pipe.smembers(fk.communities(part))
            public, *known = await pipe.execute()
        visible = frozenset(as_str(v) for v in public) | frozenset(own)
        return cls(base, visible, frozenset(as_str(v) for part in known for v in part) - visible)

    @classmethod
    async def read(
        cls,
        base: Timelines,
        redis: aioredis.Redis,
        own: Iterable[str],
        scope: Scope,
        order: Order,
        limit: int,
        cursor: str | None,
    ) -> tuple[VisibleTimelines, Page]:
        """A reader and its page of ``scope``: the sets and the first read at the same time."""
        if order == "top":
            reader = await cls.for_reader(base, redis, own)
            return reader, await reader.visible_page(scope, order, limit, cursor)
        reader, first = await asyncio.gather(
            cls.for_reader(base, redis, own), base.page(scope, order, limit, cursor)
        )
        if scope.kind == "community" and scope.value not in reader.communities:
            return reader, Page([], None)
        if scope.kind != "community" and any(_in(scope, ck) for ck in await reader._hidden_communities()):
            if not await reader._few_hidden(scope):
                return reader, await reader.visible_page(scope, order, limit, cursor)  # the merge
            return reader, await reader._filtered_page(scope, order, limit, cursor, first)
        return reader, Page(
            [s for story in first.stories if (s := reader.visible(story)) is not None], first.cursor
        )

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

    async def _few_hidden(self, scope: Scope) -> bool:
        """Is reading the global timelines and dropping hidden stories cheaper than merging?"""
        if scope.kind == "community":
            return False
        hidden = sum(1 for ck in await self._hidden_communities() if _in(scope, ck))
        shown = sum(1 for ck in self.communities if _in(scope, ck))
        return hidden > 0 and shown > MERGE_LIMIT and hidden * FILTER_RATIO <= shown

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
        if order != "top" and await self._few_hidden(scope):
            return await self._filtered_page(scope, order, limit, cursor)
        page = await self.page(scope, order, limit, cursor, period_s=period_s)
        return Page([s for story in page.stories if (s := self.visible(story)) is not None], page.cursor)

    async def _filtered_page(
        self, scope: Scope, order: Order, limit: int, cursor: str | None, first: Page | None = None
    ) -> Page:
        found: list[Story] = []
        for _ in range(MAX_READS):
            page = (
                first if first is not None else await self.base.page(scope, order, limit - len(found), cursor)
            )
            first = None
            found.extend(s for story in page.stories if (s := self.visible(story)) is not None)
            cursor = page.cursor
            if cursor is None or len(found) >= limit:
                break
        return Page(found, cursor)

    async def stories(self, story_ids: Sequence[str]) -> list[Story]:
        """Stories by id with only their visible items (``top`` pages and digests read through this)."""
        return [s for story in await super().stories(story_ids) if (s := self.visible(story)) is not None]

    async def visible_story(self, story_id: str) -> Story | None:
        stories = await self.stories([story_id])
        return stories[0] if stories else None


def _in(scope: Scope, community_key: str) -> bool:
    return scope.kind == "all" or community_key.partition(":")[0] == scope.value
