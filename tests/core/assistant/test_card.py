"""The text-card renderer: valid PNGs, text that stays inside, every script survives, labelled as a card."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from core.assistant.card import (
    CARD_LABEL,
    FOOTER,
    STYLES,
    auto_style,
    layout_card,
    next_style,
    render_card,
)
from core.assistant.pngmeta import read_text_chunks
from core.errors import InvalidInput

LAUNCH = (
    "We shipped Chorus 1.0 today! One assistant for Discord, Telegram and X: mention it, get a post worth "
    "sharing, revise it, share it. Thanks to everyone who tested the betas."
)


def open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def assert_inside(text: str, size: tuple[int, int] = (1200, 675), **kw: object) -> None:
    """Every drawn line's real ink box (ImageDraw.textbbox) lies inside the content box and the image."""
    layout = layout_card(text, size=size, **kw)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(Image.new("RGB", layout.size))
    left, top, right, bottom = layout.content_box
    for item in layout.items:
        x0, y0, x1, y1 = draw.textbbox(item.xy, item.text, font=item.font, anchor=item.anchor)
        assert x0 >= 0 and x1 <= size[0] and y0 >= 0 and y1 <= size[1], item.text
        assert left - 2 <= x0 and x1 <= right + 2 and top <= y0 and y1 <= bottom + 2, (
            item.text,
            (x0, y0, x1, y1),
        )


@pytest.mark.parametrize("size", [(1200, 675), (1080, 1080), (800, 1000), (320, 180)])
def test_valid_png_of_the_requested_size(size: tuple[int, int]) -> None:
    image = open_png(render_card(LAUNCH, title="Launch day", size=size))
    assert image.size == size
    assert image.mode == "RGB"
    assert_inside(LAUNCH, size=size, title="Launch day")


def test_long_text_wraps_shrinks_and_is_cut_with_an_ellipsis_inside_the_card() -> None:
    long = " ".join(f"word{i}" for i in range(600))
    layout = layout_card(long, title="Overflow")
    body = [item for item in layout.items[1:-1]]
    assert len(body) > 5, "long text should wrap onto many lines"
    assert layout.truncated and body[-1].text.endswith("…")
    short = layout_card("Small news.")
    assert short.items[0].font.size > body[0].font.size  # type: ignore[union-attr]
    assert_inside(long, title="Overflow")


def test_a_50_kb_unbroken_string_breaks_between_characters_and_stays_inside() -> None:
    huge = "x" * 50_000
    layout = layout_card(huge)
    assert layout.truncated
    assert_inside(huge)


@pytest.mark.parametrize(
    "text",
    [
        "今日は新しいリリースを公開しました。皆さんのフィードバックに感謝します！",
        "שלום לכולם! היום אנחנו משיקים את הגרסה החדשה של הבוט שלנו.",
        "مرحبا بالجميع! نطلق اليوم الإصدار الجديد.",
        "Launch day 🚀🎉 👩🏽‍💻 with friends ❤️ and a flag 🇫🇷",
        "Ça marche très bien — naïve café, Ærø, Ωμέγα, Привет мир!",
        "zero\u200bwidth and \u202ebidi override\u202c and a soft\u00adhyphen",
        "🚀🎉",
    ],
    ids=["cjk", "hebrew", "arabic", "emoji", "accents", "invisible", "only-emoji"],
)
def test_any_script_renders_without_crashing_or_drawing_boxes(text: str) -> None:
    data = render_card(text, title="News")
    assert open_png(data).size == (1200, 675)
    assert_inside(text, title="News")
    layout = layout_card(text)
    drawn = "".join(item.text for item in layout.items)
    assert "\u200b" not in drawn and "\u202e" not in drawn  # invisible/bidi controls never reach the canvas
    for item in layout.items:
        notdef = item.font.getmask("\U0010fffd")
        for ch in set(item.text) - {" "}:
            mask = item.font.getmask(ch)
            assert not (mask.size == notdef.size and bytes(mask) == bytes(notdef)), f"box drawn for {ch!r}"


def test_rtl_text_is_right_aligned() -> None:
    layout = layout_card("שלום לכולם! היום אנחנו משיקים את הגרסה החדשה של הבוט שלנו.")
    assert all(item.anchor == "ra" for item in layout.items[:-1])
    assert layout.items[-1].text == FOOTER


def test_same_input_same_bytes_and_styles_differ() -> None:
    assert render_card(LAUNCH, style="ink") == render_card(LAUNCH, style="ink")
    pixels = {name: open_png(render_card(LAUNCH, style=name)).getpixel((5, 5)) for name in STYLES}
    assert len(set(pixels.values())) == len(STYLES)
    assert auto_style(LAUNCH) == auto_style(LAUNCH) and auto_style(LAUNCH) in STYLES
    assert [next_style(s) for s in STYLES] == [*list(STYLES)[1:], next(iter(STYLES))]


def test_card_is_labelled_as_a_card_not_ai_art() -> None:
    meta = read_text_chunks(render_card(LAUNCH, title="Launch day", style="mint"))
    assert meta["Label"] == CARD_LABEL and "not AI art" in meta["Label"]
    assert meta["Software"] == "Chorus"
    assert meta["Chorus-Card-Style"] == "mint"
    assert meta["Chorus-Card-Text"] == LAUNCH
    assert "We shipped Chorus 1.0 today!" in meta["Description"]
    assert "digitalsourcetype/algorithmicMedia" in meta["XML:com.adobe.xmp"]


def test_footer_names_it_a_text_card() -> None:
    footer = layout_card(LAUNCH).items[-1]
    assert footer.text == "Chorus · text card"


@pytest.mark.parametrize(
    ("text", "kw"),
    [("   \u200b  ", {}), ("hello", {"style": "neon"}), ("hello", {"size": (10, 10)})],
    ids=["empty", "unknown-style", "tiny"],
)
def test_bad_input_is_a_clear_invalid_input(text: str, kw: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        render_card(text, **kw)  # type: ignore[arg-type]
