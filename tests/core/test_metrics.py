"""``/metrics`` of a real ``chorus run`` console session, parsed with prometheus_client's own parser."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from core import metrics
from core.router import Router
from core.settings import Settings
from tests.core.test_cli import CHORUS, ROOT
from tests.fakes.openai_api import FakeOpenAI, chat, server_error
from tests.support import build_services, event

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_console_session_moves_the_counters(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHORUS_", "OPENAI_", "TELEGRAM_"))}
    env.update(
        CHORUS_DATA_DIR=str(tmp_path / "data"), CHORUS_HTTP_PORT=str(port), PYTHONPATH=str(ROOT)
    )  # fmt: skip
    proc = subprocess.Popen(
        [*CHORUS, "run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        before: Samples | None = None
        while before is None:
            try:
                before = _scrape(port)
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, "chorus run never served /metrics"
                time.sleep(0.1)
        assert proc.stdin is not None
        proc.stdin.write("/help\n@chorus\n/nonsense\n/stats\n")  # /stats: members may not
        proc.stdin.flush()
        # a delivery is observed after its ack, the last step of an answer
        while _value(after := _scrape(port), "chorus_delivery_seconds_count", platform="console") < 4:
            assert time.monotonic() < deadline, "the console session was not answered"
            time.sleep(0.1)
    finally:
        out, err = proc.communicate(timeout=60)  # EOF ends the session
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err

    assert _value(after, "chorus_sends_total", platform="console", outcome="ok") == 4
    assert _value(after, "chorus_events_in_total", platform="console", kind="command") == 3
    assert _value(after, "chorus_events_in_total", platform="console", kind="mention") == 1
    assert _value(after, "chorus_event_handling_seconds_count", platform="console", kind="command") == 3
    assert _value(after, "chorus_delivery_seconds_count", platform="console") == 4
    assert 0 < _value(after, "chorus_delivery_seconds_sum", platform="console") < 30
    assert _value(after, "chorus_refusals_total", reason="invalid") == 1  # /nonsense
    assert _value(after, "chorus_refusals_total", reason="permission") == 1  # /stats
    # queues are read from Redis at scrape time: everything was answered, nothing waits
    assert _value(after, "chorus_queue_depth", queue="outbox:console") == 0
    assert _value(after, "chorus_queue_lag_seconds", queue="events") == 0
    assert ("chorus_queue_depth", frozenset({("queue", "events")})) in before
    assert _value(after, "process_resident_memory_bytes") > 0


def test_stream_age_reads_the_entry_time() -> None:
    assert metrics.stream_age_s("1000000-0", now=1010.5) == 10.5
    assert metrics.stream_age_s("5000-3", now=1.0) == 0.0  # clocks disagree: never negative


def test_the_dashboard_and_the_docs_name_every_metric_and_only_real_ones() -> None:
    defined = {
        family.name for family in metrics.REGISTRY.collect() if family.name.startswith("chorus_")
    }  # counters are named without their _total suffix here
    dashboard = json.loads((ROOT / "docs" / "grafana-chorus.json").read_text())
    used = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"chorus_[a-z_]+", target["expr"])
    }
    assert used == defined, used ^ defined
    documented = set(re.findall(r"`(chorus_[a-z_]+)`", (ROOT / "docs" / "operations.md").read_text()))
    assert {re.sub(r"_total$", "", name) for name in documented} == defined


def _registry_value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_streamed_drafts_count_calls_latency_tokens_and_errors(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """A draft streamed from the model (the live-draft path) is a model call like any other."""
    async with FakeOpenAI(echo=False) as api:
        api.script("chat", chat("We launched today. Come and see the new release!"), *[server_error(500)] * 3)
        ai = settings.model_copy(
            update={"openai_api_key": SecretStr(api.api_key or ""), "openai_base_url": api.base_url,
                    "model_max_retries": 0, "auto_image": False}
        )  # fmt: skip
        services = await build_services(ai, redis)
        try:
            before = {
                "ok": _registry_value("chorus_model_calls_total", provider="model", outcome="ok"),
                "seconds": _registry_value("chorus_model_call_seconds_count", provider="model"),
                "out": sum(
                    _registry_value("chorus_model_tokens_total", model=m, direction="out")
                    for m in ("gpt-4.1-mini",)
                ),
                "failed": sum(
                    _registry_value("chorus_model_calls_total", provider="model", outcome=o)
                    for o in ("ProviderUnavailable", "APIError", "InternalServerError")
                ),
            }
            router = Router(services)
            await router.route(event(text="@chorus write a post about our launch", platform="console"))
            assert len(api.calls("chat")) == 1 and (api.calls("chat")[0].json or {}).get("stream") is True
            assert (
                _registry_value("chorus_model_calls_total", provider="model", outcome="ok")
                == before["ok"] + 1
            )
            assert (
                _registry_value("chorus_model_call_seconds_count", provider="model") == before["seconds"] + 1
            )
            tokens_out = _registry_value("chorus_model_tokens_total", model="gpt-4.1-mini", direction="out")
            assert tokens_out > before["out"]
            await router.route(event(text="@chorus write a post about our launch", platform="console"))
            failed = sum(
                _registry_value("chorus_model_calls_total", provider="model", outcome=o)
                for o in ("ProviderUnavailable", "APIError", "InternalServerError")
            )
            assert failed > before["failed"]
            assert (
                _registry_value("chorus_model_call_seconds_count", provider="model") > before["seconds"] + 1
            )
        finally:
            await services.aclose()
