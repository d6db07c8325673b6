"""The provider boundary: ChatOpenAI through the real openai client against the loopback OpenAI fake."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from core.assistant.models import (
    ChorusChatOpenAI,
    ModelRuntime,
    describe_model,
    model_source,
    retry_after_from,
)
from core.errors import (
    ContentRefused,
    InvalidInput,
    ProviderBadOutput,
    ProviderRateLimited,
    ProviderUnavailable,
)
from core.settings import Settings
from tests.fakes.openai_api import (
    FakeOpenAI,
    Reply,
    chat,
    error,
    malformed,
    rate_limited,
    server_error,
    slow,
)

MESSAGES = [
    SystemMessage("You are Chorus, a content assistant."),
    HumanMessage("write a post about our launch"),
]


def api_settings(api: FakeOpenAI, tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "OPENAI_API_KEY": api.api_key,
        "OPENAI_BASE_URL": api.base_url,
        "CHORUS_DATA_DIR": tmp_path,
        "CHORUS_MODEL_TIMEOUT_S": 5,
        "CHORUS_MODEL_MAX_RETRIES": 2,
        "CHORUS_MODEL_MAX_RETRY_WAIT_S": 2,
    }
    values.update(kw)
    return Settings(**values)


async def runtime_model(api: FakeOpenAI, tmp_path: Path, **kw: Any) -> Any:
    runtime = ModelRuntime(api_settings(api, tmp_path, **kw))
    assert not runtime.local
    return await runtime.chat_model()


# ---- which model serves ---------------------------------------------------------------------------


def test_describe_model_names_each_source(tmp_path: Path) -> None:
    openai_settings = Settings(OPENAI_API_KEY="sk-secret-value-123456", CHORUS_CHAT_MODEL="gpt-4.1-mini")
    compatible = Settings(OPENAI_BASE_URL="http://127.0.0.1:11434/v1", CHORUS_CHAT_MODEL="llama3.2")
    local = Settings(CHORUS_DATA_DIR=tmp_path)
    assert [model_source(s) for s in (openai_settings, compatible, local)] == [
        "openai",
        "compatible",
        "local",
    ]
    assert describe_model(openai_settings) == "OpenAI gpt-4.1-mini (OPENAI_API_KEY)"
    assert "secret" not in describe_model(openai_settings)
    assert describe_model(compatible) == "OpenAI-compatible at http://127.0.0.1:11434/v1 (model llama3.2)"
    assert describe_model(local).startswith("bundled SmolLM2-135M-Instruct via llama-cpp-python server")
    missing = Settings(CHORUS_DATA_DIR=tmp_path, CHORUS_LOCAL_MODEL_PATH=tmp_path / "nope.gguf")
    assert "NOT available" in describe_model(missing) and "OPENAI_API_KEY" in describe_model(missing)


def test_retry_after_header_forms() -> None:
    assert retry_after_from({"retry-after": "7"}) == 7.0
    assert retry_after_from({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= (retry_after_from({"retry-after": soon}) or 0) <= 31
    assert retry_after_from({"retry-after": "soon-ish"}) is None
    assert retry_after_from({}) is None


# ---- success ---------------------------------------------------------------------------------------


async def test_chat_through_the_real_client_sends_key_model_and_prompt(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        model = await runtime_model(api, tmp_path, CHORUS_CHAT_MODEL="gpt-4.1-mini")
        answer = await model.ainvoke(MESSAGES)
        call = api.calls("chat")[0]
    assert (
        answer.content
        == "[system] You are Chorus, a content assistant.\n[user] write a post about our launch"
    )
    assert call.headers["Authorization"] == f"Bearer {api.api_key}"
    assert call.json is not None and call.json["model"] == "gpt-4.1-mini"
    assert answer.usage_metadata is not None and answer.usage_metadata["total_tokens"] > 0


async def test_compatible_servers_get_max_tokens_openai_gets_max_completion_tokens(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        model = await runtime_model(api, tmp_path)
        await model.bind(max_tokens=40).ainvoke(MESSAGES)
        openai_style = ChorusChatOpenAI(
            model="gpt-4.1-mini", api_key=api.api_key, base_url=api.base_url, max_retries=0, max_tokens=40
        )
        await openai_style.ainvoke(MESSAGES)
        compatible, official = (c.json or {} for c in api.calls("chat"))
    assert compatible["max_tokens"] == 40 and "max_completion_tokens" not in compatible
    assert official["max_completion_tokens"] == 40 and "max_tokens" not in official


async def test_closing_one_runtime_leaves_another_at_the_same_url_working(tmp_path: Path) -> None:
    """Each runtime owns its HTTP client: closing one (a restart, a test) must not close a client that
    langchain would otherwise share between every model of the same base URL in the process."""
    async with FakeOpenAI() as api:
        api.script("chat", chat("first"), chat("second"))
        first, second = (ModelRuntime(api_settings(api, tmp_path)) for _ in range(2))
        assert (await (await first.chat_model()).ainvoke(MESSAGES)).content == "first"
        model = await second.chat_model()
        await first.aclose()
        assert (await model.ainvoke(MESSAGES)).content == "second"
        await second.aclose()


async def test_streaming_yields_the_whole_text(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", server_error(502), chat("We launched today. Come and see!"))
        model = await runtime_model(api, tmp_path)
        parts = [chunk.content async for chunk in model.astream(MESSAGES)]
    assert "".join(str(p) for p in parts) == "We launched today. Come and see!"
    assert len(api.calls("chat")) == 2  # the 502 before the first chunk was retried


# ---- rate limits -----------------------------------------------------------------------------------


async def test_429_with_short_retry_after_is_waited_out_then_succeeds(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", rate_limited(retry_after=0.3), chat("Launch post."))
        model = await runtime_model(api, tmp_path)
        began = time.monotonic()
        answer = await model.ainvoke(MESSAGES)
        elapsed = time.monotonic() - began
        first, second = api.calls("chat")
    assert answer.content == "Launch post."
    assert second.at - first.at >= 0.3 and elapsed < 5


async def test_429_with_long_retry_after_returns_at_once_with_retry_after(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", rate_limited(retry_after=120))
        model = await runtime_model(api, tmp_path)
        began = time.monotonic()
        with pytest.raises(ProviderRateLimited) as caught:
            await model.ainvoke(MESSAGES)
        assert len(api.calls("chat")) == 1
    assert caught.value.retry_after == 120
    assert time.monotonic() - began < 2
    assert caught.value.user_message == "The writing service is busy. Please try again in 2 minutes."


async def test_429_every_time_gives_up_after_the_retries(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", *(rate_limited(retry_after=0.05) for _ in range(5)))
        model = await runtime_model(api, tmp_path)
        with pytest.raises(ProviderRateLimited) as caught:
            await model.ainvoke(MESSAGES)
        assert len(api.calls("chat")) == 3  # 1 + CHORUS_MODEL_MAX_RETRIES
    assert caught.value.retry_after == pytest.approx(0.05)


async def test_out_of_credit_429_is_not_retried_and_says_so(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", rate_limited(retry_after=None, code="insufficient_quota"))
        model = await runtime_model(api, tmp_path)
        with pytest.raises(ProviderUnavailable) as caught:
            await model.ainvoke(MESSAGES)
        assert len(api.calls("chat")) == 1
    assert "out of credit" in caught.value.user_message


# ---- server errors, timeouts, connection ------------------------------------------------------------


async def test_500_is_retried_then_succeeds(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", server_error(500), chat("Second time lucky."))
        model = await runtime_model(api, tmp_path)
        answer = await model.ainvoke(MESSAGES)
    assert answer.content == "Second time lucky."


async def test_500_every_time_ends_in_provider_unavailable(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", *(server_error(500) for _ in range(3)))
        model = await runtime_model(api, tmp_path)
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable) as caught:
            await model.ainvoke(MESSAGES)
        assert len(api.calls("chat")) == 3
    assert time.monotonic() - began < 10
    assert "traceback" not in caught.value.user_message.lower()


async def test_timeout_is_provider_unavailable_quickly_and_not_retried(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", slow(5), slow(5))
        model = await runtime_model(api, tmp_path, CHORUS_MODEL_TIMEOUT_S=0.4)
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable, match="timed out"):
            await model.ainvoke(MESSAGES)
        assert len(api.calls("chat")) == 1
    assert time.monotonic() - began < 2


async def test_connection_refused_is_provider_unavailable(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        closed_url = api.base_url
    settings = Settings(
        OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=closed_url, CHORUS_DATA_DIR=tmp_path,
        CHORUS_MODEL_MAX_RETRIES=1, CHORUS_MODEL_TIMEOUT_S=2,
    )  # fmt: skip
    model = await ModelRuntime(settings).chat_model()
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await model.ainvoke(MESSAGES)


async def test_wrong_key_is_reported_without_the_key(tmp_path: Path) -> None:
    async with FakeOpenAI(api_key="sk-the-right-one") as api:
        model = await runtime_model(api, tmp_path, OPENAI_API_KEY="sk-wrong-secret-987654")
        with pytest.raises(ProviderUnavailable) as caught:
            await model.ainvoke(MESSAGES)
        assert len(api.calls("chat")) == 1  # configuration errors are not retried
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "987654" not in str(caught.value) and "987654" not in caught.value.user_message


# ---- bad output -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        malformed(),
        malformed(b"<html>gateway says hi</html>"),
        Reply(json={"id": "x", "object": "chat.completion", "choices": None}),
        Reply(json={"error": {"message": "model crashed", "code": "server_error"}}),
    ],
    ids=["truncated-json", "html", "choices-null", "error-in-200"],
)
async def test_malformed_answers_are_provider_bad_output(tmp_path: Path, reply: Reply) -> None:
    async with FakeOpenAI() as api:
        api.script("chat", reply)
        model = await runtime_model(api, tmp_path)
        with pytest.raises(ProviderBadOutput):
            await model.ainvoke(MESSAGES)


async def test_content_policy_refusal_is_a_user_facing_refusal(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script(
            "chat", error(400, "Your request was rejected by the safety system.", "content_policy_violation")
        )
        model = await runtime_model(api, tmp_path)
        with pytest.raises(ContentRefused) as caught:
            await model.ainvoke(MESSAGES)
    assert caught.value.user_message == "The writing service refused this request under its content policy."


async def test_context_overflow_asks_for_something_shorter(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script(
            "chat",
            error(400, "This model's maximum context length is 128000 tokens.", "context_length_exceeded"),
        )
        model = await runtime_model(api, tmp_path)
        with pytest.raises(InvalidInput, match="too long"):
            await model.ainvoke(MESSAGES)
        assert len(api.calls("chat")) == 1
