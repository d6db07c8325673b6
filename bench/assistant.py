"""The assistant's own overhead around the model call, and the bundled model's time per short post.

Prints:
1. Per request through the Router and the assistant (quota script, prompt building, repair and fitting,
   draft storage, conversation context, usage counters, the Actions), with an instant in-process model
   (LangChain's FakeListChatModel), p50/p99, beside a raw ``ainvoke`` of the same fake model measured in the
   same run (the baseline); the difference is what Chorus adds. Measured without and with the card image
   (drawing the 1200x675 card with Pillow is most of the cost when it is on).
2. The bundled SmolLM2-135M served by llama-cpp-python: server start, then wall time per short post through
   the same path (``write a post about ...``), on this machine.

Run: ``.venv/bin/python bench/assistant.py [--posts N] [--requests N]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402

from core.app import build, build_services  # noqa: E402
from core.assistant.commands import setup  # noqa: E402
from core.assistant.images import ImageService  # noqa: E402
from core.assistant.moderation import Moderator  # noqa: E402
from core.contract import Author, Event, EventKind, OfferChoices, Reply  # noqa: E402
from core.redis_server import EmbeddedRedis, connect  # noqa: E402
from core.router import Router  # noqa: E402
from core.services import Services  # noqa: E402
from core.settings import Settings  # noqa: E402

POST = (
    "Our launch is today! We built Chorus so communities can write posts worth sharing. "
    "Come and try it, tell us what you think, and bring a friend. #launch"
)


class FakeRuntime:
    local = False
    chain = None  # the scripted model alone, no fallback chain

    def __init__(self, model: FakeListChatModel) -> None:
        self.model = model

    async def chat_model(self) -> FakeListChatModel:
        return self.model


def _event(i: int, text: str = "write a post about our launch") -> Event:
    return Event(
        kind=EventKind.MENTION,
        platform="console",
        community="bench",
        channel="general",
        message_id=f"m{i}-{time.monotonic_ns()}",
        author=Author(id=f"user{i % 50}"),
        text=text,
    )


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _row(label: str, ms: list[float]) -> str:
    return f"  {label:<44} p50 {_pct(ms, 50):7.2f} ms   p99 {_pct(ms, 99):7.2f} ms   (n={len(ms)})"


def _unlimited(settings: Settings, **extra: Any) -> Settings:
    big = 10**9
    return settings.model_copy(
        update={
            "quota_user_text_per_minute": big,
            "quota_user_text_per_day": big,
            "quota_community_text_per_minute": big,
            "quota_community_text_per_day": big,
            "quota_user_images_per_minute": big,
            "quota_user_images_per_day": big,
            "quota_community_images_per_minute": big,
            "quota_community_images_per_day": big,
            **extra,
        }
    )


async def overhead(services: Services, requests: int) -> None:
    model = FakeListChatModel(responses=[POST])
    messages = [SystemMessage("You are Chorus."), HumanMessage("<request>\nwrite a post\n</request>")]
    router = Router(services)
    print(f"1. Overhead per request around the model call (instant fake model, {requests} requests each)")
    for label, image in (("text only (CHORUS_AUTO_IMAGE=0)", False), ("with the card image", True)):
        services.settings = _unlimited(services.settings, auto_image=image)
        setup(
            services,
            runtime=FakeRuntime(model),
            images=ImageService(services.settings),
            moderator=Moderator(services.settings),
        )
        n = requests if not image else max(20, requests // 5)
        for i in range(10):  # warm up: scripts loaded, fonts cached, connections open
            await router.route(_event(i))
            await model.ainvoke(messages)
        raw: list[float] = []
        full: list[float] = []
        for i in range(n):
            t0 = time.perf_counter()
            await model.ainvoke(messages)
            raw.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            actions = await router.route(_event(i))
            full.append((time.perf_counter() - t0) * 1000)
            assert any(isinstance(a, OfferChoices) for a in actions), actions
        print(f" {label}:")
        print(_row("baseline: raw fake-model ainvoke", raw))
        print(_row("Router -> assistant -> Actions (same model)", full))
        over = [f - r for f, r in zip(full, raw, strict=True)]
        print(_row("core overhead (difference per request)", over))


async def embedded(settings: Settings, redis: Any, posts: int) -> None:
    print(f"\n2. Bundled SmolLM2-135M (llama-cpp-python server), {posts} short posts, text only")
    built = await build(_unlimited(settings, auto_image=False), redis)
    services, assistant = built.services, built.assistant
    runtime = assistant.runtime
    if not getattr(runtime, "local", False):
        print("  skipped: OPENAI_API_KEY / OPENAI_BASE_URL is set, so the bundled model does not serve")
        await services.aclose()
        return
    try:
        t0 = time.perf_counter()
        await runtime.chat_model()
        print(f"  server start: {time.perf_counter() - t0:.2f} s")
        router = Router(services)
        times: list[float] = []
        lengths: list[int] = []
        failures = 0
        topics = ["our launch", "the meetup on Friday", "our new feed feature", "the summer hackathon"]
        for i in range(posts):
            t0 = time.perf_counter()
            actions = await router.route(
                _event(1000 + i, f"write a short post about {topics[i % len(topics)]}")
            )
            times.append(time.perf_counter() - t0)
            reply = next((a for a in actions if isinstance(a, Reply)), None)
            if any(isinstance(a, OfferChoices) for a in actions) and reply is not None:
                lengths.append(len(reply.text))
            else:
                failures += 1
        print(
            f"  per short post: median {statistics.median(times):.2f} s, mean {statistics.mean(times):.2f} s, "
            f"max {max(times):.2f} s; drafts {len(lengths)}/{posts}"
            + (f" (median {statistics.median(lengths):.0f} chars)" if lengths else "")
            + (f"; {failures} answered with a clear error" if failures else "")
        )
    finally:
        await services.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per overhead measurement")
    parser.add_argument("--posts", type=int, default=5, help="posts written by the bundled model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        server.ensure_running()
        redis = connect(server.url)
        try:
            settings = Settings(CHORUS_DATA_DIR=Path(tmp) / "data", CHORUS_REDIS_URL=server.url)
            services = await build_services(settings, redis)
            try:
                await overhead(services, args.requests)
            finally:
                await services.aclose()
            await embedded(settings, redis, args.posts)
        finally:
            await redis.aclose()
            server.release()


if __name__ == "__main__":
    asyncio.run(main())
