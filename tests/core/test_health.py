"""``/readyz`` against a real redis-server that is stopped and started again, and a real model endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from core.bus import Bus
from core.contract import EventKind
from core.feed.http import FeedHttp
from core.feed.service import FeedService
from core.redis_server import EmbeddedRedis, connect
from core.sender import Sender
from core.settings import Settings
from tests.core.test_cli import CHORUS, ROOT
from tests.fakes.openai_api import FakeOpenAI, error
from tests.support import RecordingPlatform, build_services, event


class Unplugged(RecordingPlatform):
    """A platform adapter that says whether it is connected."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.up = True

    def connected(self) -> bool:
        return self.up


async def _ready(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{base}/readyz") as r:
        return r.status, await r.json()


async def _until(http: aiohttp.ClientSession, base: str, status: int, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got, body = await _ready(http, base)
        if got == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz stayed {got} (wanted {status}): {body}")
        await asyncio.sleep(0.1)


async def test_readyz_follows_redis_the_adapters_and_the_model(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "own")  # our own server: stopping it must not disturb other tests
    server.ensure_running()
    async with FakeOpenAI() as openai:
        settings = Settings(
            CHORUS_DATA_DIR=tmp_path / "data",
            CHORUS_REDIS_URL=server.url,
            OPENAI_BASE_URL=openai.base_url,
            OPENAI_API_KEY=openai.api_key,
        )
        redis = connect(server.url)
        services = await build_services(settings, redis)
        adapter = Unplugged("telegram")
        Sender(services.bus, adapter)  # a sender watches its adapter's connection
        http_server = FeedHttp(FeedService(services), "127.0.0.1", 0)
        base = f"http://127.0.0.1:{await http_server.start()}"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/healthz") as r:
                    assert r.status == 200 and await r.text() == "ok"
                status, body = await _ready(http, base)
                assert status == 200 and body["ready"] is True, body
                assert {c["name"] for c in body["checks"]} == {"redis", "adapter:telegram", "model"}
                assert openai.calls("models"), "the model endpoint was really asked"

                adapter.up = False
                status, body = await _ready(http, base)
                assert status == 503 and body["reason"] == "telegram is not connected"
                adapter.up = True

                assert server.process is not None
                server.process.kill()  # Redis goes away without a goodbye
                server.process.wait(10)
                body = await _until(http, base, 503)
                assert body["ready"] is False and body["reason"].startswith("redis unreachable"), body
                async with http.get(f"{base}/healthz") as r:
                    assert r.status == 200  # alive, just not ready

                server.ensure_running()
                await _until(http, base, 200)

                # a passing model check is cached for a while; a fresh app asks the provider again
                openai.script("models", error(401, "bad key", "invalid_api_key"))
                fresh = FeedHttp(FeedService(services), "127.0.0.1", 0)
                fresh_base = f"http://127.0.0.1:{await fresh.start()}"
                try:
                    status, body = await _ready(http, fresh_base)
                    assert status == 503 and "model provider answered 401" in body["reason"], body
                finally:
                    await fresh.stop()
        finally:
            await http_server.stop()
            await services.aclose()
            await redis.aclose()
            server.release()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - http://127.0.0.1 only
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _handled(port: int) -> float:
    _, text = _get(f"http://127.0.0.1:{port}/metrics")
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "chorus_event_handling_seconds_count" and s.labels == {
                "platform": "console",
                "kind": "command",
            }:
                return s.value
    return 0.0


async def test_chorus_worker_serves_metrics_health_and_readiness_on_its_own_port(tmp_path: Path) -> None:
    """Two ``chorus worker`` processes on one machine: the first serves its port; the second, given the same
    one, says so in one line and works on without it."""
    server = EmbeddedRedis(tmp_path / "own")
    server.ensure_running()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHORUS_", "OPENAI_", "TELEGRAM_"))}
    env.update(CHORUS_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT), CHORUS_REDIS_URL=server.url)
    start = [*CHORUS, "worker", "--no-scheduler", "--metrics-port", str(port)]
    logs = [tmp_path / "first.log", tmp_path / "second.log"]

    def spawn(log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(start, stderr=out, cwd=tmp_path, env=env)

    first = spawn(logs[0])
    second: subprocess.Popen[bytes] | None = None
    redis = connect(server.url)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except (urllib.error.URLError, ConnectionError):
                assert first.poll() is None and time.monotonic() < deadline, (
                    "the worker never served its port"
                )
                await asyncio.sleep(0.2)
        assert (status, body) == (200, "ok")
        assert _handled(port) == 0
        second = spawn(logs[1])
        while "core.app: running" not in logs[1].read_text():
            assert second.poll() is None and time.monotonic() < deadline, logs[1].read_text()
            await asyncio.sleep(0.2)
        bus = Bus(redis)
        for i in range(3):
            await bus.publish(event(EventKind.COMMAND, "/help", platform="console", message_id=f"m{i}"))
        while _handled(port) < 1 or await bus.backlog():
            assert time.monotonic() < deadline, "the workers did not handle the Events"
            await asyncio.sleep(0.2)
        # the first worker counted what it handled (the second handled the rest, unseen on this port)
        assert 1 <= _handled(port) <= 3
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        checks = {c["name"]: c["ok"] for c in json.loads(body)["checks"]}
        assert checks["redis"] is True and "model" in checks, body
        assert status == (200 if all(checks.values()) else 503)
        assert second.poll() is None, "a busy metrics port must not stop the worker"
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=60) for proc in (first, second) if proc is not None]
        await redis.aclose()
        server.release()
    said = [log.read_text() for log in logs]
    assert codes == [0, 0], said
    assert f"serving /metrics, /healthz and /readyz on http://127.0.0.1:{port}" in said[0]
    assert f"metrics port 127.0.0.1:{port} not served" in said[1] and "--metrics-port" in said[1]
    assert "Traceback" not in "".join(said)
