"""The Redis key scheme, in one place.

Every key starts with ``chorus:``. Keys that one operation touches together share a hash tag (the part in
braces), so every multi-key command and script stays inside one slot and the same code runs on Redis
Cluster. The bus is split into partitions, each its own hash tag, so its traffic spreads over the shards:

================================================  ==========================================================
``chorus:{<partition>}:events``                   stream of inbound Events (consumer group ``workers``)
``chorus:{<partition>}:outbox:<platform>``        stream of Actions per platform (consumer group ``senders``)
``chorus:{<partition>}:dead``                     dead-letter stream (Events and Actions that kept failing)
``chorus:{<partition>}:seen:<platform>:<msg id>`` a platform message already accepted (TTL, dedupe)
``chorus:{<partition>}:attempts``                 hash: stream id -> processing attempts
``chorus:{<partition>}:done:<event id>``          JSON list of the Action ids an Event produced (TTL)
``chorus:sent:<action id>``                       receipt of a delivered Action: it is never sent twice (TTL)
``chorus:msg:<platform>:<message id>``            the Action (and its ``ref``) that created a bot message
``chorus:choices:<conversation>``                 payloads of the last numbered choices shown as text
``chorus:live:<platform>``                         stream of drafts being written (short-lived, capped)
``chorus:live-claim:<event id>``                   the Reply that replaced an Event's live placeholder
``chorus:blob:<id>``                              image bytes referenced by SendImage Actions (TTL)
``chorus:alive:<consumer>``                       a worker's or sender's heartbeat (short TTL): while it is
                                                  missing, the consumer's pending entries are taken over
``chorus:{sched}:due``                            sorted set of scheduled jobs by next run time
``chorus:{sched}:job:<id>``                       a scheduled job's JSON
``chorus:{c:<platform>:<community>}:...``         everything owned by one community (prompts, drafts,
                                                  quotas, settings): one hash tag per community
``chorus:{feed:<partition>}:...``                 the aggregated feed, in partitions (core/feed/keys.py)
``chorus:{c:<platform>:<community>}:web:...``     sign-in links, sessions, personal feed tokens (core/web)
``chorus:{web}:secret``                           the key that signs CSRF and personal feed tokens
``chorus:{web}:rate:<bucket>:<who>``              a sign-in rate-limit counter (TTL = its window)
``chorus:{spend}:<day>``                          deployment-wide estimated spend of a UTC day (micro-USD)
``chorus:{spend}:<day>:warned``                   set once the deployment's 80 % warning was given that day
================================================  ==========================================================

A community's partition is chosen by a stable hash of its community key (``partition``), so its Events and
Actions keep their order. Each of the N partitions has its own hash tag, picked so that partition ``p``'s
slot lies in the ``p``-th N-th of the slot space (``layout``): masters own contiguous slot ranges, so each
holds a share of the partitions in proportion to its share of the slots, whatever CRC16 makes of the names.
A layout of one partition is spelled ``{bus}``, the names from before partitions: upgrading is changing the
number of partitions (docs/scaling.md). Receipts, bot messages, choices and blobs are looked up by id alone
and written by one command each: they carry no tag, so Redis spreads them over every slot by their names.

A community's own spend is ``chorus:{c:<platform>:<community>}:spend:<day>`` (and ``...:warned``), built by
``community_spend`` so it shares the community's hash tag.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Iterator

from redis.crc import key_slot

DEFAULT_PARTITIONS = 12  # CHORUS_BUS_PARTITIONS: even over 2, 3, 4 or 6 masters; a cluster poll reads each
WORKERS_GROUP = "workers"
SENDERS_GROUP = "senders"


SLOTS = 16384  # Redis Cluster's hash slots


@functools.cache
def layout(partitions: int, name: str = "bus") -> tuple[str, ...]:
    """The hash tags of the bus partitions (or, with ``name="feed"``, the feed's): partition ``p``'s tag
    is the first of ``bus:<p>``, ``bus:<p>:1``, ``bus:<p>:2``... whose slot is in the ``p``-th
    ``partitions``-th of the slot space (a handful of CRC16s each, once per process). One partition is
    ``bus``, the unpartitioned names."""
    if partitions == 1:
        return (name,)
    tags = []
    for p in range(partitions):
        low, high = p * SLOTS // partitions, (p + 1) * SLOTS // partitions
        tag = next(t for t in _candidates(name, p) if low <= key_slot(t.encode()) < high)
        tags.append(tag)
    return tuple(tags)


def _candidates(name: str, p: int) -> Iterator[str]:
    yield f"{name}:{p}"
    yield from (f"{name}:{p}:{k}" for k in itertools.count(1))


def partition(community_key: str, partitions: int) -> str:
    """The bus partition (its hash tag) of a community: CRC-32, the same in every process and run."""
    return layout(partitions)[zlib.crc32(community_key.encode()) % partitions]


def bus(part: str) -> str:
    """The prefix of one partition's keys."""
    return f"chorus:{{{part}}}"


def events(part: str) -> str:
    return f"{bus(part)}:events"


def dead(part: str) -> str:
    return f"{bus(part)}:dead"


def attempts(part: str) -> str:
    return f"{bus(part)}:attempts"


def outbox(platform: str, part: str) -> str:
    return f"{bus(part)}:outbox:{platform}"


def seen(platform: str, message_id: str, part: str) -> str:
    return f"{bus(part)}:seen:{platform}:{message_id}"


def done(event_id: str, part: str) -> str:
    return f"{bus(part)}:done:{event_id}"


def sent(action_id: str) -> str:
    return f"chorus:sent:{action_id}"


def message(platform: str, message_id: str) -> str:
    return f"chorus:msg:{platform}:{message_id}"


def choices(conversation: str) -> str:
    return f"chorus:choices:{conversation}"


def live(platform: str) -> str:
    """Drafts being written for one platform: a capped stream of its own (no multi-key operation)."""
    return f"chorus:live:{platform}"


def live_claim(event_id: str) -> str:
    return f"chorus:live-claim:{event_id}"


def blob(blob_id: str) -> str:
    return f"chorus:blob:{blob_id}"


def community(community_key: str, *parts: str) -> str:
    """A key owned by one community; ``community_key`` is ``<platform>:<community id>``."""
    return ":".join([f"chorus:{{c:{community_key}}}", *parts])


SCHED_DUE = "chorus:{sched}:due"


def sched_job(job_id: str) -> str:
    return f"chorus:{{sched}}:job:{job_id}"


# -- the web app (core/web): everything a sign-in or a session touches is its community's ----------------
WEB_SECRET = "chorus:{web}:secret"  # noqa: S105 - a key name, not a secret


def signin_link(community_key: str, digest: str) -> str:
    """A one-time sign-in link, by the SHA-256 of its secret part (the secret itself is never stored)."""
    return community(community_key, "web", "link", digest)


def web_session(community_key: str, digest: str) -> str:
    """A dashboard session, by the SHA-256 of its cookie's secret part."""
    return community(community_key, "web", "session", digest)


def web_user_sessions(community_key: str, user: str) -> str:
    """Set of a person's session digests in a community (``/dashboard signout`` ends them all)."""
    return community(community_key, "web", "user", user)


def feed_token_generation(community_key: str, user: str) -> str:
    """Counter in a person's personal feed token: bumping it revokes every URL given before."""
    return community(community_key, "web", "feedgen", user)


def web_rate(bucket: str, who: str) -> str:
    return f"chorus:{{web}}:rate:{bucket}:{who}"


def alive(consumer: str) -> str:
    return f"chorus:alive:{consumer}"


def last_seen(platform: str) -> str:
    """Hash: channel id -> the newest message id an adapter published there (read back after a restart)."""
    return f"chorus:{platform}:last_seen"


def refusals(community_key: str, day: str) -> str:
    """Hash: requests refused on one UTC day ``YYYYMMDD``, by reason (quota, budget, moderation)."""
    return community(community_key, "refusals", day)


def community_spend(community_key: str, day: str) -> str:
    """A community's estimated spend (integer micro-USD) on one UTC day ``YYYYMMDD``."""
    return community(community_key, "spend", day)


def deployment_spend(day: str) -> str:
    """The whole deployment's estimated spend on one UTC day: its own key (one slot on a cluster)."""
    return f"chorus:{{spend}}:{day}"


def warned(spend_key: str) -> str:
    """Set (once a day) when moderators or operators were warned about ``spend_key``; same hash tag."""
    return f"{spend_key}:warned"
