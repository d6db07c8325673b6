"""PTB errors become the PlatformErrors the Sender acts on, without the token."""

from __future__ import annotations

import datetime as dt

import pytest
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bots.telegram.errors import is_not_modified, retry_seconds, translate
from core.errors import DeliveryRejected, PlatformRateLimited, PlatformUnavailable

TOKEN = "7000001:AAF-secret-token-value-0123456789"


def test_flood_control_carries_the_wait() -> None:
    exc = RetryAfter(dt.timedelta(seconds=7))
    assert retry_seconds(exc) == 7.0
    translated = translate(exc)
    assert isinstance(translated, PlatformRateLimited) and translated.retry_after == 7.0


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (BadRequest("Can't parse entities"), DeliveryRejected),
        (Forbidden("Forbidden: bot was blocked by the user"), DeliveryRejected),
        (ChatMigrated(-100999), DeliveryRejected),
        (TimedOut(), PlatformUnavailable),
        (NetworkError("Bad Gateway"), PlatformUnavailable),
    ],
)
def test_errors_map_to_what_the_sender_should_do(error: Exception, kind: type) -> None:
    assert isinstance(translate(error), kind)  # type: ignore[arg-type]


def test_the_token_never_appears_in_a_translated_message() -> None:
    leaked = NetworkError(f"connect to https://api.telegram.org/bot{TOKEN}/sendMessage failed")
    assert TOKEN not in str(translate(leaked, TOKEN))


def test_not_modified_is_recognised() -> None:
    assert is_not_modified(BadRequest("Message is not modified: specified new message content ..."))
    assert not is_not_modified(BadRequest("Message to edit not found"))
