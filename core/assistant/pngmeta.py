"""PNG text metadata without re-encoding: labels ("AI-generated", alt text) are added as iTXt chunks.

Why not re-save with Pillow: images from OpenAI carry C2PA provenance (a ``caBX`` chunk) that a re-encode
would drop; inserting chunks keeps every existing byte of the image.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping

from PIL import Image, UnidentifiedImageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"iTXt", b"zTXt")


class NotAnImage(ValueError):
    """The bytes are not an image Pillow can read."""


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, CRCs checked."""
    if not png.startswith(PNG_SIGNATURE):
        raise NotAnImage("not a PNG")
    out: list[tuple[bytes, bytes]] = []
    pos = len(PNG_SIGNATURE)
    while pos < len(png):
        if pos + 12 > len(png):
            raise NotAnImage("truncated PNG chunk")
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length] or b"\0\0\0\0")
        if len(data) != length or zlib.crc32(kind + data) != crc:
            raise NotAnImage(f"corrupt PNG chunk {kind!r}")
        out.append((kind, data))
        pos += 12 + length
        if kind == b"IEND":
            break
    if not out or out[0][0] != b"IHDR" or out[-1][0] != b"IEND":
        raise NotAnImage("PNG without IHDR/IEND")
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _keyword(kind: bytes, data: bytes) -> bytes | None:
    return data.split(b"\0", 1)[0] if kind in _TEXT_CHUNKS else None


def to_png(image: bytes) -> bytes:
    """PNG bytes as they are; any other image format Pillow reads is converted (metadata is lost then)."""
    if image.startswith(PNG_SIGNATURE):
        chunks(image)
        return image
    try:
        with Image.open(io.BytesIO(image)) as img:
            img.load()
            out = io.BytesIO()
            img.save(out, "PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError) as exc:
        raise NotAnImage(str(exc)) from exc


def add_text_chunks(png: bytes, texts: Mapping[str, str]) -> bytes:
    """Set UTF-8 iTXt entries (replacing earlier ones with the same keyword); empty values are skipped."""
    wanted = {k: v for k, v in texts.items() if v}
    names = {k.encode("latin-1") for k in wanted}
    kept = [(kind, data) for kind, data in chunks(png) if _keyword(kind, data) not in names]
    new = [
        _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))
        for key, value in wanted.items()
    ]
    body = b"".join(_chunk(kind, data) for kind, data in kept[:-1])
    return PNG_SIGNATURE + body + b"".join(new) + _chunk(*kept[-1])


def read_text_chunks(png: bytes) -> dict[str, str]:
    """The text metadata as Pillow would report it (used by tests and by ``edit`` to find a card's style)."""
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        return {str(k): str(v) for k, v in getattr(img, "text", {}).items()}
