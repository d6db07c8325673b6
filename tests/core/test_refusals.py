"""Refusals are counted per community and day, by reason, where every refusal is answered (the Router)."""

from __future__ import annotations

import time

from core import refusals
from core.contract import Author, EventKind
from core.errors import BudgetExceeded, ContentRefused, InvalidInput, QuotaExceeded
from core.refusals import Refusals
from core.router import Router
from core.services import Services
from tests.support import event


async def test_the_router_counts_quota_budget_and_moderation_refusals_per_community_and_day(
    services: Services,
) -> None:
    async def refuse(error: Exception) -> None:
        async def handler(*_: object) -> list[object]:
            raise error

        services.mention = handler  # type: ignore[assignment]
        ask = event(EventKind.MENTION, "write", author=Author(id="u1"))
        assert (await Router(services).route(ask))[0].text == error.user_message  # type: ignore[attr-defined,union-attr]

    for error in (
        QuotaExceeded("Over the quota."),
        QuotaExceeded("Over the quota again."),
        BudgetExceeded("Over the money cap."),
        ContentRefused("I can't write that."),
        InvalidInput("A typo."),  # not a refusal the chart counts
    ):
        await refuse(error)
    now = time.time()
    today, yesterday = await refusals.per_day(services.redis, "test:c1", [now, now - 86400])
    assert today == Refusals(quota=2, budget=1, moderation=1) and today.total == 4
    assert yesterday == Refusals()
    assert await refusals.per_day(services.redis, "test:c2", [now]) == [Refusals()]
    await refusals.count(services.redis, "test:c1", ContentRefused("x"), now=now - 86400)
    assert (await refusals.per_day(services.redis, "test:c1", [now - 86400]))[0].moderation == 1
