"""PNG labels are added as chunks: the image bytes and the provider's provenance chunk survive."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.assistant.pngmeta import NotAnImage, add_text_chunks, chunks, read_text_chunks, to_png
from tests.fakes.openai_api import png_bytes


def test_labels_are_added_without_touching_the_image_data() -> None:
    original = png_bytes((10, 200, 30))
    labelled = add_text_chunks(original, {"AI-generated": "yes", "Description": "Alt: 猫の宇宙飛行士 🚀"})
    kinds = [kind for kind, _ in chunks(labelled)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"caBX" in kinds
    assert [d for k, d in chunks(labelled) if k == b"IDAT"] == [
        d for k, d in chunks(original) if k == b"IDAT"
    ]
    assert read_text_chunks(labelled) == {"AI-generated": "yes", "Description": "Alt: 猫の宇宙飛行士 🚀"}
    assert Image.open(io.BytesIO(labelled)).getpixel((0, 0)) == (10, 200, 30)


def test_setting_a_label_again_replaces_it() -> None:
    once = add_text_chunks(png_bytes(), {"Label": "first", "Software": "Chorus"})
    twice = add_text_chunks(once, {"Label": "second", "Empty": ""})
    assert read_text_chunks(twice) == {"Label": "second", "Software": "Chorus"}


def test_other_formats_are_converted_and_garbage_is_refused() -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(jpeg, "JPEG")
    converted = to_png(jpeg.getvalue())
    assert Image.open(io.BytesIO(converted)).format == "PNG"
    with pytest.raises(NotAnImage):
        to_png(b"definitely not an image")
    broken = bytearray(png_bytes())
    broken[40] ^= 0xFF  # flip a byte inside a chunk: its CRC no longer matches
    with pytest.raises(NotAnImage):
        chunks(bytes(broken))
