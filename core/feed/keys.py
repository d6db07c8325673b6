"""The feed's Redis keys. Everything the feed's scripts touch together lives under one hash tag, ``{feed}``.

=====================================================  =====================================================
``chorus:{feed}:i:<item id>``                          one item: ``<prefix fields>\\x1e<json>`` (TTL = retention)
``chorus:{feed}:st:<story id>``                        set of member item ids of a story with two or more items
``chorus:{feed}:multi``                                set of the story ids that have such a member set
``chorus:{feed}:tl:<new|hot>:c:<platform:community>``  sorted set of story ids: a community's timeline
``chorus:{feed}:tl:<new|hot>:p:<platform>``            sorted set of story ids: a platform's timeline
``chorus:{feed}:platforms``                            set of platforms with items (the global timeline merges them)
``chorus:{feed}:communities``                          set of community keys with items (the retention sweep)
``chorus:{feed}:src:<source>``                         hash ``n`` (items), ``e`` (engagement): a source's baseline
``chorus:{feed}:lsh:<partition>``                      hash: LSH band key (6 bytes) -> story id (TTL = 2 windows)
``chorus:{feed}:au:<platform>:<author id>``            list of an author's item ids (for opt-out purges)
``chorus:{feed}:optout``                               set of ``<platform>:<author id>`` who opted out
``chorus:{feed}:gen``                                  counter bumped by edits, deletions and purges
``chorus:{feed}:sum:<hash>``                           cached summary of a story / intro of a digest
``chorus:{feed}:sub:<id>``                             a subscription (JSON)
``chorus:{feed}:slot:<slot>``                          set of subscription ids sharing one schedule
``chorus:{feed}:subs:<platform>:<community>:<user>``   set of a user's subscription ids in a community
``chorus:{feed}:csubs:<platform>:<community>``          set of a community's subscription ids (moderators' list)
``chorus:{feed}:sent:<subscription>:<window end>``     a digest window sent (``p`` pending, ``s`` sent)
``chorus:{feed}:poll:<source>``                        cursor of a polled source (and ``...:lock``)
``chorus:{c:<platform>:<community>}:feed:channels``    the community's opted-in channels (community-owned)
``chorus:{feed}:public``                               set of the community keys whose feed is public
``chorus:{c:<platform>:<community>}:feed:prefs``       hash: user id -> that person's feed preferences (JSON)
``chorus:{c:<platform>:<community>}:feed:terms:<hour>`` hash: term -> mentions in that hour (trending; TTL)
``chorus:{feed}:terms:<hour>``                         hash: term -> mentions in that hour, all communities
=====================================================  =====================================================
"""

from __future__ import annotations

from core import keys

FEED = "chorus:{feed}:"
# What follows FEED in each kind of key. The feed's Lua scripts are given FEED as KEYS[1] and build their key
# names from these (core/feed/scripts.py writes them into the scripts), so every name is spelled here only.
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

ITEM = FEED + ITEM_
STORY = FEED + STORY_
TIMELINE = FEED + TIMELINE_
PLATFORMS = FEED + PLATFORMS_
COMMUNITIES = FEED + COMMUNITIES_
OPTOUT = FEED + OPTOUT_
GEN = FEED + GEN_
SUBSCRIPTION = FEED + SUB_
SENT = FEED + SENT_
PUBLIC_ = "public"
PUBLIC = FEED + PUBLIC_
"""Communities whose feed anyone may read; every other community's feed is private (the default)."""


def timeline(order: str, kind: str, scope: str) -> str:
    """``order`` is ``new`` or ``hot``; ``kind`` is ``c`` (community key) or ``p`` (platform)."""
    return f"{TIMELINE}{order}:{kind}:{scope}"


def item(item_id: str) -> str:
    return ITEM + item_id


def story(story_id: str) -> str:
    return STORY + story_id


def lsh(partition: int) -> str:
    return f"{FEED}{LSH_}{partition}"


def author(platform: str, author_id: str) -> str:
    return f"{FEED}{AUTHOR_}{platform}:{author_id}"


def summary(digest: str) -> str:
    return f"{FEED}sum:{digest}"


def subscription(sub_id: str) -> str:
    return SUBSCRIPTION + sub_id


def slot(slot_id: str) -> str:
    return f"{FEED}slot:{slot_id}"


def user_subscriptions(platform: str, community: str, user: str) -> str:
    return f"{FEED}subs:{platform}:{community}:{user}"


def community_subscriptions(platform: str, community: str) -> str:
    """Every subscription id of a community; the member ``""`` marks it complete (filled from the users'
    sets once, for subscriptions made before it existed)."""
    return f"{FEED}csubs:{platform}:{community}"


def sent(sub_id: str, window_end: float) -> str:
    """The digests' scripts build the same name from SENT, the subscription id and the window."""
    return f"{SENT}{sub_id}:{window_end:.0f}"


def poll(source: str) -> str:
    return f"{FEED}poll:{source}"


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
    return f"{FEED}terms:{hour}"
