"""One exception root for Chorus, so callers catch one thing and users see one kind of message.

Tree::

    ChorusError                      anything Chorus raises on purpose
    ├── ConfigError                  bad or missing settings (shown to operators, never to users)
    ├── StorageError                 Redis unreachable or the embedded server failed to start
    ├── PlatformError                raised by adapters, translated from SDK errors at the boundary
    │   ├── PlatformRateLimited      the platform asked us to wait (``retry_after`` seconds)
    │   ├── PlatformUnavailable      network or 5xx: retry later, the Action is kept
    │   └── DeliveryRejected         the platform refused this Action for good (bad request, forbidden)
    ├── ProviderError                model / image / moderation provider failures
    │   ├── ProviderRateLimited      429 from the provider (``retry_after`` seconds)
    │   ├── ProviderUnavailable      timeouts, 5xx, connection errors
    │   └── ProviderBadOutput        the provider answered but the answer was unusable after repair/retry
    └── UserError                    the request cannot be served; ``user_message`` is safe to show
        ├── PermissionDenied         e.g. a non-moderator changing configuration
        ├── QuotaExceeded            over a limit; ``retry_at`` says when to try again
        │   └── BudgetExceeded       over the daily money cap (community or deployment)
        ├── InvalidInput             malformed command or arguments; says what was wrong
        ├── ContentRefused           moderation refused the input or the output
        └── NotAvailable             a feature that is not configured or not built yet

Every error has a ``user_message``: a short sentence safe to show in a chat. Details (and tracebacks) go
to the logs only, with secrets masked.
"""

from __future__ import annotations


class ChorusError(Exception):
    """Root of every error Chorus raises on purpose."""

    user_message = "Sorry, something went wrong on our side. Please try again in a moment."

    def __init__(self, message: str = "", *, user_message: str | None = None) -> None:
        super().__init__(message or self.user_message)
        if user_message is not None:
            self.user_message = user_message


class ConfigError(ChorusError):
    """Settings are missing or invalid."""


class StorageError(ChorusError):
    """Redis could not be reached or started."""


class PlatformError(ChorusError):
    """A platform (Discord, Telegram, X) call failed; raised by adapters only."""


class PlatformRateLimited(PlatformError):
    """The platform asked us to wait before calling again."""

    def __init__(self, message: str = "", *, retry_after: float) -> None:
        super().__init__(message or f"rate limited, retry after {retry_after:.1f}s")
        self.retry_after = retry_after


class PlatformUnavailable(PlatformError):
    """Transient failure (network, 5xx); the Action is retried later."""


class DeliveryRejected(PlatformError):
    """The platform refused the Action for good; retrying would not help."""


class ProviderError(ChorusError):
    """A model, image or moderation provider failed."""

    user_message = "The writing service is having trouble right now. Please try again in a minute."


class ProviderRateLimited(ProviderError):
    """The provider answered 429."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message or "provider rate limited")
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """Timeouts, 5xx and connection failures."""


class ProviderBadOutput(ProviderError):
    """The provider's answer was unusable even after repair and retry."""

    user_message = "The model gave an answer I could not use. Please try again or rephrase."


class UserError(ChorusError):
    """The request cannot be served as asked; ``user_message`` explains why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message, user_message=user_message)


class PermissionDenied(UserError):
    """The author may not do this (e.g. only moderators change configuration)."""


class QuotaExceeded(UserError):
    """Over a rate limit or quota."""

    def __init__(self, user_message: str, *, retry_at: float | None = None) -> None:
        super().__init__(user_message)
        self.retry_at = retry_at


class BudgetExceeded(QuotaExceeded):
    """The community (or the whole deployment) spent its daily money cap."""


class InvalidInput(UserError):
    """A malformed command or argument."""


class ContentRefused(UserError):
    """Moderation refused the request or the generated text."""


class NotAvailable(UserError):
    """The feature is not configured here or not built yet."""
