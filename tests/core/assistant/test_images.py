"""ImageService: OpenAI Images through the real client against the fake, and the card path without a key."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from core.assistant.images import ImageService, describe_images, image_source
from core.assistant.pngmeta import chunks, read_text_chunks
from core.errors import ContentRefused, ProviderBadOutput, ProviderRateLimited, ProviderUnavailable
from core.settings import Settings
from tests.fakes.openai_api import FakeOpenAI, error, image, png_bytes, rate_limited, server_error, slow


def api_settings(api: FakeOpenAI, tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "OPENAI_API_KEY": api.api_key,
        "OPENAI_BASE_URL": api.base_url,
        "CHORUS_DATA_DIR": tmp_path,
        "CHORUS_IMAGE_TIMEOUT_S": 5,
        "CHORUS_MODEL_MAX_RETRIES": 1,
        "CHORUS_MODEL_MAX_RETRY_WAIT_S": 1,
    }
    values.update(kw)
    return Settings(**values)


def pixel(png: bytes) -> Any:
    return Image.open(io.BytesIO(png)).convert("RGB").getpixel((0, 0))


# ---- OpenAI Images ------------------------------------------------------------------------------------


async def test_generate_returns_labelled_png_and_keeps_provenance(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script("images.generate", image(png_bytes((9, 99, 199))))
        service = ImageService(api_settings(api, tmp_path, CHORUS_IMAGE_MODEL="gpt-image-1"))
        try:
            result = await service.generate("a cat astronaut", card_text="unused with a model")
        finally:
            await service.aclose()
        sent = api.calls("images.generate")[0].json or {}
    assert sent["model"] == "gpt-image-1" and sent["prompt"] == "a cat astronaut" and sent["n"] == 1
    assert "response_format" not in sent  # gpt-image models reject it; they always answer base64
    assert result.kind == "openai" and result.label == "AI-generated image (gpt-image-1)"
    assert pixel(result.png) == (9, 99, 199)
    meta = read_text_chunks(result.png)
    assert meta["AI-generated"].startswith("yes") and meta["Description"] == result.alt_text
    assert "trainedAlgorithmicMedia" in meta["XML:com.adobe.xmp"]
    assert b"caBX" in [kind for kind, _ in chunks(result.png)]  # the provider's C2PA chunk survives
    assert result.alt_text == "AI-generated image: a cat astronaut"


async def test_edit_uploads_the_parent_image(tmp_path: Path) -> None:
    parent = png_bytes((250, 5, 5), size=(32, 32))
    async with FakeOpenAI() as api:
        api.script("images.edit", image(png_bytes((5, 5, 250))))
        service = ImageService(api_settings(api, tmp_path))
        try:
            result = await service.edit(
                parent, "make the background blue", card_text="", alt_text="A blue cat"
            )
        finally:
            await service.aclose()
        call = api.calls("images.edit")[0]
    assert call.files["image"][0].data == parent  # byte-for-byte the parent
    assert call.files["image"][0].content_type == "image/png"
    assert call.form["prompt"] == "make the background blue"
    assert call.form["model"] == "gpt-image-1"
    assert pixel(result.png) == (5, 5, 250)
    assert "edited from the previous image" in result.label and result.alt_text == "A blue cat"


async def test_edit_of_a_jpeg_parent_sends_a_png(tmp_path: Path) -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 128, 0)).save(jpeg, "JPEG")
    async with FakeOpenAI() as api:
        service = ImageService(api_settings(api, tmp_path))
        try:
            await service.edit(jpeg.getvalue(), "add stars", card_text="")
        finally:
            await service.aclose()
        upload = api.calls("images.edit")[0].files["image"][0]
    assert Image.open(io.BytesIO(upload.data)).format == "PNG"


async def test_dall_e_is_asked_for_base64(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        service = ImageService(api_settings(api, tmp_path, CHORUS_IMAGE_MODEL="dall-e-3"))
        try:
            await service.generate("a lighthouse", card_text="")
        finally:
            await service.aclose()
        assert (api.calls("images.generate")[0].json or {})["response_format"] == "b64_json"


async def test_image_errors_are_translated(tmp_path: Path) -> None:
    async with FakeOpenAI() as api:
        api.script(
            "images.generate",
            rate_limited(retry_after=90),
            error(400, "Your request was rejected by the safety system.", "moderation_blocked"),
            image(b64="%%% not base64 %%%"),
            image(b64="bm90IGFuIGltYWdl"),  # base64 of "not an image"
            server_error(500),
            server_error(503),
            slow(10),
        )
        service = ImageService(api_settings(api, tmp_path, CHORUS_IMAGE_TIMEOUT_S=0.5))
        try:
            with pytest.raises(ProviderRateLimited) as limited:
                await service.generate("x", card_text="")
            assert limited.value.retry_after == 90
            assert limited.value.user_message == "The image service is busy. Please try again in 2 minutes."
            with pytest.raises(ContentRefused):
                await service.generate("x", card_text="")
            with pytest.raises(ProviderBadOutput):
                await service.generate("x", card_text="")
            with pytest.raises(ProviderBadOutput):
                await service.generate("x", card_text="")
            with pytest.raises(ProviderUnavailable):  # 500, retried once, 503
                await service.generate("x", card_text="")
            with pytest.raises(ProviderUnavailable, match="timed out"):
                await service.generate("x", card_text="")
        finally:
            await service.aclose()
        assert api.pending("images.generate") == 0


# ---- no image model: cards ----------------------------------------------------------------------------


async def test_without_a_key_generate_draws_a_card_with_alt_text(tmp_path: Path) -> None:
    settings = Settings(CHORUS_DATA_DIR=tmp_path)
    assert image_source(settings) == "card" and "text cards" in describe_images(settings)
    service = ImageService(settings)
    result = await service.generate("a cat astronaut", card_text="Our launch is today. Come say hi!")
    assert result.kind == "card" and "not AI art" in result.label
    assert result.alt_text == "Text card: Our launch is today. Come say hi!"
    assert result.style is not None
    image_ = Image.open(io.BytesIO(result.png))
    assert image_.format == "PNG" and image_.size == (1200, 675)
    meta = read_text_chunks(result.png)
    assert "AI" in meta["AI-generated"] and meta["Description"] == result.alt_text
    assert meta["Label"] == result.label


async def test_card_prompt_is_used_when_there_is_no_card_text(tmp_path: Path) -> None:
    service = ImageService(Settings(CHORUS_DATA_DIR=tmp_path))
    result = await service.generate("a cat astronaut", card_text="")
    assert read_text_chunks(result.png)["Chorus-Card-Text"] == "a cat astronaut"


async def test_without_a_key_edit_redraws_the_card_in_another_style_and_says_so(tmp_path: Path) -> None:
    service = ImageService(Settings(CHORUS_DATA_DIR=tmp_path))
    first = await service.generate("", card_text="Launch day!", style="paper")
    darker = await service.edit(first.png, "make it darker", card_text="")
    assert darker.kind == "card" and darker.style == "ink"  # the instruction asked for dark
    assert "redrawn" in darker.label and "not AI art" in darker.label
    assert read_text_chunks(darker.png)["Chorus-Card-Text"] == "Launch day!"  # same words, from the parent
    again = await service.edit(darker.png, "something else", card_text="Launch day!")
    assert again.style not in (None, "ink")  # no hint: the next style, never the same look
    assert again.png != darker.png


async def test_openai_provider_can_be_turned_off_with_a_key(tmp_path: Path) -> None:
    settings = Settings(OPENAI_API_KEY="sk-x", CHORUS_IMAGE_PROVIDER="card", CHORUS_DATA_DIR=tmp_path)
    assert ImageService(settings).source == "card"
    assert image_source(Settings(OPENAI_API_KEY="sk-x", CHORUS_DATA_DIR=tmp_path)) == "openai"
