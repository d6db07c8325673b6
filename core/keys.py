"""The Redis key scheme, in one place.

Every key starts with ``chorus:``. Keys that one operation touches together share a hash tag (the part in
braces), so every multi-key command and script stays inside one slot and the same code runs on Redis
Cluster. The bus is split into partitions, each its own hash tag, so its traffic spreads over the shards:

================================================  ==========================================================
``chorus:{bus:<p>}:events``                       stream of inbound Events (consumer group ``workers``)
``chorus:{bus:<p>}:outbox:<platform>``            stream of Actions per platform (consumer group ``senders``)
``chorus:{bus:<p>}:dead``                         dead-letter stream (Events and Actions that kept failing)
``chorus:{bus:<p>}:seen:<platform>:<message id>`` a platform message already accepted (TTL, dedupe)
``chorus:{bus:<p>}:attempts``                     hash: stream id -> processing attempts
``chorus:{bus:<p>}:done:<event id>``              JSON list of the Action ids an Event produced (TTL)
``chorus:sent:<action id>``                       receipt of a delivered Action: it is never sent twice (TTL)
``chorus:msg:<platform>:<message id>``            the Action (and its ``ref``) that created a bot message
``chorus:choices:<conversation>``                 payloads of the last numbered choices shown as text
``chorus:blob:<id>``                              image bytes referenced by SendImage Actions (TTL)
``chorus:{sched}:due``                            sorted set of scheduled jobs by next run time
``chorus:{sched}:job:<id>``                       a scheduled job's JSON
``chorus:{c:<platform>:<community>}:...``         everything owned by one community (prompts, drafts,
                                                  quotas, settings): one hash tag per community
``chorus:{feed}:...``                             the aggregated feed (core/feed/keys.py)
================================================  ==========================================================

Partition ``p`` of the bus is chosen by a stable hash of the community key (``partition``), so one
community's Events and Actions keep their order. Partition 0 is spelled ``{bus}``: the layout before
partitions is exactly the layout with one partition, and upgrading is changing the number of partitions
(docs/scaling.md). Receipts, bot messages, choices and blobs are looked up by id alone and written by one
command each: they carry no hash tag, so Redis spreads them over every slot by their own names.
"""

from __future__ import annotations

import zlib

DEFAULT_PARTITIONS = 8  # CHORUS_BUS_PARTITIONS: enough to spread over 3 masters, few enough to poll
WORKERS_GROUP = "workers"
SENDERS_GROUP = "senders"


def partition(community_key: str, partitions: int) -> int:
    """The bus partition of a community: CRC-32, the same in every process and Python version."""
    return zlib.crc32(community_key.encode()) % partitions


def bus(part: int) -> str:
    """The prefix of one partition's keys; partition 0 keeps the unpartitioned names."""
    return "chorus:{bus}" if part == 0 else f"chorus:{{bus:{part}}}"


def events(part: int) -> str:
    return f"{bus(part)}:events"


def dead(part: int) -> str:
    return f"{bus(part)}:dead"


def attempts(part: int) -> str:
    return f"{bus(part)}:attempts"


def outbox(platform: str, part: int) -> str:
    return f"{bus(part)}:outbox:{platform}"


def seen(platform: str, message_id: str, part: int) -> str:
    return f"{bus(part)}:seen:{platform}:{message_id}"


def done(event_id: str, part: int) -> str:
    return f"{bus(part)}:done:{event_id}"


def sent(action_id: str) -> str:
    return f"chorus:sent:{action_id}"


def message(platform: str, message_id: str) -> str:
    return f"chorus:msg:{platform}:{message_id}"


def choices(conversation: str) -> str:
    return f"chorus:choices:{conversation}"


def blob(blob_id: str) -> str:
    return f"chorus:blob:{blob_id}"


def community(community_key: str, *parts: str) -> str:
    """A key owned by one community; ``community_key`` is ``<platform>:<community id>``."""
    return ":".join([f"chorus:{{c:{community_key}}}", *parts])


SCHED_DUE = "chorus:{sched}:due"


def sched_job(job_id: str) -> str:
    return f"chorus:{{sched}}:job:{job_id}"
