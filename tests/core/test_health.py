"""``/readyz`` against a real redis-server that is stopped and started again, and a real model endpoint."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from core.feed.http import FeedHttp
from core.feed.service import FeedService
from core.redis_server import EmbeddedRedis, connect
from core.sender import Sender
from core.settings import Settings
from tests.fakes.openai_api import FakeOpenAI, error
from tests.support import RecordingPlatform, build_services


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
