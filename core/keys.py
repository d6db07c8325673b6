"""The Redis key scheme, in one place.

Every key starts with ``chorus:``. Keys that one operation touches together share a hash tag (the part in
braces) so the same code runs on Redis Cluster:

================================================  ==========================================================
``chorus:{bus}:events``                           stream of inbound Events (consumer group ``workers``)
``chorus:{bus}:outbox:<platform>``                stream of Actions per platform (consumer group ``senders``)
``chorus:{bus}:dead``                             dead-letter stream (Events and Actions that kept failing)
``chorus:{bus}:seen:<platform>:<message id>``     a platform message already accepted (TTL, dedupe)
``chorus:{bus}:attempts``                         hash: Event stream id -> processing attempts
``chorus:{bus}:done:<event id>``                  JSON list of the Action ids an Event produced (TTL)
``chorus:{bus}:sent:<action id>``                 receipt of a delivered Action: it is never sent twice (TTL)
``chorus:{bus}:msg:<platform>:<message id>``      the Action (and its ``ref``) that created a bot message
``chorus:{bus}:choices:<conversation>``           payloads of the last numbered choices shown as text
``chorus:{bus}:live:<platform>``                  stream of drafts being written (short-lived, capped)
``chorus:{bus}:live-claim:<event id>``            the Reply that replaced an Event's live placeholder
``chorus:blob:<id>``                              image bytes referenced by SendImage Actions (TTL)
``chorus:{sched}:due``                            sorted set of scheduled jobs by next run time
``chorus:{sched}:job:<id>``                       a scheduled job's JSON
``chorus:{c:<platform>:<community>}:...``         everything owned by one community (prompts, drafts,
                                                  quotas, settings): one hash tag per community
``chorus:{feed}:...``                             the aggregated feed
================================================  ==========================================================
"""

from __future__ import annotations

BUS = "chorus:{bus}"
EVENTS = f"{BUS}:events"
DEAD = f"{BUS}:dead"
ATTEMPTS = f"{BUS}:attempts"
WORKERS_GROUP = "workers"
SENDERS_GROUP = "senders"


def outbox(platform: str) -> str:
    return f"{BUS}:outbox:{platform}"


def seen(platform: str, message_id: str) -> str:
    return f"{BUS}:seen:{platform}:{message_id}"


def done(event_id: str) -> str:
    return f"{BUS}:done:{event_id}"


def sent(action_id: str) -> str:
    return f"{BUS}:sent:{action_id}"


def message(platform: str, message_id: str) -> str:
    return f"{BUS}:msg:{platform}:{message_id}"


def choices(conversation: str) -> str:
    return f"{BUS}:choices:{conversation}"


def live(platform: str) -> str:
    return f"{BUS}:live:{platform}"


def live_claim(event_id: str) -> str:
    return f"{BUS}:live-claim:{event_id}"


def blob(blob_id: str) -> str:
    return f"chorus:blob:{blob_id}"


def community(community_key: str, *parts: str) -> str:
    """A key owned by one community; ``community_key`` is ``<platform>:<community id>``."""
    return ":".join([f"chorus:{{c:{community_key}}}", *parts])


SCHED_DUE = "chorus:{sched}:due"


def sched_job(job_id: str) -> str:
    return f"chorus:{{sched}}:job:{job_id}"
