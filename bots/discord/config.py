"""Discord adapter settings. Importing this module must not import discord.py (``chorus config check``).

The API and gateway URLs default to Discord's own; operators point them at a REST proxy (e.g. a shared
rate-limit proxy) or a gateway proxy, and the tests point them at the loopback fake.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from core.catalog import PlatformFacts
from core.contract import Capabilities
from core.settings import ChorusSettings, env_list

DEFAULT_API_BASE_URL = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"
DEFAULT_EPHEMERAL = ("help", "quota", "stats", "subscriptions", "optout", "optin", "prompt", "feed")


class DiscordSettings(ChorusSettings):
    token: SecretStr | None = Field(default=None, alias="DISCORD_BOT_TOKEN")
    api_base_url: str = Field(default=DEFAULT_API_BASE_URL, alias="DISCORD_API_BASE_URL")
    gateway_url: str = Field(default=DEFAULT_GATEWAY_URL, alias="DISCORD_GATEWAY_URL")
    # Slash commands: synced at start-up to these guilds (instant), or globally when empty.
    guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list, alias="DISCORD_GUILD_IDS")
    sync_commands: bool = Field(default=True, alias="DISCORD_SYNC_COMMANDS")
    # Moderators: Manage Server permission, or one of these roles (ids or names, case-insensitive).
    moderator_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="DISCORD_MODERATOR_ROLES"
    )
    # The privileged Message Content intent: needed for the feed; without it mentions and commands still work.
    message_content: bool = Field(default=True, alias="DISCORD_MESSAGE_CONTENT")
    # Commands whose answers only the person who ran them sees.
    ephemeral_commands: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_EPHEMERAL), alias="DISCORD_EPHEMERAL_COMMANDS"
    )
    # discord.py waits out 429s itself; one asking to wait longer than this (at least 30 s, discord.py's
    # minimum) is handed back to the core's Sender, which waits and retries the same Action.
    max_ratelimit_wait_s: float = Field(default=60.0, ge=30, alias="DISCORD_MAX_RATELIMIT_WAIT_S")
    # drafts shown while written: a placeholder message edited about once a second
    live_drafts: bool = Field(default=True, alias="DISCORD_LIVE_DRAFTS")

    @field_validator("guild_ids", "moderator_roles", "ephemeral_commands", mode="before")
    @classmethod
    def _list_from_env(cls, value: Any) -> Any:
        """Comma-separated (``123,456``) or a JSON list."""
        return env_list(value)

    @property
    def configured(self) -> bool:
        return self.token is not None and bool(self.token.get_secret_value().strip())

    def missing(self) -> list[str]:
        return [] if self.configured else ["DISCORD_BOT_TOKEN"]


SETTINGS = DiscordSettings


def permalink(community: str, channel: str, message_id: str) -> str:
    """Guild messages have links; DMs (no guild id) do not."""
    if community.isdigit() and channel.isdigit():
        return f"https://discord.com/channels/{community}/{channel}/{message_id}"
    return ""


FACTS = PlatformFacts(
    name="discord",
    label="Discord",
    capabilities=Capabilities(
        max_text=2000,
        max_caption=2000,
        buttons=True,
        edits=True,
        threads=False,  # a multi-part post is sent as consecutive messages
        images=True,
        direct_messages=True,
        live_drafts=True,  # a placeholder edited while the draft is written (PATCH stays under ~1/s)
        live_interval_s=1.0,
        live_private_interval_s=1.0,
    ),
    permalink=permalink,
    roles=True,  # bots/discord/roles.py re-checks a web session's moderator right
)
