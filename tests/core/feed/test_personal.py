"""Steering one's own feed through the Router: mutes, order, feedback, reset — for one person only."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from core.contract import Action, Author, EventKind, OfferChoices, Reply, load_action
from core.feed.feedback import LESS, MORE
from core.feed.preferences import EMPTY
from core.feed.service import FeedService
from core.feed.subscriptions import Subscription
from core.router import Router
from core.services import Services
from tests.core.feed.helpers import CountingSummarizer, item
from tests.support import event, feed_of


@pytest.fixture(autouse=True)
def _summarise_every_story(monkeypatch: pytest.MonkeyPatch) -> None:
    """These stories are a sentence each, which a digest shows as written by default; here each is summarised,
    so the model calls a round makes can be counted (tests/core/feed/test_summaries.py covers as-written)."""
    monkeypatch.setenv("CHORUS_FEED_AS_WRITTEN_CHARS", "0")


ADA = Author(id="u1", name="Ada")
BO = Author(id="u2", name="Bo")
CK = "telegram:-1001"
TG = {"platform": "telegram", "community": "-1001"}
TEXTS = [  # newest last; engagement below makes the hot order differ from the new order
    ("Bitcoin and crypto prices jumped again overnight, traders say.", "news", "Bo", 30),
    ("Community gardening day: tomatoes, beans and a new compost bin.", "garden", "Ada", 20),
    ("The choir rehearses Handel on Thursday evening in the hall.", "events", "Cy", 12),
    ("Weekend trains replaced by buses between the two stations.", "travel", "Di", 8),
    ("The library extends its opening hours during the exam weeks.", "notices", "Ed", 5),
    ("A new bakery opened on the market square, sourdough sold out by noon.", "food", "Fa", 3),
    ("City council votes on the cycling lanes plan next Tuesday.", "politics", "Gu", 2),
    ("Lost cat found near the station, a grey tabby with a red collar.", "notices", "Hu", 1),
]


async def _ingest(feed: FeedService) -> list[str]:
    now = time.time()
    ids = []
    for n, (text, channel, author, reactions) in enumerate(TEXTS):
        post = item(text, channel=channel, author_name=author, created_at=now - 3600 + n * 60)
        await feed.store.ingest([post])
        await feed.store.engage(post.id, reactions=reactions)
        ids.append(post.id)
    return ids


async def _say(services: Services, text: str, author: Author = ADA, **kw: Any) -> str:
    name, _, args = text.partition(" ")
    actions: list[Action] = await Router(services).route(
        event(EventKind.COMMAND, text, command=name, args=args, author=author, **TG, **kw)
    )
    return "\n".join(a.text for a in actions if isinstance(a, Reply | OfferChoices))


async def _press(services: Services, payload: str, author: Author = ADA) -> str:
    actions = await Router(services).route(event(EventKind.CHOICE, "", choice=payload, author=author, **TG))
    return "\n".join(a.text for a in actions if isinstance(a, Reply))


def _order(listing: str) -> list[str]:
    """The first words of each story line of a /feed answer."""
    return re.findall(r"^\d+\. \[[^\]]+\] \w+: (\S+ \S+)", listing, re.MULTILINE)


async def test_mutes_remove_stories_from_feed_for_that_person_only(services: Services) -> None:
    feed = feed_of(services)
    await _ingest(feed)
    before = await _say(services, "feed hot 25")
    assert len(_order(before)) == 8 and "Bitcoin" in before
    assert "Muted here: word crypto" in await _say(services, "feed mute crypto")
    assert "Muted here: author ed, channel travel" in await _say(services, "feed mute @Ed #travel")
    mine = await _say(services, "feed hot 25")
    assert "Bitcoin" not in mine and "library" not in mine and "trains" not in mine
    assert len(_order(mine)) == 5
    assert await _say(services, "feed hot 25", BO) == before  # nobody else's feed changed
    assert "Unmuted: channel travel" in await _say(services, "feed unmute #travel")
    assert "Weekend trains" in await _say(services, "feed hot 25")
    assert "Muted words: crypto." in await _say(services, "feed prefs")
    assert "Every mute lifted" in await _say(services, "feed unmute all")
    assert await _say(services, "feed hot 25") == before
    assert "Use /feed mute" in await _say(services, "feed mute")
    assert "I don't know the platform “myspace”" in await _say(services, "feed mute platform myspace")
    assert "Muted here: platform telegram" in await _say(services, "feed mute telegram")
    assert "Nothing in the feed" in await _say(services, "feed hot 25")  # every story was on Telegram


async def test_feedback_changes_one_persons_order_deterministically(services: Services) -> None:
    feed = feed_of(services)
    ids = await _ingest(feed)
    shared = _order(await _say(services, "feed hot 25"))
    assert shared[0] == "Bitcoin and"  # most reactions
    reply = await _press(services, f"{LESS}:{ids[0]}")
    assert reply.startswith("Noted: less like that (overnight, bitcoin, traders), for you only.")
    mine = _order(await _say(services, "feed hot 25"))
    assert mine != shared and mine.index("Bitcoin and") > shared.index("Bitcoin and")
    assert _order(await _say(services, "feed hot 25")) == mine  # the same every time
    assert _order(await _say(services, "feed hot 25", BO)) == shared  # and only for Ada
    await _press(services, f"{MORE}:{ids[7]}")  # more like the lost cat
    boosted = _order(await _say(services, "feed hot 25"))
    assert boosted.index("Lost cat") < shared.index("Lost cat")
    assert "why: " in await _say(services, "feed hot 25") and "you asked for more about" in await _say(
        services, "feed hot 25"
    )
    assert "no longer in the feed" in await _press(services, f"{MORE}:nosuchstory")


async def test_order_and_reset_restore_the_default(services: Services) -> None:
    services.interpreter.clear()  # steering read by keywords (test_steer.py has the model's reading)
    feed = feed_of(services)
    ids = await _ingest(feed)
    default = await _say(services, "feed")
    assert default.startswith("Hot in this community:")
    await _say(services, "feed order new")
    assert (await _say(services, "feed")).startswith("New in this community:")
    await _say(services, "feed mute bakery")
    await _say(services, "feed steer more about cats, less about council")
    await _press(services, f"{LESS}:{ids[0]}")
    assert await _say(services, "feed hot") != await _say(services, "feed hot", BO)
    prefs = await feed.preferences.get(CK, ADA.id)
    assert prefs.order == "new" and prefs.words == ("bakery",) and prefs.weights
    assert "back to the default" in await _say(services, "feed reset")
    assert await feed.preferences.get(CK, ADA.id) == EMPTY
    assert await _say(services, "feed") == default
    assert "no feed preferences here" in await _say(services, "feed prefs")
    assert "already the default" in await _say(services, "feed reset")
    assert "Use /feed order hot" in await _say(services, "feed order sideways")


async def test_digests_apply_each_subscribers_mutes_without_more_model_calls(services: Services) -> None:
    summarizer = CountingSummarizer()
    services.summarizer.provide(summarizer)
    feed = feed_of(services)
    await _ingest(feed)
    now = time.time()
    for user in ("u1", "u2", "u3"):
        sub = Subscription(
            id=f"s-{user}", platform="telegram", community="-1001", channel="digests", user=user
        )
        await feed.subscriptions.save(sub)
    await feed.preferences.save(CK, "u1", EMPTY.muted("word", ["bitcoin"]).muted("author", ["di"]))
    await feed.preferences.save(CK, "u3", EMPTY.muted("word", ["bitcoin"]).muted("author", ["di"]))
    assert await feed.digests.deliver(["s-u1", "s-u2", "s-u3"], now - 86400, now) == 3
    # five stories and an intro are shared; Ada's two hidden stories are replaced by two of the three extra
    # candidates, each summarised once for everyone who needs it, with no intro written for her
    assert summarizer.calls == 5 + 1 + 2
    outbox = [load_action(a) for a in await services.bus.outbox("telegram")]
    texts: dict[str, str] = {}
    for action in outbox:
        resolved = await services.bus.resolve_shared(action)
        assert isinstance(resolved, OfferChoices)  # Telegram: the digest ends with its buttons
        assert resolved.choices[0].label == "👍 More like 1" and len(resolved.choices) == 10
        texts[str(action.ref).split(":")[1]] = resolved.text
    shared, ada, third = texts["s-u2"], texts["s-u1"], texts["s-u3"]
    assert "Bitcoin" in shared and "Weekend trains" in shared
    assert "Bitcoin" not in ada and "trains" not in ada and "Picked for you" in ada
    assert len(re.findall(r"^\d\. Summary: ", ada, re.MULTILINE)) == 5  # still a full digest
    assert third == ada  # the same preferences share one variant
    assert len({a.shared for a in outbox}) == 2  # and its stored message


async def test_digests_follow_each_subscribers_default_order_without_more_model_calls(
    services: Services,
) -> None:
    summarizer = CountingSummarizer()
    services.summarizer.provide(summarizer)
    feed = feed_of(services)
    await _ingest(feed)
    now = time.time()
    for user in ("u1", "u2", "u3", "u4"):
        sub = Subscription(id=f"s-{user}", platform="telegram", community="-1001", channel="d", user=user)
        await feed.subscriptions.save(sub)
    await feed.preferences.save(CK, "u1", EMPTY.with_order("new"))
    await feed.preferences.save(CK, "u3", EMPTY.with_order("hot"))  # hot: the digest's own ranked order
    await feed.preferences.save(CK, "u4", EMPTY.with_order("new").muted("word", ["bitcoin"]))
    assert await feed.digests.deliver(["s-u1", "s-u2", "s-u3", "s-u4"], now - 86400, now) == 4
    assert summarizer.calls == 5 + 1 + 1  # shared stories and intro; u4's replacement story once
    outbox = [load_action(a) for a in await services.bus.outbox("telegram")]
    texts: dict[str, str] = {}
    for action in outbox:
        texts[str(action.ref).split(":")[1]] = (await services.bus.resolve_shared(action)).text
    stories = {
        u: re.findall(r"^\d\. Summary: (\S+ \S+)", texts[f"s-{u}"], re.MULTILINE)
        for u in ("u1", "u2", "u3", "u4")
    }
    ranked = ["Bitcoin and", "Community gardening", "The choir", "Weekend trains", "The library"]
    assert stories["u2"] == ranked and texts["s-u3"] == texts["s-u2"]
    assert stories["u1"] == ranked[::-1]  # the same stories, newest first
    assert texts["s-u1"].count("why: new in Telegram") == 5 and "why: top in" in texts["s-u2"]
    intro = texts["s-u2"].split("\n")[1]
    assert intro in texts["s-u1"]  # only the order changed: the shared intro still fits
    assert stories["u4"] == ["A new", "The library", "Weekend trains", "The choir", "Community gardening"]
    assert "newest first" in texts["s-u4"]
    shared = {str(a.ref).split(":")[1]: a.shared for a in outbox}
    assert shared["s-u2"] == shared["s-u3"] is not None  # the shared digest: one stored blob
    assert shared["s-u1"] is None and shared["s-u4"] is None  # a variant one person gets travels inline
    inline = next(a for a in outbox if str(a.ref).startswith("digest:s-u4:"))
    assert isinstance(inline, OfferChoices) and len(inline.choices) == 10  # with its feedback buttons


CONSOLE_SCRIPT = """/feed add
Bitcoin and crypto prices jumped again overnight, traders say; the exchange was busy all night long.
Community gardening day this weekend: tomatoes, beans and a new compost bin for everyone to use.
/digest
/choose 2
/feed prefs
/feed reset
"""


async def test_console_digest_choices_through_the_bus(services: Services) -> None:
    """The console shows a digest's feedback as numbered choices; /choose teaches the presser's feed."""
    from tests.core.feed.test_commands import _answers, _console

    services.summarizer.provide(CountingSummarizer())
    answers = _answers(await _console(services, CONSOLE_SCRIPT))
    assert len(answers) == 5
    _, digest, noted, prefs, reset = answers
    assert "1. 👍 More like 1\n2. 👎 Less like 1\n3. 👍 More like 2\n4. 👎 Less like 2" in digest
    first = digest.split("\n\n")[1]
    assert first.startswith("1. Summary: Community gardening day")  # newest first when nobody reacted
    assert noted.startswith("Noted: less like that (community, gardening, everyone), for you only.")
    assert "Less about: community (-1), everyone (-1), gardening (-1)." in prefs
    assert reset.startswith("Done: your feed here is back to the default")


async def test_a_forged_press_on_another_communitys_private_story_reveals_nothing(services: Services) -> None:
    feed = feed_of(services)
    secret = item("Secret merger talks with the rival club next month.", community="-1002", channel="board")
    await feed.store.ingest([secret])
    answer = await _press(services, f"{MORE}:{secret.id}")  # Ada is in -1001; -1002 is private
    assert "no longer in the feed" in answer and "merger" not in answer
    assert await feed.preferences.get(CK, ADA.id) == EMPTY  # and nothing was learned from it
