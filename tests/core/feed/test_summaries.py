from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from core.feed.items import Story
from core.feed.summaries import Summaries, extractive
from tests.core.feed.helpers import item

TEXT = "Chorus v2.0 is live with faster digests. Also: smarter summaries, a new console and more."


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
    story = Story("s1", 0.0, [item(TEXT)])
    results = await asyncio.gather(*(w.story(story, 120) for w in workers for _ in range(4)))
    assert model.calls == 1 and len(set(results)) == 1
    summary = results[0]
    assert len(summary) <= 120 and "  " not in summary
    assert "@everyone" not in summary and "<@123>" not in summary  # mentions are defused
    assert sum(w.calls for w in workers) == 1
    edited = Story("s1", 0.0, [item(TEXT + " Now with release notes.")])
    await workers[0].story(edited, 120)
    assert model.calls == 2  # an edit is a new text: summarised again


async def test_intro_is_cached_by_its_content(redis: aioredis.Redis) -> None:
    model = SlowSummarizer()
    summaries = Summaries(redis, lambda: model.summarize)
    a = await summaries.intro("daily digest of all communities", ["one", "two"], 280)
    b = await summaries.intro("daily digest of all communities", ["one", "two"], 280)
    await summaries.intro("daily digest of all communities", ["one", "three"], 280)
    assert a == b and model.calls == 2
    assert await summaries.intro("x", [], 280) == ""
