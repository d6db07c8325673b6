"""``/feed steer``: read by the model over the real OpenAI client (loopback API), or by keywords."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from core.contract import Author, EventKind, Reply
from core.feed.preferences import EMPTY
from core.feed.steer import by_keywords, instructions, parse_answer, read
from core.router import Router
from core.services import Services
from core.settings import Settings
from tests.fakes.openai_api import FakeOpenAI, chat, server_error
from tests.support import build_services, event, feed_of

ADA = Author(id="u1", name="Ada")
SAID = "I'd love gardening tips, enough of the crypto hype"


def test_keywords_read_more_and_less_clauses() -> None:
    assert by_keywords("more about gardening, less about crypto") == by_keywords(
        "More gardening; fewer crypto posts please"
    )
    steering = by_keywords("more rust, go and zig but no politics")
    assert steering.more == ("rust", "go", "zig") and steering.less == ("politics",)
    assert steering.how == "keywords"
    assert by_keywords(SAID).more == () and by_keywords(SAID).less == ("crypto", "hype")
    assert by_keywords("hello there").empty


def test_the_models_answer_keeps_only_the_members_words() -> None:
    steering = parse_answer("more: gardening, tips\nless: crypto, stocks", SAID)
    assert steering is not None and steering.more == ("gardening", "tips") and steering.less == ("crypto",)
    assert parse_answer("Sure! Happy to help.", SAID) is None
    assert parse_answer("more: stocks\nless: bonds", SAID) is None  # nothing the member said


async def test_read_falls_back_to_keywords_when_the_model_fails() -> None:
    async def broken(instructions: str, text: str, *, max_tokens: int) -> str:
        raise RuntimeError("down")

    steering = await read("more about gardening, less about crypto", broken)
    assert steering.how == "keywords" and steering.more == ("gardening",)
    assert (await read("more about gardening", None)).how == "keywords"


@pytest.fixture
async def api_services(api: FakeOpenAI, settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Services]:
    configured = api.configure(
        settings,
        model_timeout_s=5.0,
        model_max_retries=0,
    )
    svc = await build_services(configured, redis)
    yield svc
    await svc.aclose()


async def _steer(services: Services, words: str) -> str:
    actions = await Router(services).route(
        event(EventKind.COMMAND, f"feed steer {words}", command="feed", args=f"steer {words}", author=ADA)
    )
    return "\n".join(a.text for a in actions if isinstance(a, Reply))


async def test_steering_in_words_with_the_model(api: FakeOpenAI, api_services: Services) -> None:
    api.script("chat", chat("more: gardening, tips\nless: crypto, stocks"))
    reply = await _steer(api_services, SAID)
    assert reply.startswith("Steered: more about gardening, tips; less about crypto.")
    [call] = api.calls("chat")
    assert call.json is not None
    system, user = call.json["messages"][0]["content"], call.json["messages"][-1]["content"]
    assert system == instructions() and user == f"<request>\n{SAID}\n</request>"
    prefs = await feed_of(api_services).preferences.get("test:c1", ADA.id)
    assert prefs.weight_map == {"gardening": 1.0, "tips": 1.0, "crypto": -1.0}
    other = await feed_of(api_services).preferences.get("test:c1", "u2")
    assert other == EMPTY


async def test_steering_falls_back_to_keywords(api: FakeOpenAI, api_services: Services) -> None:
    api.script("chat", chat("I am not sure what you mean."), server_error())
    assert (await _steer(api_services, SAID)).startswith("Steered: less about crypto, hype.")  # unusable
    assert (await _steer(api_services, "more about jazz")).startswith("Steered: more about jazz.")  # 500
    assert len(api.calls("chat")) == 2
    api_services.interpreter.clear()  # no model at all
    assert (await _steer(api_services, "less about jazz")).startswith("Steered: less about jazz.")
    prefs = await feed_of(api_services).preferences.get("test:c1", ADA.id)
    assert prefs.weight_map == {"crypto": -1.0, "hype": -1.0}  # jazz: +1 then -1, forgotten
    assert "could not tell what you want" in await _steer(api_services, "hello there")
