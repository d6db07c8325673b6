"""The OpenAI fake answers the real openai client the way the service does."""

from __future__ import annotations

import base64
import io
import time

import openai
import pytest
from PIL import Image

from tests.fakes.openai_api import (
    FakeOpenAI,
    chat,
    image,
    malformed,
    moderation,
    png_bytes,
    rate_limited,
    server_error,
    slow,
)


def client(api: FakeOpenAI, **kw: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=api.api_key, base_url=api.base_url, max_retries=0, **kw)  # type: ignore[arg-type]


async def test_default_chat_echoes_system_prompt_and_last_user_message() -> None:
    async with FakeOpenAI() as api:
        async with client(api) as c:
            out = await c.chat.completions.create(
                model="m",
                messages=[
                    {"role": "system", "content": "You are Chorus."},
                    {"role": "user", "content": "first"},
                    {"role": "user", "content": "second"},
                ],
            )
        assert out.choices[0].message.content == "[system] You are Chorus.\n[user] second"
        assert out.usage is not None and out.usage.total_tokens > 0
        assert api.calls("chat")[0].json["model"] == "m"  # type: ignore[index]


async def test_scripted_replies_are_served_in_order_then_defaults() -> None:
    async with FakeOpenAI() as api:
        api.script("chat", chat("one"), chat("two"))
        async with client(api) as c:
            texts = [
                (await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]))
                .choices[0]
                .message.content
                for _ in range(3)
            ]
        assert texts == ["one", "two", "[system] \n[user] x"]
        assert api.pending("chat") == 0


async def test_streaming_chat_sends_deltas_and_usage() -> None:
    async with FakeOpenAI() as api:
        api.script("chat", chat("hello streaming world"))
        async with client(api) as c:
            stream = await c.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "x"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            parts, usage = [], None
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
                usage = chunk.usage or usage
        assert "".join(parts) == "hello streaming world"
        assert usage is not None and usage.completion_tokens == 3


async def test_errors_carry_status_and_retry_after() -> None:
    async with FakeOpenAI() as api:
        api.script("chat", rate_limited(retry_after=7), server_error(503))
        async with client(api) as c:
            with pytest.raises(openai.RateLimitError) as limited:
                await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            assert limited.value.response.headers["retry-after"] == "7"
            with pytest.raises(openai.InternalServerError) as failed:
                await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            assert failed.value.status_code == 503


async def test_wrong_key_is_401_and_unknown_path_404() -> None:
    async with FakeOpenAI() as api:
        async with openai.AsyncOpenAI(api_key="sk-wrong", base_url=api.base_url, max_retries=0) as c:
            with pytest.raises(openai.AuthenticationError):
                await c.models.list()
        async with client(api) as c:
            with pytest.raises(openai.NotFoundError):
                await c.embeddings.create(model="m", input="x")
            models = await c.models.list()
        assert [m.id for m in models.data] == ["fake-model"]


async def test_slow_reply_outlasts_a_short_client_timeout() -> None:
    async with FakeOpenAI() as api:
        api.script("chat", slow(3))
        async with client(api, timeout=0.3) as c:
            began = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert time.monotonic() - began < 2


async def test_malformed_body_reaches_the_client_as_is() -> None:
    async with FakeOpenAI() as api:
        api.script("chat", malformed())
        async with client(api) as c:
            raw = await c.chat.completions.with_raw_response.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )
        assert raw.http_response.content == b'{"id": "chatcmpl-1", "choices": ['


async def test_images_generate_and_edit_record_the_upload() -> None:
    parent = png_bytes((200, 10, 10))
    async with FakeOpenAI() as api:
        api.script("images.generate", image(png_bytes((1, 2, 3))))
        async with client(api) as c:
            made = await c.images.generate(model="gpt-image-1", prompt="a cat astronaut")
            edited = await c.images.edit(
                model="gpt-image-1", image=("parent.png", parent, "image/png"), prompt="make it blue"
            )
        generated = Image.open(io.BytesIO(base64.b64decode(made.data[0].b64_json or "")))
        assert generated.getpixel((0, 0)) == (1, 2, 3)
        assert edited.data[0].b64_json
        call = api.calls("images.edit")[0]
        assert call.files["image"][0].data == parent
        assert call.form["prompt"] == "make it blue"
        assert api.calls("images.generate")[0].json["prompt"] == "a cat astronaut"  # type: ignore[index]


async def test_moderation_flags_every_input_item() -> None:
    async with FakeOpenAI() as api:
        api.script("moderations", moderation("harassment", "violence"))
        async with client(api) as c:
            flagged = await c.moderations.create(model="omni-moderation-latest", input=["a", "b"])
            clean = await c.moderations.create(model="omni-moderation-latest", input="fine")
        assert [r.flagged for r in flagged.results] == [True, True]
        assert flagged.results[0].categories.harassment and flagged.results[0].categories.violence
        assert not flagged.results[0].categories.hate
        assert [r.flagged for r in clean.results] == [False]
