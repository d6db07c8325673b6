"""The feed's Redis keys, in ``PARTITIONS`` partitions (each its own hash tag) so a cluster spreads the feed.

A story lives in one partition, its *home*: its items (the lead's and those that joined it), its member set,
and its entries in the per-partition timelines. A story's home is the partition of its id (the lead item's
id), and an item id starts with two characters derived from its community (``items.item_id``), so a story
started in a community is at home in that community's partition, and any id alone says where to look.
An item that joins a story at home elsewhere is stored with the story and leaves a *stub* (``@<story id>``)
under its own id in its community's partition, so edits, reactions and deletions still find it by id.

Timelines are per partition: a community's timeline is the union of its timeline in its own partition and
in the partitions listed in its ``xp`` set (where stories it joined live); a platform's timeline and the
global one merge every partition at read, by (score, id), so ``<score>~<id>`` cursors stay valid.
Every script runs in one partition (KEYS[1] is that partition's prefix); nothing spans two slots.

``P`` = ``chorus:{<partition tag>}:`` (``prefix``):

=====================================================  =====================================================
``P i:<item id>``                                      one item: ``<prefix fields>\\x1e<json>`` (TTL = retention),
                                                       or a stub ``@<story id>`` (the item lives there)
``P st:<story id>``                                    set of member item ids of a story with two or more items
``P multi``                                            set of the story ids that have such a member set
``P tl:<new|hot>:c:<platform:community>``              a community's stories at home in this partition
``P tl:<new|hot>:p:<platform>``                        a platform's stories at home in this partition
``P xp:<platform:community>``                          (community's partition) other partitions with its stories
``P platforms``                                        platforms with stories here (the global timeline merges them)
``P communities``                                      community keys with stories here (the retention sweep)
``P src:<source>``                                     hash ``n`` (items), ``e`` (engagement): a source's baseline
``P lsh:<window>``                                     hash: LSH band key (6 bytes) -> story id (TTL = 2 windows);
                                                       a band key's partition is its first byte's
``P au:<platform>:<author id>``                        list of an author's item ids stored here (opt-out purges)
``P optout``                                           ``<platform>:<author id>`` who opted out (in every partition)
``P gen``                                              counter bumped by edits, deletions and purges
``P sub:<id>``                                         a subscription (JSON); partition by CRC-32 of its id
``P slot:<slot>``                                      subscription ids of this partition sharing one schedule
``P sent:<subscription>:<window end>``                 a digest window sent (``p`` pending, ``s`` sent)
``chorus:{c:<platform>:<community>}:feed:subs:<user>``  set of a user's subscription ids in a community
``chorus:{c:<platform>:<community>}:feed:csubs``  set of a community's subscription ids (moderators' list)
``chorus:feed:sum:<hash>``                             cached summary of a story / intro of a digest (no tag)
``chorus:{feed}:poll:<source>``                        cursor of a polled source (and ``...:lock``)
``chorus:{c:<platform>:<community>}:feed:channels``    the community's opted-in channels (community-owned)
``chorus:{feed}:public``                               set of the community keys whose feed is public
``chorus:{c:<platform>:<community>}:feed:prefs``       hash: user id -> that person's feed preferences (JSON)
``chorus:{c:<platform>:<community>}:feed:terms:<hour>`` hash: term -> mentions in that hour (trending; TTL)
``chorus:{feed}:terms:<hour>``                         hash: term -> mentions in that hour, all communities
=====================================================  =====================================================

Data written before partitions (every key under ``{feed}``) is moved by ``chorus feed migrate``
(docs/scaling.md).
"""

from __future__ import annotations

import zlib

from core import keys

PARTITIONS = 12
"""Fixed: ids carry their community's code (4,096 values) and a partition is that code modulo this, so
changing it is a migration. 12 spreads evenly over 2, 3, 4, 6 or 12 masters."""
TAGS = keys.layout(PARTITIONS, "feed")
CODES = 4096
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # base64url
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}

SHARED = "chorus:{feed}:"  # the few feed-wide keys that are one small key each
# What follows a partition's prefix in each kind of key. The feed's Lua scripts are given that prefix as
# KEYS[1] and build their key names from these (core/feed/scripts.py writes them into the scripts).
ITEM_ = "i:"
STORY_ = "st:"
TIMELINE_ = "tl:"
SOURCE_ = "src:"
LSH_ = "lsh:"
AUTHOR_ = "au:"
MULTI_ = "multi"
PLATFORMS_ = "platforms"
COMMUNITIES_ = "communities"
OPTOUT_ = "optout"
GEN_ = "gen"
SUB_ = "sub:"
SENT_ = "sent:"
FOREIGN_ = "xp:"
STUB = "@"
"""An item value starting with this is a stub: ``@<story id>``, the item lives in that story's home."""

PUBLIC_ = "public"
PUBLIC = SHARED + PUBLIC_
"""Communities whose feed anyone may read; every other community's feed is private (the default)."""


def community_code(community_key: str) -> str:
    """Two characters (4,096 values) of a community key's CRC-32: the start of its items' ids."""
    n = zlib.crc32(community_key.encode()) % CODES
    return _ALPHABET[n // 64] + _ALPHABET[n % 64]


def part_of(any_id: str) -> int:
    """The partition of an item or story id (its first two characters), or of a subscription id."""
    a, b = _INDEX.get(any_id[:1]), _INDEX.get(any_id[1:2])
    if a is None or b is None:
        return zlib.crc32(any_id.encode()) % PARTITIONS
    return (a * 64 + b) % PARTITIONS


def community_part(community_key: str) -> int:
    return part_of(community_code(community_key))


def prefix(part: int) -> str:
    """Every key of partition ``part`` starts with this (the scripts' KEYS[1])."""
    return f"chorus:{{{TAGS[part]}}}:"


def timeline(part: int, order: str, kind: str, scope: str) -> str:
    """``order`` is ``new`` or ``hot``; ``kind`` is ``c`` (community key) or ``p`` (platform)."""
    return f"{prefix(part)}{TIMELINE_}{order}:{kind}:{scope}"


def item(item_id: str) -> str:
    """Where an id leads: the item, or its stub when it joined a story at home elsewhere."""
    return item_in(part_of(item_id), item_id)


def item_in(part: int, item_id: str) -> str:
    return prefix(part) + ITEM_ + item_id


def story(story_id: str) -> str:
    return prefix(part_of(story_id)) + STORY_ + story_id


def lsh_part(band_key: bytes) -> int:
    return band_key[0] % PARTITIONS


def lsh(part: int, window: int) -> str:
    return f"{prefix(part)}{LSH_}{window}"


def author(part: int, platform: str, author_id: str) -> str:
    return f"{prefix(part)}{AUTHOR_}{platform}:{author_id}"


def foreign(community_key: str) -> str:
    """Other partitions holding stories with this community's items (stories it joined)."""
    return f"{prefix(community_part(community_key))}{FOREIGN_}{community_key}"


def platforms(part: int) -> str:
    return prefix(part) + PLATFORMS_


def communities(part: int) -> str:
    return prefix(part) + COMMUNITIES_


def optout(part: int) -> str:
    return prefix(part) + OPTOUT_


def gen(part: int) -> str:
    return prefix(part) + GEN_


def summary(digest: str) -> str:
    """A cache entry read and written alone: no hash tag, so summaries spread over every slot."""
    return f"chorus:feed:sum:{digest}"


def sub_part(sub_id: str) -> int:
    return zlib.crc32(sub_id.encode()) % PARTITIONS


def subscription(sub_id: str) -> str:
    return prefix(sub_part(sub_id)) + SUB_ + sub_id


def slot(part: int, slot_id: str) -> str:
    return f"{prefix(part)}slot:{slot_id}"


def user_subscriptions(platform: str, community: str, user: str) -> str:
    return keys.community(f"{platform}:{community}", "feed", "subs", user)


def sent_prefix(part: int) -> str:
    """The digests' scripts build a marker's name from this, the subscription id and the window."""
    return prefix(part) + SENT_


def community_subscriptions(platform: str, community: str) -> str:
    """Every subscription id of a community; the member ``""`` marks it complete (filled from the users'
    sets once, for subscriptions made before it existed)."""
    return keys.community(f"{platform}:{community}", "feed", "csubs")


def sent(sub_id: str, window_end: float) -> str:
    return f"{sent_prefix(sub_part(sub_id))}{sub_id}:{window_end:.0f}"


def poll(source: str) -> str:
    return f"{SHARED}poll:{source}"


def channels(community_key: str) -> str:
    """Opted-in channels are the community's configuration, under its own hash tag."""
    return keys.community(community_key, "feed", "channels")


def preferences(community_key: str) -> str:
    """Every person's feed preferences in one community: one hash, so a digest round reads a batch of
    subscribers' preferences with one HMGET per community (and the key stays in the community's slot)."""
    return keys.community(community_key, "feed", "prefs")


def community_terms(community_key: str, hour: int) -> str:
    """Term counts of one community in one hour (trending by velocity)."""
    return keys.community(community_key, "feed", "terms", str(hour))


def all_terms(hour: int) -> str:
    """Term counts of every community in one hour."""
    return f"{SHARED}terms:{hour}"


def source(part: int, name: str) -> str:
    """A source's baseline in one partition (the scripts keep one where its items are stored)."""
    return prefix(part) + SOURCE_ + name


def multi(part: int) -> str:
    return prefix(part) + MULTI_
