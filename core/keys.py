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
``chorus:blob:<id>``                              image bytes referenced by SendImage Actions (TTL)
``chorus:alive:<consumer>``                       a worker's or sender's heartbeat (short TTL): while it is
                                                  missing, the consumer's pending entries are taken over
``chorus:{sched}:due``                            sorted set of scheduled jobs by next run time
``chorus:{sched}:job:<id>``                       a scheduled job's JSON
``chorus:{c:<platform>:<community>}:...``         everything owned by one community (prompts, drafts,
                                                  quotas, settings): one hash tag per community
``chorus:{feed}:...``                             the aggregated feed
``chorus:{c:<platform>:<community>}:web:...``     sign-in links, sessions, personal feed tokens (core/web)
``chorus:{web}:secret``                           the key that signs CSRF and personal feed tokens
``chorus:{web}:rate:<bucket>:<who>``              a sign-in rate-limit counter (TTL = its window)
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
