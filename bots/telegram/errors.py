"""python-telegram-bot errors translated into Chorus PlatformErrors at the adapter boundary.

The Sender decides what to do from the class alone: wait ``retry_after`` and resend (flood control), back
off and resend (network, 5xx), or dead-letter (the request itself is wrong). The bot token never appears
in a translated message.
"""

from __future__ import annotations

import datetime as dt

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from core.errors import DeliveryRejected, PlatformError, PlatformRateLimited, PlatformUnavailable

NOT_MODIFIED = "message is not modified"


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is a timedelta with PTB_TIMEDELTA=true (set by this package)."""
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def safe_message(exc: TelegramError, token: str = "") -> str:
    """The error's text, fit for logs and operators: the token masked."""
    return _masked(str(exc.message if hasattr(exc, "message") else exc), token)


def translate(exc: TelegramError, token: str = "") -> PlatformError:
    message = safe_message(exc, token)
    match exc:
        case RetryAfter():
            return PlatformRateLimited(message, retry_after=retry_seconds(exc))
        case BadRequest() | Forbidden() | InvalidToken() | ChatMigrated():
            return DeliveryRejected(f"telegram refused the request: {message}")
        case TimedOut() | NetworkError() | Conflict():
            return PlatformUnavailable(f"telegram unavailable: {message}")
    return PlatformUnavailable(f"telegram error: {message}")


def is_not_modified(exc: TelegramError) -> bool:
    """Editing to the same content: the message already shows what we wanted."""
    return isinstance(exc, BadRequest) and NOT_MODIFIED in str(exc).lower()


def _masked(text: str, token: str) -> str:
    return text.replace(token, "****") if token else text
