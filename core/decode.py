"""Redis replies as text: the clients here may answer bytes (the default) or str (decode_responses)."""

from __future__ import annotations

from typing import Any


def as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
