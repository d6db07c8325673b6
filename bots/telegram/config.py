"""Telegram adapter settings. Importing this module never imports python-telegram-bot.

``TELEGRAM_API_BASE_URL`` / ``TELEGRAM_FILE_BASE_URL`` point the bot at a self-hosted Bot API server (or
an API gateway); PTB appends the token unless the URL contains ``{token}``. Long polling is the default;
webhook mode needs a public HTTPS URL that forwards to ``TELEGRAM_WEBHOOK_LISTEN:TELEGRAM_WEBHOOK_PORT``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from core.catalog import PlatformFacts
from core.contract import Capabilities
from core.settings import ChorusSettings

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_FILE_BASE_URL = "https://api.telegram.org/file/bot"


class TelegramSettings(ChorusSettings):
    bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    api_base_url: str = Field(default=DEFAULT_API_BASE_URL, alias="TELEGRAM_API_BASE_URL")
    file_base_url: str = Field(default=DEFAULT_FILE_BASE_URL, alias="TELEGRAM_FILE_BASE_URL")
    mode: Literal["polling", "webhook"] = Field(default="polling", alias="TELEGRAM_MODE")
    poll_timeout_s: int = Field(default=30, ge=0, le=50, alias="TELEGRAM_POLL_TIMEOUT_S")
    webhook_url: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")
    webhook_listen: str = Field(default="127.0.0.1", alias="TELEGRAM_WEBHOOK_LISTEN")
    webhook_port: int = Field(default=8443, ge=0, le=65535, alias="TELEGRAM_WEBHOOK_PORT")
    webhook_path: str = Field(default="/telegram", alias="TELEGRAM_WEBHOOK_PATH")
    admin_cache_s: float = Field(default=60.0, ge=0, alias="TELEGRAM_ADMIN_CACHE_S")
    button_ttl_s: int = Field(default=7 * 86400, ge=60, alias="TELEGRAM_BUTTON_TTL_S")
    rate_per_second: float = Field(default=30.0, ge=0, alias="TELEGRAM_RATE_PER_SECOND")
    rate_group_per_minute: float = Field(default=20.0, ge=0, alias="TELEGRAM_RATE_GROUP_PER_MINUTE")
    request_timeout_s: float = Field(default=30.0, gt=0, alias="TELEGRAM_REQUEST_TIMEOUT_S")
    chat_action_interval_s: float = Field(default=4.5, gt=0, alias="TELEGRAM_CHAT_ACTION_INTERVAL_S")
    chat_action_max_s: float = Field(default=120.0, ge=0, alias="TELEGRAM_CHAT_ACTION_MAX_S")
    retry_backoff_s: float = Field(default=5.0, gt=0, alias="TELEGRAM_RETRY_BACKOFF_S")
    # drafts shown while written: a private draft may change often; a group's placeholder edits count
    # against the group's 20 messages a minute
    live_private_interval_s: float = Field(default=0.5, gt=0, alias="TELEGRAM_LIVE_PRIVATE_INTERVAL_S")
    live_group_interval_s: float = Field(default=3.0, gt=0, alias="TELEGRAM_LIVE_GROUP_INTERVAL_S")

    @field_validator("api_base_url")
    @classmethod
    def _api_suffix(cls, value: str) -> str:
        """``http://host:8081`` means the Bot API root: add the ``/bot`` PTB puts the token after."""
        value = value.strip()
        if "{token}" in value or value.endswith("/bot"):
            return value
        return value.rstrip("/") + "/bot"

    @field_validator("file_base_url")
    @classmethod
    def _file_suffix(cls, value: str) -> str:
        value = value.strip()
        if "{token}" in value or value.endswith("/bot"):
            return value
        root = value.rstrip("/")
        return root + ("/bot" if root.endswith("/file") else "/file/bot")

    @model_validator(mode="after")
    def _file_url_follows_api_url(self) -> TelegramSettings:
        """A self-hosted server serves files too: without TELEGRAM_FILE_BASE_URL, derive it from the API URL."""
        if (
            "file_base_url" not in self.model_fields_set
            and self.api_base_url != DEFAULT_API_BASE_URL
            and self.api_base_url.endswith("/bot")
        ):
            self.file_base_url = self.api_base_url.removesuffix("/bot") + "/file/bot"
        return self

    @field_validator("webhook_path")
    @classmethod
    def _leading_slash(cls, value: str) -> str:
        return "/" + value.strip().lstrip("/")

    @property
    def token(self) -> str:
        return self.bot_token.get_secret_value() if self.bot_token else ""

    @property
    def configured(self) -> bool:
        return not self.missing()

    def missing(self) -> list[str]:
        out = [] if self.token else ["TELEGRAM_BOT_TOKEN"]
        if self.mode == "webhook" and not (self.webhook_url or "").startswith("https://"):
            out.append("TELEGRAM_WEBHOOK_URL (an https:// URL: Telegram only calls HTTPS webhooks)")
        return out

    def secret_token(self) -> str:
        """The webhook's X-Telegram-Bot-Api-Secret-Token: configured, or derived from the bot token."""
        if self.webhook_secret and self.webhook_secret.get_secret_value():
            return self.webhook_secret.get_secret_value()
        return hmac.new(self.token.encode(), b"chorus-webhook", hashlib.sha256).hexdigest()


SETTINGS = TelegramSettings


TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
"""Telegram's limits, in UTF-16 code units of the text after entity parsing (what the Bot API counts)."""
MENTION_HEADROOM = 96
"""The one safety margin: @mentions are silenced with a word joiner after the "@" (bots/telegram/markup.py),
which adds a unit per mention after the core fitted the text. Every part of Chorus (drafts, digests,
previews, the sender's splitting) writes within ``limit - headroom``; the deliverer still re-checks the
real limit after escaping."""


def permalink(community: str, channel: str, message_id: str) -> str:
    """Supergroups and channels (-100...) have t.me/c links; the adapter names messages <chat id>:<id>."""
    number = message_id.rpartition(":")[2]
    if community.startswith("-100") and number.isdigit():
        return f"https://t.me/c/{community[4:]}/{number}"
    return ""


FACTS = PlatformFacts(
    name="telegram",
    label="Telegram",
    capabilities=Capabilities(
        max_text=TEXT_LIMIT - MENTION_HEADROOM,
        max_caption=CAPTION_LIMIT - MENTION_HEADROOM // 4,
        buttons=True,
        edits=True,
        threads=False,
        images=True,
        direct_messages=True,
        utf16_length=True,
        live_drafts=True,  # sendMessageDraft in private chats, an edited placeholder in groups
    ),
    permalink=permalink,
    roles=True,  # bots/telegram/roles.py re-checks a web session's moderator right
)
