"""X adapter settings (``X_*``): credentials, the API tier's limits, safety rails and feed sources.

No SDK import here: ``chorus config check`` reads every adapter's settings. Secrets are ``SecretStr``.
Limits left unset follow the tier (``X_API_TIER``); operators override any of them one by one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from core.catalog import PlatformFacts
from core.contract import Capabilities
from core.settings import ChorusSettings, env_list

Tier = Literal["free", "basic", "pro", "custom"]
ReplySettings = Literal["everyone", "following", "mentionedUsers", "subscribers", "verified"]
DEFAULT_BASE_URL = "https://api.x.com"
CANONICAL_BASE_URLS = frozenset({"https://api.x.com", "https://api.twitter.com"})


TIERS: dict[str, dict[str, float]] = {
    # Defaults that stay below each tier's documented per-user limits (docs/x.md has the table).
    # mentions: GET /2/users/:id/mentions per 15 min; posts: POST /2/tweets per 24 h (per user)
    "free": {"poll_interval_s": 900.0, "posts_per_day": 17, "feed_poll_interval_s": 900.0},
    "basic": {"poll_interval_s": 90.0, "posts_per_day": 100, "feed_poll_interval_s": 300.0},
    "pro": {"poll_interval_s": 15.0, "posts_per_day": 2400, "feed_poll_interval_s": 60.0},
    "custom": {"poll_interval_s": 90.0, "posts_per_day": 100, "feed_poll_interval_s": 300.0},
}

TWEETS_PER_ANSWER = 3  # a draft: its text, its image, the choices
_LISTS = ("owner_accounts", "bot_accounts", "feed_accounts", "feed_lists", "feed_searches")


class XSettings(ChorusSettings):
    # credentials: OAuth 1.0a user context (posting, media) and an optional app-only bearer (reads)
    api_key: SecretStr | None = Field(default=None, alias="X_API_KEY")
    api_secret: SecretStr | None = Field(default=None, alias="X_API_SECRET")
    access_token: SecretStr | None = Field(default=None, alias="X_ACCESS_TOKEN")
    access_token_secret: SecretStr | None = Field(default=None, alias="X_ACCESS_TOKEN_SECRET")
    bearer_token: SecretStr | None = Field(default=None, alias="X_BEARER_TOKEN")
    api_base_url: str = Field(default=DEFAULT_BASE_URL, alias="X_API_BASE_URL")
    request_timeout_s: float = Field(default=30.0, gt=0, alias="X_REQUEST_TIMEOUT_S")

    # the tier and its limits (None: the tier's value)
    tier: Tier = Field(default="basic", alias="X_API_TIER")
    poll_interval_s: float | None = Field(default=None, gt=0, alias="X_POLL_INTERVAL_S")
    posts_per_day: int | None = Field(default=None, ge=1, alias="X_POSTS_PER_DAY")
    feed_poll_interval_s: float | None = Field(default=None, gt=0, alias="X_FEED_POLL_INTERVAL_S")

    # who moderates: the owner accounts (usernames or numeric ids)
    owner_accounts: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="X_OWNER_ACCOUNTS")

    # safety rails (0 turns a numeric rail off)
    replies_per_author_per_day: int = Field(default=5, ge=0, alias="X_REPLIES_PER_AUTHOR_PER_DAY")
    replies_per_day: int | None = Field(default=None, ge=0, alias="X_REPLIES_PER_DAY")
    max_conversation_depth: int = Field(default=4, ge=0, alias="X_MAX_CONVERSATION_DEPTH")
    max_mention_age_s: float = Field(default=6 * 3600.0, ge=0, alias="X_MAX_MENTION_AGE_S")
    bot_accounts: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="X_BOT_ACCOUNTS")
    allow_mentions: bool = Field(default=False, alias="X_ALLOW_MENTIONS")

    # publishing
    reply_settings: ReplySettings | None = Field(default=None, alias="X_REPLY_SETTINGS")
    media_simple_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1, alias="X_MEDIA_SIMPLE_MAX_BYTES")
    media_chunk_bytes: int = Field(default=1024 * 1024, ge=1, alias="X_MEDIA_CHUNK_BYTES")

    # feed sources
    feed_accounts: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="X_FEED_ACCOUNTS")
    feed_lists: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="X_FEED_LISTS")
    feed_searches: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="X_FEED_SEARCHES")
    feed_metrics_hours: float = Field(default=48.0, ge=0, alias="X_FEED_METRICS_HOURS")

    @field_validator(*_LISTS, mode="before")
    @classmethod
    def _list_from_env(cls, value: Any, info: ValidationInfo) -> Any:
        """A JSON list, or comma-separated (searches: ``;``-separated, since queries may hold commas)."""
        return env_list(value, ";" if info.field_name == "feed_searches" else ",")

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("X_API_BASE_URL must be an http(s) URL, e.g. https://api.x.com")
        return value

    # -- derived --------------------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return not self.missing()

    def missing(self) -> list[str]:
        needed = {
            "X_API_KEY": self.api_key,
            "X_API_SECRET": self.api_secret,
            "X_ACCESS_TOKEN": self.access_token,
            "X_ACCESS_TOKEN_SECRET": self.access_token_secret,
        }
        return [name for name, value in needed.items() if value is None or not value.get_secret_value()]

    @property
    def rewrite_base_url(self) -> str | None:
        """Where to send X traffic instead of X itself; None for X's own hosts (no rewriting)."""
        return None if self.api_base_url in CANONICAL_BASE_URLS else self.api_base_url

    @property
    def effective_poll_interval_s(self) -> float:
        return self.poll_interval_s or TIERS[self.tier]["poll_interval_s"]

    @property
    def effective_posts_per_day(self) -> int:
        return self.posts_per_day or int(TIERS[self.tier]["posts_per_day"])

    @property
    def effective_replies_per_day(self) -> int:
        """Answers per day; by default a third of the post budget (an answer is about three tweets)."""
        if self.replies_per_day is not None:
            return self.replies_per_day
        return max(1, self.effective_posts_per_day // TWEETS_PER_ANSWER)

    @property
    def effective_feed_poll_interval_s(self) -> float:
        return self.feed_poll_interval_s or TIERS[self.tier]["feed_poll_interval_s"]

    @property
    def has_feed_sources(self) -> bool:
        return bool(self.feed_accounts or self.feed_lists or self.feed_searches)

    def secret(self, name: str) -> str:
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None else ""


SETTINGS = XSettings


def permalink(community: str, channel: str, message_id: str) -> str:
    return f"https://x.com/i/web/status/{message_id}" if message_id.isdigit() else ""


FACTS = PlatformFacts(
    name="x",
    label="X",
    capabilities=Capabilities(
        max_text=280,
        max_caption=280,
        buttons=False,
        edits=False,
        threads=True,
        images=True,
        direct_messages=False,
        weighted_length=True,
    ),
    approval_by_default=True,  # a public timeline post: a moderator approves it unless the community says off
    permalink=permalink,
)
