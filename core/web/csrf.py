"""CSRF tokens: every form carries one derived from the session (or, before sign-in, from a random cookie),
and every POST without the right one is refused before anything else runs."""

from __future__ import annotations

from core.web.signing import same, sign

FIELD = "csrf"
PRE_COOKIE = "chorus_pre"


def token_for(key: bytes, binding: str) -> str:
    """``binding`` is the session's digest, or the pre-sign-in cookie's value."""
    return sign(key, "csrf", binding)


def valid(key: bytes, binding: str, submitted: str) -> bool:
    return bool(binding and submitted) and same(submitted, token_for(key, binding))
