"""The local image renderer: a post drawn as a designed text card (Pillow), used when no image model is set.

It is a card and says so (footer and PNG metadata), never passed off as AI art. Layout: a soft two-tone
background per style, an accent bar, an optional title, the text auto-sized to fill the space (wrapped on
words, or on characters for scripts without spaces), a rule and a small "Chorus · text card" footer.
Typography: Inter (the ``fontpkg-inter`` wheel) when installed, else Pillow's built-in scalable font; a
system font that covers the text (DejaVu, Noto CJK...) is used when the primary one lacks its glyphs.
Same input, same bytes: styles are chosen by a hash of the text, never at random.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

from core.assistant.pngmeta import add_text_chunks
from core.errors import InvalidInput
from core.text import clean

log = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

CARD_LABEL = "Text card drawn by Chorus (not AI art)"
FOOTER = "Chorus · text card"
MIN_SIZE, MAX_SIZE = (320, 180), (4096, 4096)
MAX_BODY_CHARS = 3000  # far more than a card can show; bounds the layout work for 50 KB inputs


@dataclass(frozen=True)
class Style:
    name: str
    top: RGB  # background gradient, top-left to bottom-right
    bottom: RGB
    text: RGB
    accent: RGB
    muted: RGB  # footer and rule


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("dawn", (255, 229, 214), (255, 196, 209), (43, 27, 47), (214, 80, 50), (120, 84, 98)),
        Style("ink", (18, 24, 44), (34, 46, 80), (245, 241, 232), (242, 193, 78), (150, 160, 190)),
        Style("mint", (228, 247, 238), (196, 234, 219), (15, 59, 46), (27, 150, 112), (70, 110, 96)),
        Style("paper", (250, 247, 240), (238, 232, 220), (30, 30, 30), (200, 85, 61), (118, 112, 104)),
    )
}


def style_names() -> tuple[str, ...]:
    return tuple(STYLES)


def next_style(current: str | None) -> str:
    """The style after ``current`` (for "reroll" of a card: same text, a different look)."""
    names = style_names()
    if current not in STYLES:
        return names[0]
    return names[(names.index(str(current)) + 1) % len(names)]


def auto_style(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return style_names()[digest[0] % len(STYLES)]


# ---- fonts --------------------------------------------------------------------------------------------

_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts",
              "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts")  # fmt: skip
# Sans faces with wide coverage first; any other installed font is tried after these for missing glyphs.
_PREFERRED = ("DejaVuSans.ttf", "NotoSans-Regular", "NotoSansCJK-Regular", "SourceHanSans", "NotoSansHebrew",
              "NotoSansArabic", "FreeSans.ttf", "Arial Unicode", "arialuni", "msyh", "meiryo")  # fmt: skip
_MAX_SYSTEM_FONTS = 40


@functools.cache
def _system_fonts() -> tuple[str, ...]:
    """Installed font files, preferred faces first (looked up once; only used for glyphs Inter lacks)."""
    found: list[Path] = []
    for root in _FONT_DIRS:
        base = Path(root).expanduser()
        if base.is_dir():
            found.extend(p for p in base.rglob("*") if p.suffix.lower() in (".ttf", ".otf", ".ttc"))

    def rank(path: Path) -> tuple[int, str]:
        hits = [i for i, name in enumerate(_PREFERRED) if name.lower() in path.name.lower()]
        bold_or_italic = any(w in path.name.lower() for w in ("bold", "italic", "oblique", "mono", "light"))
        return (hits[0] if hits else len(_PREFERRED) + bold_or_italic, str(path))

    return tuple(str(p) for p in sorted(found, key=rank)[:_MAX_SYSTEM_FONTS])


@functools.cache
def _inter_path() -> str | None:
    spec = importlib.util.find_spec("fontpkg_inter")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "files" / "Inter[opsz,wght].ttf"
    return str(path) if path.is_file() else None


def _families() -> list[str | None]:
    """Font files in order of preference; None is Pillow's built-in font."""
    primary: list[str | None] = [_inter_path()] if _inter_path() else []
    return [*primary, None, *_system_fonts()]


@functools.lru_cache(maxsize=256)
def _font(family: str | None, size: int, weight: str = "Regular") -> Font:
    if family is None:
        return ImageFont.load_default(size=size)
    try:
        font = ImageFont.truetype(family, size)
    except OSError:  # an unreadable system font: Pillow's built-in one still draws
        return ImageFont.load_default(size=size)
    if weight != "Regular":
        try:
            font.set_variation_by_name(weight)
        except (OSError, ValueError):  # not a variable font: a "-Bold" sibling file, else regular
            bold = Path(family).with_name(f"{Path(family).stem}-Bold{Path(family).suffix}")
            if weight in ("Bold", "SemiBold") and bold.is_file():
                return ImageFont.truetype(str(bold), size)
    return font


@functools.lru_cache(maxsize=8192)
def _covers(family: str | None, ch: str) -> bool:
    """Whether the font has a glyph for ``ch`` (its mask differs from the .notdef box)."""
    font = _font(family, 24)
    notdef = font.getmask("\U0010fffd")
    mask = font.getmask(ch)
    return not (mask.size == notdef.size and bytes(mask) == bytes(notdef))


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) == "So"
        or 0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or cp in (0x200D, 0xFE0F, 0xFE0E, 0x20E3)
        or 0x1F3FB <= cp <= 0x1F3FF
    )


def _visible(text: str) -> set[str]:
    return {ch for ch in text if not ch.isspace() and not _is_emoji(ch)}


def choose_family(text: str) -> str | None:
    """The first font covering every visible character, else the one covering the most."""
    chars = _visible(text)
    best: tuple[int, str | None] = (-1, None)
    for family in _families():
        covered = sum(_covers(family, ch) for ch in chars)
        if covered == len(chars):
            return family
        if covered > best[0]:
            best = (covered, family)
    _warn_missing_glyphs("".join(sorted(ch for ch in chars if not _covers(best[1], ch))[:5]))
    return best[1]


@functools.cache
def _warn_missing_glyphs(sample: str) -> None:
    """Once per kind of gap, not once per card."""
    log.warning("no installed font draws %r on cards; install fonts-noto-cjk or similar", sample)


def _drawable(text: str, family: str | None) -> str:
    """Leave out what the font cannot draw (emoji it lacks, scripts with no installed font): boxes read
    worse than nothing, and the post itself and the alt text still carry every character."""
    out = "".join(ch for ch in text if ch.isspace() or _covers(family, ch))
    return re.sub(r"[ \t]{2,}", " ", out).strip() if out != text else out


# ---- layout -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextItem:
    """One line of text as drawn: tests measure these with ``ImageDraw.textbbox``."""

    xy: tuple[float, float]
    text: str
    font: Font
    fill: RGB
    anchor: str = "la"
    stroke: int = 0


@dataclass(frozen=True)
class CardLayout:
    size: tuple[int, int]
    style: Style
    items: tuple[TextItem, ...]
    content_box: tuple[int, int, int, int]  # left, top, right, bottom: every text item stays inside it
    truncated: bool


def _is_rtl(text: str) -> bool:
    strong = [
        unicodedata.bidirectional(ch) for ch in text if unicodedata.bidirectional(ch) in ("L", "R", "AL")
    ]
    return bool(strong) and sum(b != "L" for b in strong) > len(strong) / 2


def _wrap(text: str, font: Font, width: float, max_lines: int = 10_000) -> list[str]:
    """Greedy wrap on spaces; words wider than a line (or scripts without spaces) break between characters.

    Stops after ``max_lines + 1`` lines: enough to know the text does not fit at this size.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            if len(lines) > max_lines:
                return lines
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while font.getlength(line) > width and len(lines) <= max_lines:  # break between characters
                cut = _longest_fit(line, font, width)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _longest_fit(text: str, font: Font, width: float) -> int:
    """Length of the longest prefix that fits (at least one character, so wrapping always advances)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _ellipsize(line: str, font: Font, width: float) -> str:
    line = line.rstrip(" .,;:")
    while line and font.getlength(line + "…") > width:
        line = line[:-1].rstrip()
    return line + "…"


def layout_card(
    text: str, *, title: str | None = None, style: str = "auto", size: tuple[int, int] = (1200, 675)
) -> CardLayout:
    """Place every line of the card; ``render_card`` draws exactly this."""
    width, height = size
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise InvalidInput(f"A card must be between {MIN_SIZE} and {MAX_SIZE} pixels.")
    body = "\n".join(" ".join(line.split()) for line in clean(text).strip().splitlines()).strip()
    head = " ".join(clean(title or "").split())
    if not body:
        raise InvalidInput("There is no text to put on the card.")
    chosen = (
        STYLES[auto_style(body) if style == "auto" else style] if style in STYLES or style == "auto" else None
    )
    if chosen is None:
        raise InvalidInput(f"Unknown card style {style!r}; try one of: {', '.join(STYLES)}.")
    family = choose_family(body + head)
    legible, head = _drawable(body, family), _drawable(head, family)
    rtl = _is_rtl(body)
    # nothing (or too little) drawable with the installed fonts: the caption carries the words then
    no_font = not legible.strip() or len(_visible(legible)) < 0.5 * len(_visible(body))

    unit = min(width / 1200, height / 675)  # the design is drawn at 1200x675 and scaled
    margin_x, margin_y = round(width * 0.075), round(height * 0.1)
    left, right = margin_x, width - margin_x
    items: list[TextItem] = []
    y = margin_y + round(8 * unit) + round(26 * unit)  # below the accent bar
    if head:
        title_font = _font(family, max(12, round(28 * unit)), "Bold")
        line = head.upper() if len(head.upper()) == len(head) else head
        if title_font.getlength(line) > right - left:
            line = _ellipsize(line, title_font, right - left)
        items.append(
            TextItem(
                (right, y) if _is_rtl(head) else (left, y),
                line,
                title_font,
                chosen.accent,
                "ra" if _is_rtl(head) else "la",
            )
        )
        y += round(28 * unit * 1.25) + round(18 * unit)

    footer_font = _font(family, max(10, round(20 * unit)), "Medium")
    footer_y = height - margin_y
    rule_y = footer_y - round(20 * unit) - round(22 * unit)
    area_top, area_bottom = y, rule_y - round(26 * unit)

    if no_font:  # no font here for this script: a large quote mark instead of boxes
        items.append(TextItem((left, area_top), "“", _font(family, round(240 * unit), "Bold"), chosen.accent))
        truncated = True
    else:
        lines, font, spacing, truncated = _fit_body(
            legible, family, right - left, area_bottom - area_top, unit
        )
        top = area_top + max(0, (area_bottom - area_top - len(lines) * spacing) // 3)  # optical centre
        for i, line in enumerate(lines):
            x, anchor = (right, "ra") if rtl else (left, "la")
            items.append(TextItem((x, top + i * spacing), line, font, chosen.text, anchor))
    items.append(TextItem((left, footer_y), FOOTER, footer_font, chosen.muted, "ld"))
    return CardLayout(size, chosen, tuple(items), (left, margin_y, right, footer_y), truncated)


def _fit_body(
    body: str, family: str | None, width: int, height: int, unit: float
) -> tuple[list[str], Font, int, bool]:
    """The largest size (72 -> 24 at 1200x675) at which the wrapped text fits; else truncate at the smallest."""
    largest, smallest = round(72 * unit), max(10, round(24 * unit))
    body = body[:MAX_BODY_CHARS]
    for size in range(largest, smallest - 1, -2):
        font = _font(family, size, "SemiBold" if size >= 40 * unit else "Medium")
        spacing = round(size * 1.32)
        max_lines = max(1, height // spacing)
        if font.getlength(body.replace("\n", " ")) > width * max_lines:
            continue  # cannot fit even with perfectly full lines: skip the wrap
        lines = _wrap(body, font, width, max_lines)
        if len(lines) <= max_lines:
            return lines, font, spacing, False
    font = _font(family, smallest, "Medium")
    spacing = round(smallest * 1.32)
    keep = max(1, height // spacing)
    lines = _wrap(body, font, width, keep)
    if len(lines) <= keep:
        return lines, font, spacing, False
    return [*lines[: keep - 1], _ellipsize(lines[keep - 1], font, width)], font, spacing, True


# ---- drawing ------------------------------------------------------------------------------------------


def _background(size: tuple[int, int], style: Style) -> Image.Image:
    """A diagonal two-tone gradient: calm, and distinct per style."""
    vertical = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    horizontal = Image.linear_gradient("L").rotate(90).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mask = ImageChops.add(vertical, horizontal.resize(size, Image.Resampling.BILINEAR), scale=2.0)
    top, bottom = Image.new("RGB", size, style.top), Image.new("RGB", size, style.bottom)
    return Image.composite(bottom, top, mask)


def render_card(
    text: str, *, title: str | None = None, style: str = "auto", size: tuple[int, int] = (1200, 675)
) -> bytes:
    """The card as PNG bytes, labelled in its metadata as a Chorus text card (not AI art)."""
    layout = layout_card(text, title=title, style=style, size=size)
    width, height = layout.size
    unit = min(width / 1200, height / 675)
    image = _background(layout.size, layout.style)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = layout.content_box
    bar_h = max(3, round(8 * unit))
    draw.rounded_rectangle(
        (left, top, left + round(72 * unit), top + bar_h), radius=bar_h // 2, fill=layout.style.accent
    )
    rule_y = bottom - round(20 * unit) - round(22 * unit)
    draw.line((left, rule_y, right, rule_y), fill=layout.style.muted, width=max(1, round(1.5 * unit)))
    dot_r = max(2, round(5 * unit))
    draw.ellipse(
        (right - 2 * dot_r, bottom - 2 * dot_r - round(4 * unit), right, bottom - round(4 * unit)),
        fill=layout.style.accent,
    )
    for item in layout.items:
        draw.text(item.xy, item.text, font=item.font, fill=item.fill, anchor=item.anchor)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    description = "\n".join(i.text for i in layout.items[:-1])
    drawn_text = "\n".join(" ".join(line.split()) for line in clean(text).strip().splitlines()).strip()
    return add_text_chunks(
        out.getvalue(),
        {
            "Software": "Chorus",
            "Title": title or "",
            "Description": description,
            "Label": CARD_LABEL,
            "Chorus-Card-Style": layout.style.name,
            "Chorus-Card-Text": drawn_text[:MAX_BODY_CHARS],  # so "edit" can redraw the same words
            "XML:com.adobe.xmp": source_type_xmp("algorithmicMedia"),
        },
    )


def source_type_xmp(source_type: str) -> str:
    """IPTC DigitalSourceType in XMP: the standard way to say how an image was made."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/{source_type}"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
