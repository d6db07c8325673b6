"""``/healthz``, ``/readyz`` and ``/metrics`` on the HTTP port ``chorus run`` serves, and on the metrics port
of ``chorus worker`` (``serve_ops``).

``/healthz`` answers while the process is alive. ``/readyz`` answers 200 only when this process can do its
work: Redis answers a PING, every adapter it runs is connected, and the chat model is reachable (the
OpenAI/compatible endpoint lists models; the bundled model's file and runtime are installed — it starts on
first use); otherwise 503 with a JSON body naming what is not ready. ``/metrics`` is the Prometheus text
format of ``core.metrics`` (queue depths read from Redis at scrape time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import metrics
from core.assistant.local_model import unavailable_reason
from core.assistant.models import local_model_path, model_source
from core.platform import running_adapters

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
MODEL_CHECK_TTL_S = 15.0  # a readiness probe every few seconds must not become a model-list call each time


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    reason: str = ""


class Readiness:
    """The checks behind ``/readyz``; the model check is cached for ``MODEL_CHECK_TTL_S``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._model: tuple[float, Check] | None = None

    async def checks(self) -> list[Check]:
        redis, model = await asyncio.gather(self.redis(), self.model())
        return [redis, *self.adapters(), model]

    async def redis(self) -> Check:
        try:
            await asyncio.wait_for(self.services.redis.ping(), CHECK_TIMEOUT_S)
        except Exception as exc:
            return Check("redis", False, f"redis unreachable: {type(exc).__name__}")
        return Check("redis", True)

    def adapters(self) -> list[Check]:
        out = []
        for adapter in running_adapters(self.services.bus):
            ok = adapter.connected()
            out.append(Check(f"adapter:{adapter.name}", ok, "" if ok else f"{adapter.name} is not connected"))
        return out

    async def model(self) -> Check:
        now = time.monotonic()
        if self._model is None or now - self._model[0] > MODEL_CHECK_TTL_S or not self._model[1].ok:
            self._model = (now, await self._probe_model())
        return self._model[1]

    async def _probe_model(self) -> Check:
        s = self.services.settings
        if model_source(s) == "local":
            reason = unavailable_reason(local_model_path(s))
            return Check("model", reason is None, f"bundled model unavailable: {reason}" if reason else "")
        base = (s.openai_base_url or "https://api.openai.com/v1").rstrip("/")
        key = s.openai_api_key.get_secret_value() if s.openai_api_key else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"{base}/models", headers=headers) as response,
            ):
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Check("model", False, f"model provider unreachable: {type(exc).__name__}")
        if status != 200:
            return Check("model", False, f"model provider answered {status} to GET /models")
        return Check("model", True)


def add_routes(app: web.Application, services: Services) -> None:
    """Serve ``/metrics`` and ``/readyz`` (and ``/healthz`` unless the app has one) from ``app``."""
    readiness = Readiness(services)
    paths = {resource.canonical for resource in app.router.resources()}

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(request: web.Request) -> web.Response:
        checks = await readiness.checks()
        failing = [c for c in checks if not c.ok]
        body = {
            "ready": not failing,
            "reason": "; ".join(c.reason for c in failing),
            "checks": [asdict(c) for c in checks],
        }
        return web.json_response(body, status=503 if failing else 200)

    async def scrape(request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(
                metrics.refresh_queues(services.redis, services.bus.parts, sorted(services.platforms.names)),
                CHECK_TIMEOUT_S,
            )
        except Exception as exc:  # counters are still worth serving while Redis is away
            log.warning("metrics: queue depths not refreshed (%s)", type(exc).__name__)
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    if "/healthz" not in paths:
        app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", scrape)


async def serve_ops(services: Services, host: str, port: int, stop: asyncio.Event) -> None:
    """A worker's own ``/metrics``, ``/healthz`` and ``/readyz`` until ``stop``; a busy port is one error line
    and the worker goes on without them (two workers on one machine need two ports)."""
    if port <= 0:
        log.info("metrics port disabled (CHORUS_WORKER_METRICS_PORT=0)")
        await stop.wait()
        return
    app = web.Application()
    add_routes(app, services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error(
            "metrics port %s:%s not served (%s): give each worker on this machine its own "
            "--metrics-port (or CHORUS_WORKER_METRICS_PORT=0 for none)",
            host, port, exc.strerror or exc,
        )  # fmt: skip
        await runner.cleanup()
        await stop.wait()
        return
    log.info("serving /metrics, /healthz and /readyz on http://%s:%s", host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
