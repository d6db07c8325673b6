from __future__ import annotations

import subprocess
import sys

import pytest

from bots import registry
from bots.discord.config import DEFAULT_API_BASE_URL, DEFAULT_GATEWAY_URL, DiscordSettings


def test_defaults_are_discords_own_and_no_token_means_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISCORD_BOT_TOKEN", raising=False)
    settings = DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.api_base_url, settings.gateway_url) == (DEFAULT_API_BASE_URL, DEFAULT_GATEWAY_URL)
    assert not settings.configured and settings.missing() == ["DISCORD_BOT_TOKEN"]
    assert settings.message_content and settings.sync_commands and settings.guild_ids == []


def test_environment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "MTIz.secret.token-value-here")
    monkeypatch.setenv("DISCORD_API_BASE_URL", "http://proxy.internal:8080/api/v10")
    monkeypatch.setenv("DISCORD_GATEWAY_URL", "ws://gateway.internal:8081/")
    monkeypatch.setenv("DISCORD_GUILD_IDS", "123, 456")
    monkeypatch.setenv("DISCORD_MODERATOR_ROLES", '["Mods", "789"]')
    monkeypatch.setenv("DISCORD_MESSAGE_CONTENT", "false")
    settings = DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.configured and settings.missing() == []
    assert settings.api_base_url == "http://proxy.internal:8080/api/v10"
    assert settings.gateway_url == "ws://gateway.internal:8081/"
    assert settings.guild_ids == [123, 456] and settings.moderator_roles == ["Mods", "789"]
    assert not settings.message_content
    described = settings.describe()
    assert "secret" not in described["DISCORD_BOT_TOKEN"] and described["DISCORD_BOT_TOKEN"].startswith(
        "****"
    )


def test_registry_finds_the_adapter_and_config_does_not_import_discord() -> None:
    assert registry.available("discord")
    code = "import sys, bots.discord.config; print('discord' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip() == "False"
