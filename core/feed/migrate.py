"""``chorus feed migrate``: move a feed written before partitions (every key under ``{feed}``) into them.

Items are read back from the old keys and ingested again, oldest first, with their engagement counts: they
get their new ids (``items.item_id``, the same ids new events compute), their stories are found again by
near-duplicate detection, and their baselines and timelines are rebuilt. Opt-outs are recorded first, so
nothing of an opted-out author comes back. Subscriptions are saved again (their new partition), and the
digest "sent" markers are copied with their TTL so no digest is sent twice. Running it again is harmless
(ingest is idempotent). ``--delete`` removes the old keys afterwards. Run it with the workers stopped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import redis.asyncio as aioredis

from core.decode import as_str
from core.feed import keys as fk
from core.feed.ingest import FeedStore
from core.feed.items import FeedItem, decode
from core.feed.settings import FeedSettings
from core.feed.subscriptions import Subscription, SubscriptionStore

OLD = "chorus:{feed}:"
"""The prefix of every feed key before partitions (one hash tag, one slot)."""
BATCH = 2000


@dataclass
class Migrated:
    items: int = 0
    optouts: int = 0
    subscriptions: int = 0
    markers: int = 0
    deleted: int = 0


async def _scan(redis: aioredis.Redis, kind: str) -> list[str]:
    return sorted([as_str(k) async for k in redis.scan_iter(match=f"{OLD}{kind}*", count=1000)])


async def migrate(redis: aioredis.Redis, settings: FeedSettings, *, delete: bool = False) -> Migrated:
    done = Migrated()
    store = FeedStore(redis, settings)
    optouts = [as_str(a) for a in await redis.smembers(OLD + fk.OPTOUT_)]
    for author in optouts:
        platform, _, author_id = author.partition(":")
        await store.optout(platform, author_id)
    done.optouts = len(optouts)
    item_keys = await _scan(redis, fk.ITEM_)
    items: list[FeedItem] = []
    for start in range(0, len(item_keys), BATCH):
        names = item_keys[start : start + BATCH]
        async with redis.pipeline(transaction=False) as pipe:  # one slot: the old keys share one tag
            for name in names:
                pipe.get(name)
            values = await pipe.execute()
        for name, value in zip(names, values, strict=True):
            if value is not None:
                old = decode(name[len(OLD) + len(fk.ITEM_) :], value)
                old.id = ""  # derived again: the partitioned id
                old.__post_init__()
                old.story = ""
                old.norm = 0.0
                items.append(old)
    items.sort(key=lambda i: (i.created_at, i.id))  # stories led by their first item, as they were
    for start in range(0, len(items), BATCH):
        result = await store.ingest(items[start : start + BATCH], absolute=True)
        done.items += result.new + result.joined + result.updated
    subs = SubscriptionStore(redis)
    for name in await _scan(redis, fk.SUB_):
        raw = await redis.get(name)
        if raw:
            await subs.save(Subscription.model_validate_json(raw))
            done.subscriptions += 1
    for name in await _scan(redis, fk.SENT_):
        sub_id, _, window = name[len(OLD) + len(fk.SENT_) :].rpartition(":")
        value, ttl = await redis.get(name), await redis.ttl(name)
        if value is not None and sub_id:
            await redis.set(fk.sent(sub_id, float(window)), value, ex=ttl if ttl > 0 else None)
            done.markers += 1
    if delete:
        kinds = (
            fk.ITEM_,
            fk.STORY_,
            fk.TIMELINE_,
            fk.SOURCE_,
            fk.LSH_,
            fk.AUTHOR_,
            fk.SUB_,
            fk.SENT_,
            "slot:",
            "subs:",
        )
        singles = (fk.MULTI_, fk.PLATFORMS_, fk.COMMUNITIES_, fk.OPTOUT_, fk.GEN_)
        for kind in kinds:
            for name in await _scan(redis, kind):
                done.deleted += int(await redis.delete(name))
        for single in singles:
            done.deleted += int(await redis.delete(OLD + single))
    print(
        f"migrated {done.items} items, {done.optouts} opt-outs, {done.subscriptions} subscriptions, "
        f"{done.markers} digest markers; deleted {done.deleted} old keys",
        file=sys.stderr,
    )
    return done
