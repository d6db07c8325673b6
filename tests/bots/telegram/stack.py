"""Shared wiring for the Telegram tests: the real adapter (real PTB over HTTP) against FakeTelegram.

``telegram_env`` sets the TELEGRAM_* variables the way an operator would, so ``core.app.Run`` builds the
adapter through ``bots.registry`` exactly as ``chorus run --platform telegram`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bots.telegram.adapter import TelegramPlatform
from bots.telegram.config import TelegramSettings
from core.app import Run
from core.contract import Event
from core.services import Services
from tests.fakes.telegram_api import FakeTelegram, SentMessage

TOKEN = "7000001:AAF-fake-token-for-chorus-tests-0123456789"
BOT_ID = 7000001

FAST: dict[str, Any] = {
    "TELEGRAM_POLL_TIMEOUT_S": "5",
    "TELEGRAM_RETRY_BACKOFF_S": "0.1",
    "TELEGRAM_CHAT_ACTION_INTERVAL_S": "0.3",
    "TELEGRAM_RATE_PER_SECOND": "1000",
    "TELEGRAM_RATE_GROUP_PER_MINUTE": "100000",
}


def telegram_env(monkeypatch: pytest.MonkeyPatch, tg: FakeTelegram, **extra: str) -> None:
    values = {
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "TELEGRAM_FILE_BASE_URL": tg.base_file_url,
        **FAST,
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def telegram_settings(tg: FakeTelegram, **extra: Any) -> TelegramSettings:
    values = {
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "TELEGRAM_FILE_BASE_URL": tg.base_file_url,
        **FAST,
        **extra,
    }
    return TelegramSettings(**values)


@dataclass
class Recorder:
    """An EventSink that keeps what the adapter published (for tests without a worker)."""

    events: list[Event] = field(default_factory=list)

    async def __call__(self, event: Event) -> str | None:
        self.events.append(event)
        return f"{len(self.events)}-0"


@contextlib.asynccontextmanager
async def adapter(
    services: Services, tg: FakeTelegram, sink: Any = None, **extra: Any
) -> AsyncIterator[TelegramPlatform]:
    """A started adapter publishing to ``sink`` (default: the real bus)."""
    platform = TelegramPlatform(telegram_settings(tg, **extra), services)
    await platform.start(sink or services.bus.publish)
    try:
        yield platform
    finally:
        await asyncio.wait_for(platform.stop(), 60)  # a stop that hangs fails here, with its traceback


@contextlib.asynccontextmanager
async def running(services: Services, *, worker: bool = True) -> AsyncIterator[Run]:
    """``chorus run --platform telegram`` in-process: adapter, Sender, worker and scheduler."""
    run = Run(services.settings, platforms=["telegram"], worker=worker, background=False)
    task = asyncio.create_task(run.serve(services), name="chorus-run")
    try:
        yield run
    finally:
        run.stop.set()
        await asyncio.wait_for(task, timeout=30)


def texts(tg: FakeTelegram, chat: int) -> list[str]:
    """What people in the chat saw from the bot: texts and captions, oldest first."""
    return [m.text or m.caption or "" for m in tg.bot_messages(chat)]


def button(message: SentMessage, label_starts: str) -> str:
    """The callback data of the button whose label starts with ``label_starts``."""
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    for row in rows:
        for b in row:
            if b["text"].startswith(label_starts):
                return str(b["callback_data"])
    raise AssertionError(f"no button {label_starts!r} in {rows}")


async def wait_for_messages(
    tg: FakeTelegram, chat: int, count: int, timeout: float = 20.0, what: str = ""
) -> list[SentMessage]:
    def enough() -> list[SentMessage] | None:
        sent = tg.bot_messages(chat)
        return sent if len(sent) >= count else None

    result = await tg.wait_for(enough, timeout=timeout, what=what or f"{count} bot messages in {chat}")
    return result
