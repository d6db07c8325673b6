"""Preferences: what they store, and ``apply`` — the function pages, digests and token feeds call."""

from __future__ import annotations

import json
import time

import feedparser
import redis.asyncio as aioredis

from core.feed.exports import FeedMeta, render_atom, render_json_feed, render_rss
from core.feed.ingest import FeedStore
from core.feed.items import Story
from core.feed.preferences import (
    EMPTY,
    WEIGHT_LIMIT,
    Preferences,
    PreferenceStore,
    Profile,
    apply,
    choose,
    key_terms,
)
from core.feed.timelines import Scope, Timelines
from tests.core.feed.helpers import item
from tests.support import CATALOG

META = FeedMeta(
    title="t",
    description="d",
    home_url="http://127.0.0.1:1/",
    self_url="http://127.0.0.1:1/f",
    platforms=CATALOG,
)
TEXTS = {
    "crypto": ("Bitcoin and crypto prices jumped again overnight, traders say.", "telegram", "news", "Bo"),
    "garden": ("Community gardening day: tomatoes, beans and a new compost bin.", "discord", "garden", "Ada"),
    "music": ("The choir rehearses Handel on Thursday evening in the hall.", "x", "events", "Cy"),
    "trains": ("Weekend trains replaced by buses between the two stations.", "telegram", "travel", "Di"),
}


async def _stories(redis: aioredis.Redis) -> dict[str, Story]:
    store = FeedStore(redis)
    now = time.time()
    for n, (text, platform, channel, author) in enumerate(TEXTS.values()):
        await store.ingest(
            [item(text, platform=platform, channel=channel, author_name=author, created_at=now - 60 * n)]
        )
    page = await Timelines(redis).page(Scope(), "hot", 10)
    assert len(page.stories) == 4
    return {next(k for k, v in TEXTS.items() if v[0] == s.lead.text): s for s in page.stories}


def test_preferences_round_trip_and_bounds() -> None:
    prefs = (
        EMPTY.muted("word", ["crypto", "crypto"])
        .muted("author", ["bo"])
        .with_order("new")
        .learned(more=["gardening"], less=["crypto"])
    )
    assert prefs.words == ("crypto",) and prefs.order == "new"
    assert Preferences.from_json(prefs.to_json()) == prefs
    for _ in range(10):
        prefs = prefs.learned(more=["gardening"])
    assert prefs.weight_map["gardening"] == WEIGHT_LIMIT
    assert "crypto" not in prefs.learned(more=["crypto"]).weight_map  # back at zero: forgotten
    assert prefs.unmuted("word", ["crypto"]).words == ()
    assert Preferences.from_json(None) == EMPTY and EMPTY.empty


async def test_apply_mutes_words_authors_channels_and_platforms(redis: aioredis.Redis) -> None:
    stories = await _stories(redis)
    every = list(stories.values())
    assert apply(EMPTY, every) == every  # no preferences: the shared order untouched

    def names(prefs: Preferences) -> set[str]:
        return {next(k for k, v in stories.items() if v.id == s.id) for s in apply(prefs, every)}

    assert names(EMPTY.muted("word", ["crypto"])) == {"garden", "music", "trains"}
    assert names(EMPTY.muted("author", ["ada"])) == {"crypto", "music", "trains"}
    assert names(EMPTY.muted("channel", ["travel"])) == {"crypto", "garden", "music"}
    assert names(EMPTY.muted("platform", ["telegram"])) == {"garden", "music"}


async def test_apply_narrows_a_cross_platform_story_to_its_unmuted_items(redis: aioredis.Redis) -> None:
    store = FeedStore(redis)
    now = time.time()
    text = "Chorus v2.0 is live! Faster digests, smarter summaries and a brand-new console. Try it today."
    await store.ingest([item(text, platform="x", created_at=now - 120)])
    await store.ingest([item(text.replace("Try it today.", "Out now."), platform="telegram", created_at=now)])
    [story] = (await Timelines(redis).page(Scope(), "hot", 10)).stories
    assert story.platforms == ["telegram", "x"]
    [narrowed] = apply(EMPTY.muted("platform", ["x"]), [story])
    assert narrowed.id == story.id and narrowed.platforms == ["telegram"]
    assert apply(EMPTY.muted("platform", ["x", "telegram"]), [story]) == []


async def test_weights_reorder_hot_but_never_new(redis: aioredis.Redis) -> None:
    stories = await _stories(redis)
    every = list(stories.values())
    music_first = EMPTY.learned(more=["choir"])
    assert apply(music_first, every, "hot")[0].id == stories["music"].id
    assert apply(music_first, every, "new") == every  # chronological stays chronological
    crypto_last = EMPTY.learned(less=["bitcoin"])
    assert apply(crypto_last, every, "hot")[-1].id == stories["crypto"].id
    chosen = choose(music_first, [Profile.of(s) for s in every], "hot")
    assert chosen[0].more == ("choir",) and chosen[0].boost == 1.0
    assert apply(music_first, every, "hot") == apply(music_first, every, "hot")  # deterministic


async def test_mutes_remove_stories_from_rss_atom_and_json_feed_outputs(redis: aioredis.Redis) -> None:
    """What a token feed does with a page: ``apply(prefs, page.stories, order)`` before rendering."""
    stories = await _stories(redis)
    prefs = EMPTY.muted("word", ["bitcoin"]).muted("platform", ["x"])
    shown = apply(prefs, list(stories.values()), "hot")
    as_json = render_json_feed(shown, META)
    titles = [i["title"] for i in as_json["items"]]
    assert len(titles) == 2 and not any("Bitcoin" in t or "choir" in t for t in titles)
    for rendered in (render_atom(shown, META), render_rss(shown, META)):
        entries = feedparser.parse(rendered).entries
        assert len(entries) == 2 and all("Bitcoin" not in e.title and "choir" not in e.title for e in entries)
    assert "Bitcoin" not in json.dumps(as_json)


async def test_store_reads_many_people_per_community(redis: aioredis.Redis) -> None:
    store = PreferenceStore(redis)
    await store.save("telegram:1", "u1", EMPTY.muted("word", ["crypto"]))
    await store.save("discord:2", "u1", EMPTY.with_order("new"))
    found = await store.many([("telegram:1", "u1"), ("telegram:1", "u2"), ("discord:2", "u1")])
    assert found == {
        ("telegram:1", "u1"): EMPTY.muted("word", ["crypto"]),
        ("discord:2", "u1"): EMPTY.with_order("new"),
    }
    assert await store.get("discord:2", "u2") == EMPTY  # nobody else's preferences leak
    await store.save("telegram:1", "u1", EMPTY)  # saving the default stores nothing
    assert await redis.hlen("chorus:{c:telegram:1}:feed:prefs") == 0


async def test_key_terms_are_the_storys_main_words(redis: aioredis.Redis) -> None:
    stories = await _stories(redis)
    assert key_terms(stories["garden"]) == [
        "community",
        "gardening",
        "tomatoes",
    ]  # most frequent, longest, a-z
