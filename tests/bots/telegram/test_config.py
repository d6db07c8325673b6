"""Operator-facing settings and `chorus run --platform telegram` wiring (through bots.registry)."""

from __future__ import annotations

import io
import logging
import re

import pytest

from bots import registry
from bots.telegram.adapter import TelegramPlatform
from bots.telegram.config import DEFAULT_API_BASE_URL, DEFAULT_FILE_BASE_URL, TelegramSettings
from core.app import choose_platforms
from core.cli import parser
from core.errors import ConfigError
from core.logs import SecretMasker
from core.services import Services
from tests.bots.telegram.stack import TOKEN, Recorder, telegram_env, telegram_settings
from tests.fakes.telegram_api import FakeTelegram


def test_defaults_and_self_hosted_bot_api_urls() -> None:
    plain = TelegramSettings()
    assert (plain.api_base_url, plain.file_base_url) == (DEFAULT_API_BASE_URL, DEFAULT_FILE_BASE_URL)
    assert not plain.configured and plain.missing() == ["TELEGRAM_BOT_TOKEN"]
    local = TelegramSettings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL="http://localhost:8081/")
    assert local.api_base_url == "http://localhost:8081/bot"
    assert local.file_base_url == "http://localhost:8081/file/bot"  # follows the API server
    both = TelegramSettings(
        TELEGRAM_API_BASE_URL="https://gw.example.org/tg/bot{token}/test",
        TELEGRAM_FILE_BASE_URL="https://files.example.org/file",
    )
    assert both.api_base_url == "https://gw.example.org/tg/bot{token}/test"
    assert both.file_base_url == "https://files.example.org/file/bot"


def test_webhook_mode_needs_a_url_and_has_a_secret_token() -> None:
    hook = TelegramSettings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_MODE="webhook", TELEGRAM_WEBHOOK_PATH="tg")
    assert hook.missing()[0].startswith("TELEGRAM_WEBHOOK_URL") and hook.webhook_path == "/tg"
    plain_http = TelegramSettings(
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_MODE="webhook", TELEGRAM_WEBHOOK_URL="http://x"
    )
    assert "https://" in plain_http.missing()[0]
    secret = hook.secret_token()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret) and TOKEN not in secret
    assert secret == TelegramSettings(TELEGRAM_BOT_TOKEN=TOKEN).secret_token()  # stable across restarts
    assert secret != TelegramSettings(TELEGRAM_BOT_TOKEN="1:other").secret_token()
    chosen = TelegramSettings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET="my-secret_1")
    assert chosen.secret_token() == "my-secret_1"
    shown = hook.describe()
    assert TOKEN not in str(shown) and shown["TELEGRAM_BOT_TOKEN"].startswith("****")


def test_chorus_run_platform_telegram_needs_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parser().parse_args(["run", "--platform", "telegram"]).platform == ["telegram"]
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        choose_platforms(["telegram"])
    assert "telegram" not in choose_platforms(None)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert choose_platforms(["telegram"]) == ["telegram"]
    assert "telegram" in choose_platforms(None)  # `chorus run` starts every configured platform


async def test_the_registry_builds_the_adapter_and_a_refused_token_is_a_config_error(
    services: Services, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    telegram_env(monkeypatch, tg, TELEGRAM_BOT_TOKEN="7000001:AAF-wrong-token-0000000000000000")
    platform = registry.create("telegram", services, {})
    assert isinstance(platform, TelegramPlatform) and platform.capabilities.utf16_length
    with pytest.raises(ConfigError, match="refused TELEGRAM_BOT_TOKEN"):
        await platform.start(Recorder())
    await platform.stop()
    assert not tg.calls("getUpdates")  # nothing polled with a refused token


async def test_the_token_is_masked_in_every_log_line(services: Services, tg: FakeTelegram) -> None:
    """Even a token of no recognisable shape: creating the adapter adds it to the process's log masker."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretMasker())
    logging.getLogger().addHandler(handler)
    try:
        TelegramPlatform(TelegramSettings(TELEGRAM_BOT_TOKEN="42:tiny-secret"), services)
        logging.getLogger("httpx").warning("POST https://api.telegram.org/bot42:tiny-secret/getMe")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "tiny-secret" not in stream.getvalue() and "getMe" in stream.getvalue()


async def test_a_webhook_telegram_refuses_is_a_config_error(services: Services, tg: FakeTelegram) -> None:
    settings = telegram_settings(tg, TELEGRAM_MODE="webhook", TELEGRAM_WEBHOOK_URL="http://plain.example.org",
                                 TELEGRAM_WEBHOOK_PORT="0")  # fmt: skip
    platform = TelegramPlatform(settings, services)
    with pytest.raises(ConfigError, match=r"(?i)https url must be provided"):
        await platform.start(Recorder())
    await platform.stop()
    assert platform.webhook is None
