"""A loopback fake of the OpenAI HTTP API that the real ``openai`` client (and ChatOpenAI) talks to.

Why: the provider boundary (retries, Retry-After, timeouts, malformed answers, multipart uploads) must be
tested through the real SDK's wire code, without the internet. Endpoints: POST /v1/chat/completions
(JSON, or SSE with ``stream=true``), POST /v1/images/generations, POST /v1/images/edits (multipart; uploads
are recorded), POST /v1/moderations, GET /v1/models.

Each endpoint has a queue of scripted replies; when it is empty the default answers: chat echoes the system
prompt and the last user message (so prompt tests can see what was sent), images return a small PNG,
moderations flag nothing.

    async with FakeOpenAI() as api:
        api.script("chat", rate_limited(retry_after=0.2), chat("Hello!"))
        settings = Settings(OPENAI_API_KEY=api.api_key, OPENAI_BASE_URL=api.base_url)
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image
from pydantic import SecretStr

from core.settings import Settings

JSON = dict[str, Any]
ENDPOINTS = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/images/generations"): "images.generate",
    ("POST", "/v1/images/edits"): "images.edit",
    ("POST", "/v1/moderations"): "moderations",
    ("GET", "/v1/models"): "models",
}
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)  # fmt: skip


@dataclass
class Reply:
    """One scripted answer. ``body`` (raw) wins over ``json``; ``delay`` is waited before answering."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"
    stream: list[str] | None = None  # chat only: SSE deltas to send when the request asked to stream
    chunk_delay: float = 0.0  # chat only: seconds between streamed deltas (a model writing as it goes)
    flagged: list[str] | None = None  # moderations only: one result per input item, flagged with these


@dataclass
class Upload:
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Recorded:
    endpoint: str
    headers: dict[str, str]
    json: JSON | None = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[Upload]] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


# ---- scripted replies --------------------------------------------------------------------------------


def chat(
    content: str | None = "",
    *,
    tool_calls: list[JSON] | None = None,
    finish_reason: str = "stop",
    usage: JSON | None = None,
) -> Reply:
    """A successful chat completion with this content (and, streamed, the same content in pieces)."""
    message: JSON = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    words = len((content or "").split())
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words},
    }
    pieces = [w + " " for w in (content or "").split(" ")] if content else []
    if pieces:
        pieces[-1] = pieces[-1][:-1]
    return Reply(json=body, stream=pieces)


def streamed(content: str, *, chunk_delay: float) -> Reply:
    """A chat answer whose stream arrives word by word, ``chunk_delay`` seconds apart."""
    reply = chat(content)
    reply.chunk_delay = chunk_delay
    return reply


def error(status: int, message: str = "error", code: str | None = None, **headers: str) -> Reply:
    return Reply(
        status=status,
        json={"error": {"message": message, "type": "fake_error", "param": None, "code": code}},
        headers=headers,
    )


def rate_limited(retry_after: float | None = 1.0, *, code: str = "rate_limit_exceeded") -> Reply:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return error(429, "Rate limit reached", code, **headers)


def server_error(status: int = 500) -> Reply:
    return error(status, "The server had an error while processing your request.", "server_error")


def slow(seconds: float, then: Reply | None = None) -> Reply:
    """Answer only after ``seconds`` (longer than the client's timeout, to test timeouts)."""
    reply = then or chat("too late")
    reply.delay = seconds
    return reply


def malformed(body: bytes = b'{"id": "chatcmpl-1", "choices": [', status: int = 200) -> Reply:
    return Reply(status=status, body=body)


def png_bytes(color: tuple[int, int, int] = (80, 120, 200), size: tuple[int, int] = (64, 64)) -> bytes:
    """A small real PNG with an extra ancillary chunk, standing in for a provider's C2PA data (``caBX``)."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    png = out.getvalue()
    data = b"fake-c2pa-manifest"
    chunk = struct.pack(">I", len(data)) + b"caBX" + data + struct.pack(">I", zlib.crc32(b"caBX" + data))
    return png[:-12] + chunk + png[-12:]


def image(png: bytes | None = None, *, b64: str | None = None, url: str | None = None) -> Reply:
    item: JSON = (
        {"url": url}
        if url
        else {"b64_json": b64 if b64 is not None else base64.b64encode(png or png_bytes()).decode()}
    )
    return Reply(json={"created": int(time.time()), "data": [item]})


def moderation(*flagged_categories: str) -> Reply:
    """Every input item flagged with these categories (none: nothing flagged)."""
    return Reply(flagged=list(flagged_categories))


def _moderation_body(flagged: list[str], inputs: int) -> JSON:
    result = {
        "flagged": bool(flagged),
        "categories": {c: c in flagged for c in MODERATION_CATEGORIES},
        "category_scores": {c: 0.99 if c in flagged else 0.001 for c in MODERATION_CATEGORIES},
        "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
    }
    return {"id": "modr-fake", "model": "omni-moderation-latest", "results": [result] * inputs}


# ---- the server --------------------------------------------------------------------------------------


class FakeOpenAI:
    """The fake API on 127.0.0.1 (a free port); ``api_key`` is required as a Bearer token if set."""

    def __init__(self, api_key: str | None = "sk-test-fake-key", *, echo: bool = True) -> None:
        self.api_key = api_key
        self.echo = echo  # False: chat answers one short sentence about the request (load tests)
        self.requests: list[Recorded] = []
        self._queues: dict[str, deque[Reply]] = {name: deque() for name in ENDPOINTS.values()}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def configure(self, settings: Settings, **update: Any) -> Settings:
        """``settings`` pointed at this fake (its key and URL), with ``update`` on top."""
        return settings.model_copy(
            update={"openai_api_key": SecretStr(self.api_key or ""), "openai_base_url": self.base_url, **update}
        )

    def script(self, endpoint: str, *replies: Reply) -> None:
        """Queue replies for ``endpoint`` ("chat", "images.generate", "images.edit", "moderations", "models")."""
        self._queues[endpoint].extend(replies)

    def pending(self, endpoint: str) -> int:
        return len(self._queues[endpoint])

    def calls(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = ENDPOINTS.get((request.method, request.path))
        if endpoint is None:
            return _error_response(404, f"Unknown request URL: {request.method} {request.path}")
        record = Recorded(endpoint, dict(request.headers))
        if request.content_type == "application/json":
            try:
                record.json = await request.json()
            except json.JSONDecodeError:
                return _error_response(400, "We could not parse the JSON body of your request.")
        elif request.content_type.startswith("multipart/"):
            await self._read_multipart(request, record)
        self.requests.append(record)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error_response(401, "Incorrect API key provided", "invalid_api_key")
        queue = self._queues[endpoint]
        reply = queue.popleft() if queue else self._default(endpoint, record)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.flagged is not None:
            raw = (record.json or {}).get("input", "")
            reply.json = _moderation_body(reply.flagged, len(raw) if isinstance(raw, list) else 1)
        wants_stream = endpoint == "chat" and bool((record.json or {}).get("stream"))
        if wants_stream and reply.status == 200 and reply.body is None:
            return await self._stream(request, reply, record)
        body = reply.body if reply.body is not None else json.dumps(reply.json).encode()
        return web.Response(
            status=reply.status, body=body, headers=reply.headers, content_type=reply.content_type
        )

    async def _read_multipart(self, request: web.Request, record: Recorded) -> None:
        reader = await request.multipart()
        async for part in reader:
            if part is None or not hasattr(part, "read"):
                continue
            name = part.name or ""
            data = await part.read()  # type: ignore[union-attr]
            if part.filename is not None:  # type: ignore[union-attr]
                upload = Upload(part.filename, part.headers.get("Content-Type", ""), bytes(data))  # type: ignore[union-attr]
                record.files.setdefault(name, []).append(upload)
            else:
                record.form[name] = bytes(data).decode()

    def _default(self, endpoint: str, record: Recorded) -> Reply:
        if endpoint == "chat":
            messages = (record.json or {}).get("messages", [])
            system = "\n".join(_text(m) for m in messages if m.get("role") in ("system", "developer"))
            users = [_text(m) for m in messages if m.get("role") == "user"]
            if not self.echo:
                return chat(f"A short post about {(users[-1] if users else 'nothing')[:60].strip()}.")
            return chat(f"[system] {system}\n[user] {users[-1] if users else ''}")
        if endpoint in ("images.generate", "images.edit"):
            return image()
        if endpoint == "moderations":
            return moderation()
        return Reply(
            json={"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "fake"}]}
        )

    async def _stream(self, request: web.Request, reply: Reply, record: Recorded) -> web.StreamResponse:
        """Chat Completions' SSE: a role chunk, content deltas, a finish chunk, usage if asked, [DONE]."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **reply.headers})
        await resp.prepare(request)
        created = int(time.time())
        cid = f"chatcmpl-fake-{next(self._ids)}"

        def event(delta: JSON, finish: str | None = None, usage: JSON | None = None) -> bytes:
            chunk: JSON = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": "fake-model",
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                chunk["usage"] = usage
            return f"data: {json.dumps(chunk)}\n\n".encode()

        await resp.write(event({"role": "assistant", "content": ""}))
        for piece in reply.stream or []:
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            await resp.write(event({"content": piece}))
        await resp.write(event({}, finish="stop"))
        if ((record.json or {}).get("stream_options") or {}).get("include_usage"):
            await resp.write(event({}, usage=(reply.json or {}).get("usage")))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _text(message: JSON) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


def _error_response(status: int, message: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return web.json_response(body, status=status)
