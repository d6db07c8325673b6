"""Console adapter settings: always available, needs no account."""

from __future__ import annotations

from pydantic import Field

from core.catalog import PlatformFacts
from core.contract import Capabilities
from core.settings import ChorusSettings


class ConsoleSettings(ChorusSettings):
    community: str = Field(default="local", alias="CHORUS_CONSOLE_COMMUNITY")
    user: str = Field(default="you", alias="CHORUS_CONSOLE_USER")
    settle_timeout_s: float = Field(default=300.0, alias="CHORUS_CONSOLE_TIMEOUT_S")

    @property
    def configured(self) -> bool:
        return True

    def missing(self) -> list[str]:
        return []


SETTINGS = ConsoleSettings

FACTS = PlatformFacts(
    name="console",
    label="Console",
    capabilities=Capabilities(
        max_text=4000,
        max_caption=1024,
        buttons=False,
        edits=False,
        threads=False,
        live_drafts=True,  # printed as it comes (interactive sessions)
        live_interval_s=0.1,
        live_private_interval_s=0.1,
    ),
)
