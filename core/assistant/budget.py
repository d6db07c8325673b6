"""Money caps: what a community, and the whole deployment, may spend per UTC day, in estimated USD.

Spend is what ``Quotas.record`` estimates (model tokens, images) plus X's pay-per-use price of each post
Chorus publishes there (a post; a post with a link costs more). Each counter is integer micro-USD, added by
one Lua script that also decides, atomically, whether this addition crossed the warning threshold for the
first time that day: a community's counter lives under its own hash tag, the deployment's in its own key
(two calls, each atomic; no cross-slot script, so it runs on Redis Cluster).

A request is refused (``BudgetExceeded``, a clear message with the reset time) once today's spend reached
the cap. A request's price is only known after the model answered, so requests already running when the
cap is reached still finish: the cap can be passed by what was in flight, never by a new request.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from core import keys, metrics
from core.contract import Action, Post, Receipt, SendImage
from core.errors import BudgetExceeded
from core.settings import Settings

log = logging.getLogger(__name__)

MICRO = 1_000_000
SPEND_TTL_S = 90 * 86400  # /stats shows the last days; old days expire
_PUBLISHED = re.compile(
    r"^draft:[0-9a-f]+$"
)  # the ref of a published draft (its preview image adds ":image")
_LINK = re.compile(r"https?://|www\.|\b[\w-]+\.(com|org|net|io|dev|app|co|ly|me)/", re.IGNORECASE)

# KEYS: counter, warned flag. ARGV: amount, warn threshold (0 = none), ttl (all micro-USD / seconds).
# Returns {new total, 1 if this addition crossed the threshold first today else 0}.
_SPEND = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local warn = tonumber(ARGV[2])
if warn > 0 and total >= warn and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  return {total, 1}
end
return {total, 0}
"""


@dataclass(frozen=True, slots=True)
class Spend:
    """Today's spend against a cap (USD); ``cap`` 0 means no cap."""

    spent: float
    cap: float

    @property
    def share(self) -> float:
        return self.spent / self.cap if self.cap else 0.0

    def describe(self) -> str:
        if not self.cap:
            return f"${self.spent:.4f} (no cap)"
        return f"${self.spent:.4f} of ${self.cap:.2f} ({self.share:.0%})"


class Budget:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._spend = redis.register_script(_SPEND)

    # -- caps ----------------------------------------------------------------------------------
    async def check(self, community_key: str, now: float | None = None) -> None:
        """Raise BudgetExceeded if the community or the deployment spent its cap today."""
        now = time.time() if now is None else now
        community, deployment = await self.today(community_key, now)
        if deployment.cap and deployment.spent >= deployment.cap:
            raise _exceeded(
                f"Chorus has reached its daily spending limit (${deployment.cap:.2f}) for everyone.", now
            )
        if community.cap and community.spent >= community.cap:
            raise _exceeded(
                f"This community has reached its daily AI spending limit (${community.cap:.2f}).", now
            )

    async def today(self, community_key: str, now: float | None = None) -> tuple[Spend, Spend]:
        """(the community's, the deployment's) spend today."""
        day = _day(time.time() if now is None else now)
        mine = await self.redis.get(keys.community_spend(community_key, day))
        everyone = await self.redis.get(keys.deployment_spend(day))
        s = self.settings
        return (
            Spend(int(mine or 0) / MICRO, s.budget_community_usd_per_day),
            Spend(int(everyone or 0) / MICRO, s.budget_deployment_usd_per_day),
        )

    async def charge(self, community_key: str, usd: float, now: float | None = None) -> str | None:
        """Add ``usd`` to today's spend; returns a warning for the moderators the first time today the
        community passes the warning threshold (the deployment's is logged for the operator)."""
        amount = round(usd * MICRO)
        if amount <= 0:
            return None
        now = time.time() if now is None else now
        day = _day(now)
        s = self.settings
        mine = await self._add(
            keys.community_spend(community_key, day), amount, s.budget_community_usd_per_day
        )
        everyone = await self._add(keys.deployment_spend(day), amount, s.budget_deployment_usd_per_day)
        if everyone is not None:
            log.warning("the deployment has used %s of its daily spending cap", everyone.describe())
        if mine is None:
            return None
        return (
            f"Note for moderators: this community has used {mine.describe()} of its daily AI budget. "
            f"At 100 % new requests are refused until {_reset(now)}. /stats shows the spend."
        )

    async def _add(self, key: str, amount: int, cap_usd: float) -> Spend | None:
        """Count ``amount``; the Spend if this crossed the warning threshold for the first time today."""
        warn_at = round(cap_usd * self.settings.budget_warn_at * MICRO) if cap_usd else 0
        total, crossed = await self._spend(keys=[key, keys.warned(key)], args=[amount, warn_at, SPEND_TTL_S])
        return Spend(int(total) / MICRO, cap_usd) if int(crossed) else None

    # -- X posts -------------------------------------------------------------------------------
    def x_posts_cost(self, actions: Iterable[Action]) -> float:
        """X's price of publishing these Actions: one post per part (a thread pays per post); a post whose
        text holds a link costs the with-link price."""
        s = self.settings
        usd = 0.0
        for action in actions:
            if action.platform != "x":
                continue
            if isinstance(action, Post):
                texts = list(action.parts) or [action.text]
            elif isinstance(action, SendImage):
                texts = [action.caption]
            else:
                texts = [getattr(action, "text", "")]
            usd += sum(s.x_price_post_with_link_usd if has_link(t) else s.x_price_post_usd for t in texts)
        return usd

    async def charge_delivered_x(self, action: Action, receipt: Receipt) -> None:
        """Delivery hook: what the bot itself posted on X (answers under mentions, draft previews, choices)
        costs X's price per tweet, charged to the X account's community. Published drafts are not charged
        again: ``Publisher`` charged the community that shared them."""
        if action.platform != "x" or not receipt.message_ids:
            return
        if isinstance(action, Post | SendImage) and _PUBLISHED.match(action.ref or ""):
            return
        text = action.caption if isinstance(action, SendImage) else getattr(action, "text", "")
        price = self.settings.x_price_post_with_link_usd if has_link(text) else self.settings.x_price_post_usd
        usd = price * len(receipt.message_ids)
        metrics.SPEND.labels("x_post").inc(usd)
        warning = await self.charge(f"x:{action.community}", usd)
        if warning:
            log.warning("x:%s %s", action.community, warning.removeprefix("Note for moderators: "))


def has_link(text: str) -> bool:
    """Whether X would count this post as one "with URL" (any URL-looking text)."""
    return bool(_LINK.search(text))


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")


def _reset(now: float) -> str:
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    left = int((midnight + timedelta(days=1)).timestamp() - now)
    hours, minutes = divmod(max(60, left) // 60, 60)
    return f"00:00 UTC (in {hours} h {minutes} min)"


def _exceeded(what: str, now: float) -> BudgetExceeded:
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    retry_at = (midnight + timedelta(days=1)).timestamp()
    return BudgetExceeded(f"{what} New requests are possible again at {_reset(now)}.", retry_at=retry_at)
