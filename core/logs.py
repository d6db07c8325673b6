"""Logging set-up: plain or JSON lines, with every known secret (and token-shaped strings) masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable

# Shapes of credentials that must never reach a log even if nobody registered them as secrets.
_TOKEN_SHAPES = re.compile(
    r"(\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"  # Telegram bot token
    r"|\bsk-[A-Za-z0-9_-]{16,}"  # OpenAI keys
    r"|\b[MN][A-Za-z\d]{23,25}\.[\w-]{6}\.[\w-]{27,}"  # Discord bot token
    r"|(?<=/bot)[^/\s]{20,}"  # tokens in Bot API URLs
    r"|(?i:bearer\s+)[A-Za-z0-9%._~+/=-]{20,})"
)


class SecretMasker(logging.Filter):
    """Replaces secrets in the final message and in exception text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "****")
        return _TOKEN_SHAPES.sub("****", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self.mask(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": round(record.created, 3),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            },
            ensure_ascii=False,
        )


def setup(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> SecretMasker:
    """Configure the root logger once for the process; returns the masker so more secrets can be added."""
    handler = logging.StreamHandler(sys.stderr)
    masker = SecretMasker(secrets)
    handler.addFilter(masker)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "openai", "discord", "telegram", "aiohttp.access", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return masker


class Outage:
    """Quiet logging while a dependency is away: one warning, a summary every ``every_s``, one "back".

    A loop that retries every second must not print a line (let alone a traceback) per try.
    """

    def __init__(
        self, logger: logging.Logger, what: str, *, waiting: str = "waiting for it", every_s: float = 60.0
    ) -> None:
        self.logger = logger
        self.what = what
        self.waiting = waiting
        self.every_s = every_s
        self.since: float | None = None
        self.failures = 0
        self._last_said = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.failures += 1
        if self.since is None:
            self.since = self._last_said = now
            self.logger.warning("%s unavailable (%s); %s", self.what, _describe(exc), self.waiting)
        elif now - self._last_said >= self.every_s:
            self._last_said = now
            self.logger.warning(
                "%s still unavailable after %.0fs (%d failed attempts; last: %s)",
                self.what, now - self.since, self.failures, _describe(exc),
            )  # fmt: skip

    def recovered(self) -> None:
        if self.since is None:
            return
        self.logger.warning(
            "%s is back after %.1fs (%d failed attempts)",
            self.what,
            time.monotonic() - self.since,
            self.failures,
        )
        self.since = None
        self.failures = 0


def _describe(exc: BaseException) -> str:
    """The error's type and first line, short (no traceback)."""
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
