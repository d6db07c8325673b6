"""Safety rails for the X bot: which mentions get an answer, and how many tweets a day go out.

Careless bots get suspended on X, so a mention is answered only if it passes every rail:

* never the bot's own posts, retweets, or accounts on the bot list (``X_BOT_ACCOUNTS``);
* never a reply to someone else where the bot's handle is only in X's automatic prefix of handles (people
  talking in a thread the bot was once part of are not talking to it);
* never a mention older than ``X_MAX_MENTION_AGE_S`` (after downtime the bot does not flood old threads);
* one answer per mention id, ever: the decision is recorded (Redis) before the Event is published;
* at most ``X_REPLIES_PER_AUTHOR_PER_DAY`` answers to one author and ``X_REPLIES_PER_DAY`` in total per
  UTC day (owner accounts are exempt from the per-author cap);
* at most ``X_MAX_CONVERSATION_DEPTH`` answers in one conversation: two bots mentioning each other stop
  there instead of looping.

The stateful checks and the counting are one Lua script under the account's hash tag, so two processes
polling the same account cannot both admit a mention or overshoot a cap. An admitted mention is marked
``a`` and then ``p`` once its Event is on the bus; a crash in between re-publishes it on the next poll
(the bus drops the repeat), so nothing is lost and nothing is answered twice.

:class:`PostBudget` caps tweets per rolling 24 hours below the API tier's ``POST /2/tweets`` limit.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bots.x.api import Me
from bots.x.config import XSettings
from bots.x.normalize import Accounts, addressed, created_ts, referenced, username_of
from core import keys
from core.decode import as_str

log = logging.getLogger(__name__)

DECISION_TTL_S = 90 * 86400
CONVERSATION_TTL_S = 7 * 86400
DAY_S = 86400

# KEYS: decision, author-day, total-day, conversation; ARGV: caps (author, total, depth), owner flag, TTLs
_ADMIT = """
local state = redis.call('GET', KEYS[1])
if state then return state end
local function over(key, cap)
  cap = tonumber(cap)
  return cap > 0 and tonumber(redis.call('GET', key) or '0') >= cap
end
local refused = nil
if ARGV[4] ~= '1' and over(KEYS[2], ARGV[1]) then refused = 'author_cap'
elseif over(KEYS[3], ARGV[2]) then refused = 'daily_cap'
elseif ARGV[4] ~= '1' and over(KEYS[4], ARGV[3]) then refused = 'conversation_depth' end
if refused then
  redis.call('SET', KEYS[1], 'r:' .. refused, 'EX', ARGV[5])
  return 'r:' .. refused
end
redis.call('SET', KEYS[1], 'a', 'EX', ARGV[5])
for i = 2, 3 do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[7])
return 'new'
"""

# KEYS: budget sorted set; ARGV: now, window, limit, member -> 0 (taken) or seconds until a slot frees
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]))
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return '0'
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """``answer``: publish the Event; ``fresh``: first time this mention was admitted (else a re-poll)."""

    answer: bool
    reason: str = ""
    fresh: bool = False


def x_key(me: Me, *parts: str) -> str:
    """Keys of the bot account's own state, under its community hash tag (``x:<account id>``)."""
    return keys.community(f"x:{me.id}", "x", *parts)


class Rails:
    def __init__(
        self,
        redis: aioredis.Redis,
        settings: XSettings,
        me: Me,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.me = me
        self.clock = clock
        self.owners = Accounts(settings.owner_accounts)
        self.bots = Accounts(settings.bot_accounts)
        self._admit = redis.register_script(_ADMIT)

    def static_refusal(self, tweet: dict[str, Any], includes: Any) -> str:
        """Rails that need no state: self, retweets, bot list, age. Empty string: none applies."""
        author_id = str(tweet.get("author_id", ""))
        if author_id == self.me.id:
            return "own_post"
        if referenced(tweet, "retweeted") is not None:
            return "retweet"
        if (author_id, username_of(author_id, includes)) in self.bots:
            return "bot_account"
        if not addressed(tweet, self.me):
            return "not_addressed"
        max_age = self.settings.max_mention_age_s
        if max_age > 0 and self.clock() - created_ts(tweet) > max_age:
            return "too_old"
        return ""

    async def admit(self, tweet: dict[str, Any], includes: Any) -> Decision:
        """Decide once per mention id; counting happens in the same atomic step."""
        static = self.static_refusal(tweet, includes)
        if static:
            return Decision(False, static)
        s = self.settings
        tweet_id = str(tweet["id"])
        author_id = str(tweet.get("author_id", ""))
        conversation = str(tweet.get("conversation_id") or tweet_id)
        day = str(int(self.clock() // DAY_S))
        owner = (author_id, username_of(author_id, includes)) in self.owners
        state = await self._admit(
            keys=[
                x_key(self.me, "mention", tweet_id),
                x_key(self.me, "rails", "author", author_id, day),
                x_key(self.me, "rails", "day", day),
                x_key(self.me, "rails", "conversation", conversation),
            ],
            args=[
                s.replies_per_author_per_day,
                s.effective_replies_per_day,
                s.max_conversation_depth,
                "1" if owner else "0",
                DECISION_TTL_S,
                2 * DAY_S,
                CONVERSATION_TTL_S,
            ],
        )
        state = as_str(state)
        if state == "new":
            return Decision(True, fresh=True)
        if state == "a":  # admitted earlier, its Event may not have reached the bus
            return Decision(True)
        if state == "p":
            return Decision(False, "already_answered")
        return Decision(False, state.removeprefix("r:"))

    async def published(self, tweet_id: str) -> None:
        """The mention's Event is on the bus: later polls skip it without publishing again."""
        await self.redis.set(x_key(self.me, "mention", tweet_id), "p", xx=True, keepttl=True)


class PostBudget:
    """Tweets per rolling 24 hours, shared by every process posting as this account."""

    def __init__(
        self, redis: aioredis.Redis, me: Me, limit: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.key = x_key(me, "posts")
        self.limit = limit
        self.clock = clock
        self._take = redis.register_script(_TAKE)
        self.redis = redis

    async def take(self) -> tuple[str, float]:
        """(slot, 0) when a tweet may go out now, else ("", seconds until a slot frees)."""
        slot = uuid.uuid4().hex
        wait = float(await self._take(keys=[self.key], args=[self.clock(), DAY_S, self.limit, slot]))
        return (slot, 0.0) if wait <= 0 else ("", max(wait, 1.0))

    async def give_back(self, slot: str) -> None:
        """A tweet that X did not create does not count."""
        await self.redis.zrem(self.key, slot)
