"""Root settings, read from the environment and ``.env``. Each adapter owns its own settings class.

Secrets are ``SecretStr`` so they never print; ``describe()`` renders the effective configuration with
secrets masked for ``chorus config check``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChorusSettings(BaseSettings):
    """Base for every settings class: same ``.env``, unknown variables ignored."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    def describe(self) -> dict[str, str]:
        """Effective values for display, secrets masked."""
        out: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            label = field.alias or name.upper()
            if isinstance(value, SecretStr):
                out[label] = mask(value.get_secret_value())
            elif value is None:
                out[label] = "(not set)"
            else:
                out[label] = str(value)
        return out


def mask(secret: str) -> str:
    """Show that a secret is set without revealing it (only its length class and last 2 chars)."""
    if not secret:
        return "(empty)"
    return "****" + (secret[-2:] if len(secret) >= 12 else "")


class Settings(ChorusSettings):
    redis_url: SecretStr | None = Field(default=None, alias="CHORUS_REDIS_URL")
    data_dir: Path = Field(default=Path("data"), alias="CHORUS_DATA_DIR")
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    chat_model: str = Field(default="gpt-4.1-mini", alias="CHORUS_CHAT_MODEL")
    image_model: str = Field(default="gpt-image-1", alias="CHORUS_IMAGE_MODEL")
    log_format: Literal["text", "json"] = Field(default="text", alias="CHORUS_LOG_FORMAT")
    log_level: str = Field(default="INFO", alias="CHORUS_LOG_LEVEL")
    worker_concurrency: int = Field(default=64, ge=1, alias="CHORUS_WORKER_CONCURRENCY")
    max_attempts: int = Field(default=3, ge=1, alias="CHORUS_MAX_ATTEMPTS")
    claim_idle_ms: int = Field(default=30_000, ge=100, alias="CHORUS_CLAIM_IDLE_MS")
    dedupe_ttl_s: int = Field(default=7 * 86400, alias="CHORUS_DEDUPE_TTL_S")
    http_port: int = Field(default=8088, alias="CHORUS_HTTP_PORT")

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    def secrets(self) -> list[str]:
        """Every secret value, for the log filter."""
        return [
            v.get_secret_value()
            for v in (getattr(self, n) for n in type(self).model_fields)
            if isinstance(v, SecretStr) and v.get_secret_value()
        ]
