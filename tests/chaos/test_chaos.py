"""The chaos suite at CI size: 100 mentions on Telegram and on Discord through the real processes and SDKs
while workers, the adapter and redis-server are SIGKILLed and 15 % of sends fail (bench/chaos.py runs the
1,000-mention version)."""

from __future__ import annotations

import pytest

from bench.chaos import Options, run_once, summary


@pytest.mark.timeout(600)
@pytest.mark.parametrize("platform", ["telegram", "discord"])
async def test_small_chaos_run_loses_nothing_and_sends_nothing_twice(platform: str) -> None:
    figures = await run_once(
        Options(platform=platform, mentions=100, rate=5.0, groups=40, claim_idle_ms=5000, seed=7)
    )
    report = summary([figures])
    assert figures.kills.get("worker", 0) >= 1 and figures.kills.get("adapter") == 1, report
    assert figures.kills.get("redis") == 1, report
    assert figures.injected_429 > 0 and figures.injected_5xx > 0, report
    assert figures.lost == 0, report
    assert figures.duplicated == 0, report
    assert figures.partial == 0, report
    assert figures.answered + figures.dead_lettered == 100, report
    assert figures.tracebacks == 0, report
