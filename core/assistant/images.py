"""Images for drafts: OpenAI Images (gpt-image-1 family) when configured, else a drawn text card.

Every image is labelled for what it is, in its PNG metadata (``AI-generated``, ``Label``, ``Description`` =
alt text, and the IPTC DigitalSourceType in XMP) and in ``GeneratedImage.label`` for the caption. Labels are
added as chunks, so the provider's own provenance data (C2PA) survives. Editing sends the parent image to
``images.edit``; without an image model, "edit" redraws the card in another style and says so.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import openai

from core.assistant import card
from core.assistant.models import call_with_retries, provider_errors
from core.assistant.pngmeta import NotAnImage, add_text_chunks, read_text_chunks, to_png
from core.errors import ProviderBadOutput
from core.settings import Settings
from core.text import clean, truncate

log = logging.getLogger(__name__)

ALT_TEXT_MAX = 1000  # X's limit for alt text; Discord and Telegram accept this much too
PROMPT_MAX = 4000  # dall-e-3's limit; gpt-image-1 accepts more, but an image prompt that long helps nobody
_STYLE_WORDS = {  # "edit" without an image model: pick the card style the instruction asks for
    "ink": ("dark", "night", "black", "navy", "moody", "contrast", "serious"),
    "dawn": ("warm", "sunset", "sunrise", "pink", "orange", "peach", "playful", "fun"),
    "mint": ("green", "fresh", "calm", "cool", "nature", "mint"),
    "paper": ("light", "white", "plain", "minimal", "clean", "classic", "simple"),
}


@dataclass(frozen=True)
class GeneratedImage:
    png: bytes
    alt_text: str
    kind: Literal["openai", "card"]
    label: (
        str  # for the caption: "AI-generated image (gpt-image-1)" / "Text card drawn by Chorus (not AI art)"
    )
    style: str | None = None  # the card style used (pass ``card.next_style(style)`` to reroll a card)


def image_source(settings: Settings) -> Literal["openai", "card"]:
    if settings.image_provider == "card":
        return "card"
    if settings.image_provider == "openai":
        return "openai"
    has_key = settings.openai_api_key is not None and bool(settings.openai_api_key.get_secret_value())
    return "openai" if has_key else "card"


def describe_images(settings: Settings) -> str:
    if image_source(settings) == "openai":
        return f"OpenAI Images {settings.image_model} ({settings.image_size})"
    return "text cards drawn locally (no image model: set OPENAI_API_KEY for AI images)"


def _alt(text: str) -> str:
    return truncate(" ".join(clean(text).split()), ALT_TEXT_MAX)


class ImageService:
    """Generate and edit images; the provider is chosen once from settings (``image_source``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.source = image_source(settings)
        self._client: openai.AsyncOpenAI | None = None

    def _openai(self) -> openai.AsyncOpenAI:
        if self._client is None:
            s = self.settings
            key = s.openai_api_key.get_secret_value() if s.openai_api_key else "not-needed"
            self._client = openai.AsyncOpenAI(
                api_key=key, base_url=s.openai_base_url, timeout=s.image_timeout_s, max_retries=0
            )
        return self._client

    async def generate(
        self,
        prompt: str,
        *,
        card_text: str,
        style: str | None = None,
        title: str | None = None,
        alt_text: str | None = None,
    ) -> GeneratedImage:
        """A new image for ``prompt``; without an image model, a card showing ``card_text`` (or the prompt)."""
        if self.source == "card":
            return await self._card(card_text or prompt, title=title, style=style, alt_text=alt_text)
        model = self.settings.image_model
        prompt = prompt.strip() or card_text
        full_prompt = f"{prompt}\n\nStyle: {style}" if style else prompt
        params: dict[str, Any] = {
            "model": model,
            "prompt": truncate(full_prompt, PROMPT_MAX),
            "n": 1,
            "size": self.settings.image_size,
        }
        if model.startswith("dall-e"):  # gpt-image models always answer base64, dall-e only when asked
            params["response_format"] = "b64_json"
        client = self._openai()
        result = await call_with_retries(
            lambda: client.images.generate(**params),
            max_retries=self.settings.model_max_retries,
            max_wait_s=self.settings.model_max_retry_wait_s,
            what="image",
        )
        png = await self._png_from(result)
        return self._labelled(
            png, alt_text or f"AI-generated image: {prompt}", f"AI-generated image ({model})"
        )

    async def edit(
        self, parent_png: bytes, instruction: str, *, card_text: str, alt_text: str | None = None
    ) -> GeneratedImage:
        """Edit the parent image as instructed (the parent is uploaded); without a model, restyle the card."""
        if self.source == "card":
            return await self._restyle(parent_png, instruction, card_text, alt_text)
        model = self.settings.image_model
        try:
            parent = to_png(parent_png)
        except NotAnImage as exc:
            raise ProviderBadOutput("the image to edit is not an image") from exc
        params: dict[str, Any] = {
            "model": model,
            "image": ("image.png", parent, "image/png"),
            "prompt": truncate(instruction, PROMPT_MAX),
            "n": 1,
            "size": self.settings.image_size,
        }
        if model.startswith("dall-e"):
            params["response_format"] = "b64_json"
        client = self._openai()
        result = await call_with_retries(
            lambda: client.images.edit(**params),
            max_retries=self.settings.model_max_retries,
            max_wait_s=self.settings.model_max_retry_wait_s,
            what="image",
        )
        png = await self._png_from(result)
        alt = alt_text or f"AI-edited image ({instruction})"
        return self._labelled(png, alt, f"AI-generated image ({model}, edited from the previous image)")

    async def _png_from(self, result: Any) -> bytes:
        """The first image of an images response as PNG bytes (base64, or fetched from its URL)."""
        with provider_errors("image"):
            item = result.data[0]
            if item.b64_json:
                raw = base64.b64decode(item.b64_json, validate=True)
            elif item.url:
                raw = await self._download(item.url)
            else:
                raise ProviderBadOutput("image provider sent neither b64_json nor url")
        try:
            return to_png(raw)
        except (NotAnImage, binascii.Error) as exc:
            raise ProviderBadOutput("image provider sent bytes that are not an image") from exc

    async def _download(self, url: str) -> bytes:
        timeout = aiohttp.ClientTimeout(total=self.settings.image_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
            resp.raise_for_status()
            return await resp.read()

    def _labelled(self, png: bytes, alt_text: str, label: str) -> GeneratedImage:
        alt = _alt(alt_text)
        png = add_text_chunks(
            png,
            {
                "AI-generated": f"yes: {label}",
                "Label": label,
                "Description": alt,
                "Software": "Chorus",
                "XML:com.adobe.xmp": card.source_type_xmp("trainedAlgorithmicMedia"),
            },
        )
        return GeneratedImage(png=png, alt_text=alt, kind="openai", label=label)

    async def _card(
        self,
        text: str,
        *,
        title: str | None,
        style: str | None,
        alt_text: str | None,
        label: str = card.CARD_LABEL,
    ) -> GeneratedImage:
        chosen = style if style in card.STYLES else card.auto_style(" ".join(clean(text).split()))
        png = await asyncio.to_thread(card.render_card, text, title=title, style=chosen)
        alt = _alt(alt_text or (f"Text card: {title}. {text}" if title else f"Text card: {text}"))
        png = add_text_chunks(
            png,
            {
                # The card itself is drawn by code; the words on it were usually written with the model.
                "AI-generated": "text written with AI assistance; image drawn by Chorus, not an AI image model",
                "Label": label,
                "Description": alt,
            },
        )
        return GeneratedImage(png=png, alt_text=alt, kind="card", label=label, style=chosen)

    async def _restyle(
        self, parent_png: bytes, instruction: str, card_text: str, alt_text: str | None
    ) -> GeneratedImage:
        """No image model: redraw the card in the style the instruction hints at, else the next one."""
        try:
            meta = read_text_chunks(parent_png)
        except (OSError, ValueError):
            meta = {}
        previous = meta.get("Chorus-Card-Style")
        text = card_text or meta.get("Chorus-Card-Text", "") or instruction
        words = re.findall(r"[a-z]+", instruction.lower())

        def asks_for(hints: tuple[str, ...]) -> bool:  # "darker", "warmer": a hint is a word's stem
            return any(w == h or (len(h) >= 4 and w.startswith(h)) for w in words for h in hints)

        wanted = [name for name, hints in _STYLE_WORDS.items() if asks_for(hints) and name != previous]
        style = wanted[0] if wanted else card.next_style(previous)
        label = f"Text card redrawn by Chorus in the “{style}” style (not AI art; editing images needs an image model)"
        return await self._card(text, title=None, style=style, alt_text=alt_text, label=label)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
