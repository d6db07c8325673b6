"""The feed's chat commands and its installation into Chorus.

``feed add|remove|list`` (moderators) choose the channels whose messages join the feed; ``feed hot|new|top``
shows the ranked feed; ``subscribe``/``unsubscribe``/``subscriptions``/``digest`` manage digests;
``optout``/``optin`` keep a person's messages out of the feed (and purge what is there).
``feed visibility public|private`` (moderators, audited) decides whether anyone may read the community's feed
(private by default); ``feed url [revoke]`` gives a person their private feed-reader URL.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from functools import partial
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from core.catalog import PlatformCatalog
from core.commands import Command, Option
from core.contract import Action, Event, OfferChoices, reply_to_event
from core.errors import InvalidInput, PermissionDenied, QuotaExceeded
from core.features import Feature
from core.feed import keys as fk
from core.feed import personal
from core.feed.cli import CLI
from core.feed.digests import JOB_KIND, Digests
from core.feed.feedback import feedback_choices, offers_feedback
from core.feed.http import feed_http_runner
from core.feed.items import Story
from core.feed.preferences import Profile, choose
from core.feed.reasons import explain
from core.feed.retention import JOB_KIND as RETENTION_KIND
from core.feed.service import FeedService
from core.feed.subscriptions import (
    SUBSCRIPTION_ID,
    USAGE,
    Subscription,
    parse_subscribe,
    subscription_id,
)
from core.feed.timelines import ORDERS, Order, Scope, normalise_topics
from core.prompts.store import AuditEntry, Editor
from core.services import Services
from core.text import truncate
from core.web.commands import privately
from core.web.reading import VisibleTimelines
from core.web.signing import feed_token, revoke_feed_tokens
from core.web.visibility import is_public, set_visibility, visible_to

PERIODS = {
    "hour": 3600.0,
    "hourly": 3600.0,
    "day": 86400.0,
    "daily": 86400.0,
    "week": 604800.0,
    "weekly": 604800.0,
}
VISIBILITY = "feed_visibility"
_CHANNEL = re.compile(r"^<?#?([\w.-]{1,64})>?$")


def _reply(event: Event, text: str) -> list[Action]:
    return [reply_to_event(event, text)]


def _when(t: float, tz: str) -> str:
    return datetime.fromtimestamp(t, ZoneInfo(tz)).strftime("%a %d %b %H:%M %Z")


# -- feed add|remove|list|hot|new|top ---------------------------------------------------------------------


async def _feed_command(feed: FeedService, event: Event, svc: Services) -> list[Action]:
    words = event.args.split()
    if not words:  # the person's own default order
        prefs = await feed.preferences.get(event.community_key, event.author.id)
        return await _show(event, feed, prefs.order or "hot", [])
    action = words[0].lower()
    if action in personal.ACTIONS:
        return await personal.handle(feed, event, action, words[1:])
    if action == "trending":
        everywhere = len(words) > 1 and words[1].lower() == "all"
        terms = await feed.trending.top(None if everywhere else event.community_key, limit=10)
        where = "all communities" if everywhere else "this community"
        if not terms:
            return _reply(event, f"Nothing is rising fast in {where} right now.")
        return _reply(event, f"Trending in {where}: " + " · ".join(terms))
    if action in ("add", "remove", "list"):
        if not event.author.is_moderator:
            raise PermissionDenied(f"Only moderators of this community can use /feed {action}.")
        if event.private:
            raise InvalidInput("Run /feed add in the channel itself (or name it), not in a private chat.")
        if action == "list":
            channels = await feed.channels(event.community_key)
            if not channels:
                return _reply(event, "No channel of this community is in the feed yet. Use /feed add here.")
            return _reply(event, "Channels in the feed: " + ", ".join(f"#{c}" for c in channels))
        channel = event.channel
        if len(words) > 1:
            m = _CHANNEL.match(words[1])
            if not m:
                raise InvalidInput("Give a channel id or #name, e.g. /feed add #announcements.")
            channel = m.group(1)
        if action == "add":
            if not await feed.add_channel(
                event.community_key, channel
            ) and channel not in await feed.channels(event.community_key):
                raise QuotaExceeded("This community already has the maximum number of channels in the feed.")
            return _reply(
                event,
                f"#{channel} is in the feed now: its new messages are ranked with the rest of the feed. "
                "People can keep theirs out with /optout.",
            )
        removed = await feed.remove_channel(event.community_key, channel)
        return _reply(
            event,
            f"#{channel} left the feed; messages already in it stay until they expire."
            if removed
            else f"#{channel} was not in the feed.",
        )
    if action in ORDERS:
        return await _show(event, feed, action, words[1:])
    if action == "visibility":
        return await _visibility(event, svc, words[1:])
    if action == "url":
        return await _feed_url(feed, event, svc, words[1:])
    raise InvalidInput(
        "Use /feed hot|new|top [count] [all|<platform>], /feed trending [all], /feed url, "
        "/feed prefs|mute|unmute|order|steer|reset, or (moderators) /feed add|remove|list|visibility."
    )


async def _visibility(event: Event, svc: Services, words: list[str]) -> list[Action]:
    """Who may read this community's feed on the web and in feed readers; private unless made public."""
    if not words:
        public = await is_public(svc.redis, event.community_key)
        return _reply(
            event,
            "This community's feed is "
            + (
                "public: anyone can read it on the web."
                if public
                else "private: only its members can read it."
            )
            + (" Moderators: /feed visibility public|private." if event.author.is_moderator else ""),
        )
    choice = words[0].lower()
    if not event.author.is_moderator:
        raise PermissionDenied("Only moderators of this community can use /feed visibility.")
    if event.private:
        raise InvalidInput("Run /feed visibility in the community's chat, not in a private chat.")
    if choice not in ("public", "private") or len(words) > 1:
        raise InvalidInput("Use /feed visibility public or /feed visibility private.")
    # the community's audit log (/prompt audit) records who changed it
    editor = Editor(id=event.author.id, name=event.author.name, platform=event.platform)
    await svc.prompts.store.set_setting(event.community_key, VISIBILITY, choice, editor)
    changed = await set_visibility(
        svc.redis, event.community_key, "public" if choice == "public" else "private"
    )
    now = (
        "public: anyone can read it on the web and in feed readers"
        if choice == "public"
        else (
            "private: only people signed in from this community, or with their personal feed URL, can read it"
        )
    )
    return _reply(event, ("The feed is now " if changed else "The feed was already ") + now + ".")


async def _feed_url(feed: FeedService, event: Event, svc: Services, words: list[str]) -> list[Action]:
    """A personal feed-reader URL (signed, revocable), sent privately."""
    if words and words[0].lower() == "revoke":
        await revoke_feed_tokens(svc.redis, event.community_key, event.author.id)
        return _reply(
            event, "Your personal feed URLs for this community no longer work. /feed url gives a new one."
        )
    if words:
        raise InvalidInput("Use /feed url for your personal feed URL, or /feed url revoke.")
    token = await feed_token(svc.redis, event.community_key, event.author.id)
    # no order in the URL: the feed follows the person's default order and mutes as they change them
    query = urlencode({"scope": f"community:{event.community_key}", "token": token})
    base = feed.public_url()
    text = (
        "Your personal feed of this community, for a feed reader, with your mutes and default order "
        f"(/feed prefs; keep it to yourself; /feed url revoke disables it): {base}/feed.atom?{query} "
        "(also .rss and .json)"
    )
    return privately(event, text, "I sent you your feed URL privately.")


async def _show(event: Event, feed: FeedService, order: Order, words: list[str]) -> list[Action]:
    limit, period, scope = 10, 86400.0, Scope("community", event.community_key)
    topics: list[str] = []
    for word in words:
        low = word.lower()
        if low.isdigit():
            limit = max(1, min(int(low), 25))
        elif low in PERIODS:
            period = PERIODS[low]
        elif low == "all":
            scope = Scope()
        elif low in ("community", "here"):
            scope = Scope("community", event.community_key)
        elif low in feed.services.platforms:
            scope = Scope("platform", low)
        else:
            topics.append(word)
    scope = scope.with_topics(topics)
    prefs = await feed.preferences.get(event.community_key, event.author.id)
    fetch = min(limit * 2 + 5, 50) if prefs.changes_ranking else limit  # room for what mutes hide
    # "all" and platform scopes hold only what this community may see: public feeds and its own
    visible = VisibleTimelines(feed.timelines, await visible_to(feed.services.redis, [event.community_key]))
    page = await visible.visible_page(scope, order, fetch, period_s=period)
    chosen = choose(prefs, [Profile.of(s) for s in page.stories], order)[:limit]
    if not chosen:
        return _reply(event, f"Nothing in the feed for {scope.label(feed.services.platforms)} yet.")
    title = {"hot": "Hot", "new": "New", "top": "Top"}[order]
    platforms, tau = feed.services.platforms, feed.settings.tau_s
    lines = [f"{title} in {scope.label(platforms)}:"]
    for n, c in enumerate(chosen, 1):
        why = explain(c.story, order, tau_s=tau, more=c.more, less=c.less).text(platforms)
        lines.append(f"{n}. {_line(c.story, platforms)}\n   why: {why}")
    return _reply(event, "\n".join(lines))


def _line(story: Story, platforms: PlatformCatalog) -> str:
    lead = story.lead
    where = ", ".join(platforms.label(p) for p in story.platforms)
    who = f"{lead.author_name}: " if lead.author_name else ""
    text = truncate(" ".join(lead.text.split()), 140)
    notes = []
    if len(story.items) > 1:
        notes.append(f"{len(story.items)} sources")
    for name, count in story.engagement.items():
        if count and name != "views":
            notes.append(f"{count} {name}")
    link = f" {lead.link(platforms)}" if lead.link(platforms) else ""
    return f"[{where}] {who}{text}" + (f" ({' · '.join(notes)})" if notes else "") + link


# -- subscriptions ----------------------------------------------------------------------------------------


async def _subscribe(feed: FeedService, event: Event, svc: Services) -> list[Action]:
    request = parse_subscribe(event.args)
    dm = event.private if request.dm is None else request.dm
    if dm and not svc.platforms.capabilities(event.platform).direct_messages:
        raise InvalidInput(
            f"I can't send direct messages on {svc.platforms.label(event.platform)}: "
            "subscribe without “dm” to get digests in this channel."
        )
    target = "dm" if dm else f"{event.channel}:{event.thread or '-'}"
    sub_id = subscription_id(event.platform, event.community, event.author.id, target)
    existing = await feed.subscriptions.for_user(event.platform, event.community, event.author.id)
    same = next((s for s in existing if s.id == sub_id), None)
    limit = feed.settings.max_subscriptions_per_user
    if len(existing) >= limit and same is None:
        raise QuotaExceeded(
            f"You already have {limit} subscriptions here. Remove one with /unsubscribe <number>."
        )
    s = request.schedule
    sub = Subscription(
        id=sub_id,
        platform=event.platform,
        community=event.community,
        channel=event.channel,
        thread=event.thread,
        user=event.author.id,
        user_name=event.author.name,
        dm=dm,
        frequency=s.frequency,
        hour=s.hour,
        minute=s.minute,
        weekday=s.weekday,
        tz=s.tz,
        scope=request.scope,
        topics=request.topics,
        created_at=same.created_at if same is not None else time.time(),
    )
    replaced = await feed.subscriptions.save(sub)
    await feed.digests.ensure_job(s)
    verb = "Updated your subscription" if replaced else "Subscribed"
    return _reply(
        event,
        f"{verb}: {sub.describe(svc.platforms)}. Next digest: {_when(s.next_after(time.time()), s.tz)}. "
        "/digest shows one now; /unsubscribe stops it.",
    )


async def _unsubscribe(feed: FeedService, event: Event, svc: Services) -> list[Action]:
    if SUBSCRIPTION_ID.match(event.args.strip()):
        return await _cancel(feed, event, svc, event.args.strip())
    subs = await feed.subscriptions.for_user(event.platform, event.community, event.author.id)
    if not subs:
        return _reply(event, "You have no digest subscriptions here.")
    arg = event.args.strip().lower()
    if arg == "all":
        chosen = subs
    elif arg.isdigit():
        index = int(arg) - 1
        if not 0 <= index < len(subs):
            raise InvalidInput(f"Pick a number from 1 to {len(subs)} (see /subscriptions).")
        chosen = [subs[index]]
    elif arg:
        raise InvalidInput("Use /unsubscribe, /unsubscribe <number> or /unsubscribe all.")
    else:
        target = "dm" if event.private else f"{event.channel}:{event.thread or '-'}"
        here = subscription_id(event.platform, event.community, event.author.id, target)
        chosen = [s for s in subs if s.id == here] or (subs if len(subs) == 1 else [])
        if not chosen:
            return _reply(
                event,
                "You have several subscriptions here:\n"
                + _listing(subs, svc.platforms)
                + "\nUse /unsubscribe <number>.",
            )
    for sub in chosen:
        await feed.subscriptions.remove(sub)
    return _reply(event, "Unsubscribed: " + "; ".join(s.describe(svc.platforms) for s in chosen) + ".")


async def _cancel(feed: FeedService, event: Event, svc: Services, sub_id: str) -> list[Action]:
    """``/unsubscribe <id>``: one subscription by its id; a moderator may cancel anyone's in the community
    (the web dashboard's list cancels through this), which the audit log records."""
    sub = await feed.subscriptions.get(sub_id)
    if sub is None or sub.community_key != event.community_key:
        raise InvalidInput(f"There is no subscription {sub_id} here (see /subscriptions).")
    own = sub.user == event.author.id
    if not own and not event.author.is_moderator:
        raise PermissionDenied("Only moderators can cancel someone else's subscription.")
    await feed.subscriptions.remove(sub)
    if own:
        return _reply(event, f"Unsubscribed: {sub.describe(svc.platforms)}.")
    editor = Editor(id=event.author.id, name=event.author.name, platform=event.platform)
    whose = sub.user_name or sub.user
    entry = AuditEntry(spec=f"subscription:{sub.id}", op="cancel", editor=editor, detail=whose)
    await svc.prompts.store.record(event.community_key, entry)
    return _reply(event, f"Cancelled {whose}'s subscription: {sub.describe(svc.platforms)}.")


def _listing(subs: list[Subscription], platforms: PlatformCatalog) -> str:
    now = time.time()
    return "\n".join(
        f"{n}. {s.describe(platforms)} — next {_when(s.schedule.next_after(now), s.tz)}"
        for n, s in enumerate(subs, 1)
    )


async def _subscriptions(feed: FeedService, event: Event, svc: Services) -> list[Action]:
    if event.args.strip().lower() in ("community", "all"):
        if not event.author.is_moderator:
            raise PermissionDenied("Only moderators can see the whole community's subscriptions.")
        every = await feed.subscriptions.for_community(event.platform, event.community)
        if not every:
            return _reply(event, "Nobody in this community has a digest subscription.")
        lines = [f"{s.user_name or s.user}: {s.describe(svc.platforms)} (id {s.id})" for s in every]
        cancel = "Cancel one with /unsubscribe <id>."
        return _reply(event, "Digest subscriptions in this community:\n" + "\n".join(lines) + "\n" + cancel)
    subs = await feed.subscriptions.for_user(event.platform, event.community, event.author.id)
    if not subs:
        return _reply(event, "You have no digest subscriptions here. " + USAGE)
    return _reply(event, "Your digests here:\n" + _listing(subs, svc.platforms))


async def _digest(feed: FeedService, event: Event, svc: Services) -> list[Action]:
    period, scope = 86400.0, Scope("community", event.community_key)
    topics: list[str] = []
    for word in event.args.split():
        low = word.lower()
        if low in PERIODS:
            period = PERIODS[low]
        elif low == "all":
            scope = Scope()
        elif low in ("community", "here"):
            continue
        else:
            topics.append(word)
    scope = Scope(scope.kind, scope.value, normalise_topics(topics))
    now = time.time()
    # built from what this community may see: public feeds and its own
    visible = VisibleTimelines(feed.timelines, await visible_to(svc.redis, [event.community_key]))
    digests = Digests(svc, visible, feed.summaries, feed.subscriptions, feed.settings)
    digest = await digests.build(scope, now - period, now)
    prefs = await feed.preferences.get(event.community_key, event.author.id)
    digest = await digests.personal(digest, prefs)
    if digest.empty:
        return _reply(event, f"Nothing in the feed for {scope.label(svc.platforms)} in that period yet.")
    caps = feed.digests.capabilities(event.platform)
    replies = Digests.replies_for(reply_to_event(event, ""), digest, caps)
    if offers_feedback(caps) and replies:  # the last message carries "more/less like this"
        last = replies[-1]
        choices = feedback_choices(digest.stories)
        fields = last.model_dump(exclude={"type"})
        replies[-1] = OfferChoices(**fields, choices=choices, allowed_user=event.author.id)
    return replies


# -- opt-out ----------------------------------------------------------------------------------------------


async def _optout(feed: FeedService, event: Event, svc: Services) -> list[Action]:
    removed = await feed.store.optout(event.platform, event.author.id)
    return _reply(
        event,
        f"Done: your messages on {svc.platforms.label(event.platform)} are kept out of the feed from now on, and "
        f"{removed} already in it {'was' if removed == 1 else 'were'} removed. /optin undoes this.",
    )


async def _optin(feed: FeedService, event: Event, svc: Services) -> list[Action]:
    changed = await feed.store.optin(event.platform, event.author.id)
    return _reply(
        event,
        "Your new messages in opted-in channels can join the feed again."
        if changed
        else "You were not opted out.",
    )


def commands(feed: FeedService) -> tuple[Command[Services], ...]:
    """The feed's commands, bound to it."""
    return (
        Command(
            "feed",
            "the ranked feed; moderators choose its channels",
            "feed hot|new|top [n] [all|<platform>] · feed trending [all] · feed url · "
            "feed prefs|mute|unmute|order|steer|reset · feed add|remove|list [channel] · "
            "feed visibility [public|private]",
            partial(_feed_command, feed),
            options=(
                Option("action", "hot, new, top, url, add, remove, list or visibility"),
                Option("args", "more", rest=True),
            ),
            group="feed",
        ),
        Command(
            "subscribe",
            "get digests of the feed",
            "subscribe [hourly|daily|weekly] [HH:MM] [time zone] [all|community] [dm] [topic words]",
            partial(_subscribe, feed),
            options=(Option("schedule", "e.g. daily 08:30 Europe/Berlin all", rest=True),),
            group="feed",
        ),
        Command(
            "unsubscribe",
            "stop digests",
            "unsubscribe [number|all|id]",
            partial(_unsubscribe, feed),
            options=(Option("which", "number from /subscriptions, all, or an id (moderators: anyone's)"),),
            group="feed",
        ),
        Command(
            "subscriptions",
            "your digest subscriptions (moderators: community for everyone's)",
            "subscriptions [community]",
            partial(_subscriptions, feed),
            options=(Option("whose", "community: everyone's (moderators)", choices=("community",)),),
            group="feed",
        ),
        Command(
            "digest",
            "a digest of the feed now",
            "digest [hourly|daily|weekly] [all] [topic words]",
            partial(_digest, feed),
            options=(Option("scope", "period, all, topic words", rest=True),),
            group="feed",
        ),
        Command(
            "optout", "keep your messages out of the feed", "optout", partial(_optout, feed), group="feed"
        ),
        Command(
            "optin", "allow your messages in the feed again", "optin", partial(_optin, feed), group="feed"
        ),
    )


async def install(svc: Services) -> FeedService:
    feed = FeedService(svc)
    for command in commands(feed):
        svc.commands.register(command)
    svc.observers.append(feed.observe)
    svc.delivery_hooks.append(feed.on_delivered)
    personal.register(svc, feed)
    svc.feed_channels.provide(feed.opted_in)
    svc.public_url.provide(feed.public_url)
    svc.scheduler.register(JOB_KIND, feed.digests.run_slot)
    svc.scheduler.register(RETENTION_KIND, feed.retention.run)
    await feed.retention.ensure_job(svc.scheduler)
    svc.background["feed-http"] = feed_http_runner(svc, feed)
    svc.background["feed-poll"] = feed.poller.run
    return feed


FEATURE = Feature(
    "feed",
    install,
    cli=(CLI,),
    describe=lambda settings: {"Feed": f"{fk.PARTITIONS} partitions (fixed; docs/scaling.md)"},
)
