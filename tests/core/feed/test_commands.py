"""The feed's commands through the Router, and the done-when console session through the real bus."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import pytest

from bots.console.adapter import ConsolePlatform
from bots.console.config import ConsoleSettings
from core.contract import Action, Author, EventKind, OfferChoices, Reply
from core.feed.service import FeedService
from core.router import Router
from core.scheduler import Scheduler
from core.sender import Sender
from core.services import Services
from core.worker import Worker
from tests.core.feed.helpers import CountingSummarizer
from tests.support import event, feed_of

MOD = Author(id="m1", name="Mo", is_moderator=True)
USER = Author(id="u1", name="Ada")


async def _say(services: Services, text: str, author: Author = USER, **kw: Any) -> str:
    name, _, args = text.partition(" ")
    actions: list[Action] = await Router(services).route(
        event(EventKind.COMMAND, text, command=name, args=args, author=author, **kw)
    )
    return "\n".join(a.text for a in actions if isinstance(a, Reply | OfferChoices))


async def test_feed_channel_commands_are_for_moderators(services: Services) -> None:
    assert "Only moderators" in await _say(services, "feed add")
    assert "is in the feed now" in await _say(services, "feed add", MOD)
    assert "#announcements is in the feed" in await _say(services, "feed add #announcements", MOD)
    assert "#announcements, #general" in await _say(services, "feed list", MOD)
    assert "left the feed" in await _say(services, "feed remove <#announcements>", MOD)
    assert "was not in the feed" in await _say(services, "feed remove announcements", MOD)
    assert "Give a channel id" in await _say(services, "feed add #bad!channel", MOD)
    assert "Nothing in the feed" in await _say(services, "feed hot")
    assert "Use /feed hot" in await _say(services, "feed frobnicate")


async def test_subscription_commands(services: Services) -> None:
    reply = await _say(services, "subscribe weekly fri 18:30 Europe/Berlin all rust")
    assert reply.startswith(
        "Subscribed: weekly on Fri at 18:30 (Europe/Berlin), all communities about rust, in this channel"
    )
    assert re.search(r"Next digest: Fri \d\d \w+ 18:30 CES?T", reply)
    assert (await _say(services, "subscribe daily 07:00 dm")).startswith("Subscribed: daily at 07:00 (UTC)")
    assert "Updated your subscription" in await _say(services, "subscribe daily 08:00")
    listing = await _say(services, "subscriptions")
    assert listing.count("\n") == 2 and "1. daily at 08:00 (UTC), this community, in this channel" in listing
    assert "by direct message" in listing
    assert "Use /subscribe" in await _say(services, "subscriptions", Author(id="u2"))
    assert "could not read" in await _say(services, "subscribe daily 31:00")
    scheduler: Scheduler = services.scheduler
    assert await scheduler.next_run("feed-digest:daily|08:00|0|UTC") is not None
    assert "Pick a number" in await _say(services, "unsubscribe 9")
    assert "Unsubscribed: daily at 08:00" in await _say(services, "unsubscribe")  # the one of this channel
    assert "Unsubscribed: daily at 07:00 (UTC), this community, by direct message" in await _say(
        services, "unsubscribe 1"
    )
    assert "no digest subscriptions" in await _say(services, "unsubscribe")


async def test_subscriptions_are_capped(services: Services) -> None:
    feed: FeedService = feed_of(services)
    feed.settings = feed.settings.model_copy(update={"max_subscriptions_per_user": 2})
    for channel in ("a", "b"):
        assert "Subscribed" in await _say(services, "subscribe", channel=channel)
    assert "already have 2" in await _say(services, "subscribe", channel="c")


async def test_optout_and_digest_commands(services: Services) -> None:
    services.summarizer.provide(CountingSummarizer())
    await _say(services, "feed add", MOD)
    for n, text in enumerate(
        [
            "The community call moved to Thursday at 18:00 UTC so more people in the Americas can join.",
            "New blog post about how the ranking normalises engagement per source and decays with time.",
        ]
    ):
        await Router(services).route(event(EventKind.MESSAGE, text, author=USER if n else MOD))
    digest = await _say(services, "digest")
    assert digest.startswith("📰 Daily digest — this community — 2 stories") and "Summary:" in digest
    assert "Nothing in the feed for all communities about pizza" in await _say(services, "digest all pizza")
    assert "1 already in it was removed" in await _say(services, "optout")
    assert "blog post" not in await _say(services, "feed new")
    assert "can join the feed again" in await _say(services, "optin")
    assert "You were not opted out" in await _say(services, "optin")


CONSOLE_SCRIPT = """/feed add
Big news: Chorus v2.0 is live! Faster digests, smarter summaries and a brand-new console. Try it today.
Our office hours move to Wednesdays at 16:00 CET starting next week, same link as always.
Chorus v2.0 is live: faster digests, smarter summaries and a brand-new console! The release notes are out.
/feed hot
/subscribe daily 08:00 Europe/Berlin
/digest
/optout
/feed new
"""


async def _console(services: Services, script: str, timeout: float = 60) -> str:
    out = io.StringIO()
    stop = asyncio.Event()
    console = ConsolePlatform(
        ConsoleSettings(CHORUS_CONSOLE_TIMEOUT_S=timeout),
        services,
        moderator=True,
        stdin=io.StringIO(script),
        stdout=out,
        shutdown=stop.set,
    )
    sender = Sender(services.bus, console, hooks=services.delivery_hooks)
    worker = Worker(services.bus, Router(services), concurrency=4)
    tasks = [asyncio.create_task(sender.run(stop)), asyncio.create_task(worker.run(stop))]
    try:
        await console.start(services.bus.publish)
        await asyncio.wait_for(stop.wait(), timeout=timeout + 30)
    finally:
        stop.set()
        await console.stop()
        await asyncio.gather(*tasks)
    return out.getvalue()


def _answers(printed: str) -> list[str]:
    return [
        m.split("chorus> ", 1)[1].strip() for m in re.split(r"\n(?=\[#\d+\])", printed) if "chorus> " in m
    ]


async def test_console_session_through_the_bus(services: Services) -> None:
    """Done-when: opt a channel in, post, see them ranked, subscribe, digest grouped and summarised, opt out."""
    summarizer = CountingSummarizer()
    services.summarizer.provide(summarizer)
    answers = _answers(await _console(services, CONSOLE_SCRIPT))
    assert len(answers) == 6
    added, hot, subscribed, digest, optout, new = answers
    assert added.startswith("#console is in the feed now")
    assert hot.startswith("Hot in this community:")
    hot_lines = [line for line in hot.splitlines()[1:] if not line.startswith("   why: ")]
    assert len(hot_lines) == 2  # three messages, two stories: the launch was posted twice
    launch = next(line for line in hot_lines if "v2.0" in line)
    assert "(2 sources)" in launch and launch.startswith(("1. [Console] you: ", "2. [Console] you: "))
    assert subscribed.startswith(
        "Subscribed: daily at 08:00 (Europe/Berlin), this community, in this channel"
    )
    assert digest.startswith("📰 Daily digest — this community — 2 stories")
    blocks = digest.split("\n\n")
    assert blocks[0].splitlines()[1].startswith("Summary:")  # the intro
    launch_block = next(b for b in blocks[1:] if "v2.0" in b)
    # a post that fits its summary is shown as written: the model only writes the intro
    assert re.match(r"\d\. Chorus v2\.0 is live", launch_block) and "via Console by you: #console (×2)" in launch_block
    assert summarizer.calls == 1
    assert digest.endswith(
        "1. 👍 More like 1\n2. 👎 Less like 1\n3. 👍 More like 2\n4. 👎 Less like 2\n"
        "Answer with /choose <number>."
    )  # the console's numbered feedback choices
    assert "3 already in it were removed" in optout
    assert new == "Nothing in the feed for this community yet."


@pytest.mark.timeout(400)
async def test_console_digest_with_the_bundled_model(services: Services) -> None:
    """The same digest with the assistant's real summarizer on the bundled SmolLM2 (no API key)."""
    from core.assistant.local_model import bundled_model_path

    if bundled_model_path() is None or not services.summarizer.filled:
        pytest.skip("the assistant or its bundled model is not installed")
    script = "\n".join(CONSOLE_SCRIPT.splitlines()[:4]) + "\n/digest\n"
    answers = _answers(await _console(services, script, timeout=300))
    digest = answers[-1].split("\n\n1. 👍 More like 1")[0]  # without the feedback choices
    print("\n" + digest)
    assert digest.startswith("📰 Daily digest — this community — 2 stories")
    blocks = digest.split("\n\n")
    assert len(blocks) == 3 and len(blocks[0].splitlines()) == 2  # header and intro
    for block in blocks[1:]:
        summary = block.splitlines()[0]
        assert re.match(r"\d\. \S", summary) and len(summary) <= 3 + 220
    assert sorted(b.splitlines()[1].strip() for b in blocks[1:]) == [
        "via Console by you: #console",
        "via Console by you: #console (×2)",  # the launch, posted twice, is one story
    ]


async def test_moderators_list_and_cancel_anyones_subscription_by_id(services: Services) -> None:
    await _say(services, "subscribe daily 08:00")  # Ada's
    await _say(services, "subscribe weekly mon 09:00", Author(id="u2", name="Bo"))
    assert "Only moderators" in await _say(services, "subscriptions community")
    listing = await _say(services, "subscriptions community", MOD)
    ids = re.findall(r"\(id ([A-Za-z0-9_-]{12})\)", listing)
    assert len(ids) == 2 and "Ada: daily at 08:00" in listing and "Bo: weekly on Mon at 09:00" in listing
    bo = ids[1]
    assert "Only moderators can cancel someone else's" in await _say(services, f"unsubscribe {bo}")
    assert "no subscription" in await _say(services, f"unsubscribe {bo}", MOD, community="elsewhere")
    assert (await _say(services, f"unsubscribe {bo}", MOD)).startswith("Cancelled Bo's subscription: weekly")
    assert "no digest subscriptions" in await _say(services, "subscriptions", Author(id="u2"))
    assert (await _say(services, f"unsubscribe {ids[0]}")).startswith("Unsubscribed: daily at 08:00")  # own
    audit = await services.prompts.store.audit("test:c1")
    assert [(a.op, a.spec, a.detail) for a in audit] == [("cancel", f"subscription:{bo}", "Bo")]
