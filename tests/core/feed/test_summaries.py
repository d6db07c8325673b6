from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from core.feed.items import Story
from core.feed.summaries import Summaries, extractive
from tests.core.feed.helpers import item

TEXT = "Chorus v2.0 is live with faster digests. Also: smarter summaries, a new console and more."
LONG = TEXT + " The console now streams drafts as they are written, and the feed explains why a story is there."


class SlowSummarizer:
    def __init__(self) -> None:
        self.calls = 0

    async def summarize(self, text: str, *, max_chars: int) -> str:
        self.calls += 1
        await asyncio.sleep(0.2)
        return f"  The <@123> team shipped   v2.0 @everyone.  {'x' * 400}"


def test_extractive_is_the_first_sentence_trimmed() -> None:
    assert extractive(TEXT, 200) == "Chorus v2.0 is live with faster digests."
    assert len(extractive("word " * 100, 50)) <= 50
    assert (
        extractive("See https://example.com/a for the details of the release!", 200)
        == "See for the details of the release!"
    )


async def test_racing_workers_make_one_model_call(redis: aioredis.Redis) -> None:
    model = SlowSummarizer()
    workers = [Summaries(redis, lambda: model.summarize) for _ in range(3)]
    story = Story("s1", 0.0, [item(LONG)])
    results = await asyncio.gather(*(w.story(story, 120) for w in workers for _ in range(4)))
    assert model.calls == 1 and len(set(results)) == 1
    summary = results[0]
    assert len(summary) <= 120 and "  " not in summary
    assert "@everyone" not in summary and "<@123>" not in summary  # mentions are defused
    assert sum(w.calls for w in workers) == 1
    edited = Story("s1", 0.0, [item(LONG + " Now with release notes.")])
    await workers[0].story(edited, 120)
    assert model.calls == 2  # an edit is a new text: summarised again


async def test_a_story_that_already_fits_is_shown_as_written_without_a_model_call(
    redis: aioredis.Redis,
) -> None:
    model = SlowSummarizer()
    summaries = Summaries(redis, lambda: model.summarize, as_written_chars=120)
    short = Story("s2", 0.0, [item("Garden   opening on Saturday at 10am, <@123> bring gloves!")])
    shown = await summaries.story(short, 120)
    assert shown.startswith("Garden opening on Saturday at 10am,") and shown.endswith("bring gloves!")
    assert "<@123>" not in shown and "  " not in shown  # tidied and defused like a model's summary
    assert model.calls == 0
    await summaries.story(Story("s3", 0.0, [item(LONG)]), 120)
    assert model.calls == 1  # longer than the summary may be: summarised
    everything = Summaries(redis, lambda: model.summarize, as_written_chars=0)
    await everything.story(Story("s4", 0.0, [item("Garden opening on Saturday.")]), 120)
    assert model.calls == 2  # 0: every story is summarised


async def test_intro_is_cached_by_its_content_whatever_the_scope(redis: aioredis.Redis) -> None:
    model = SlowSummarizer()
    summaries = Summaries(redis, lambda: model.summarize)
    a = await summaries.intro("daily", "all communities", ["one", "two"], 280)
    b = await summaries.intro("daily", "this community", ["one", "two"], 280)  # same stories: shared
    await summaries.intro("daily", "all communities", ["one", "three"], 280)
    assert a == b and model.calls == 2
    assert await summaries.intro("daily", "x", [], 280) == ""
    without_model = Summaries(redis, lambda: None)
    assert await without_model.intro("daily", "Telegram", ["one"], 280) == "1 story from daily digest of Telegram."
