"""Feed settings (``CHORUS_FEED_*``): retention, ranking, dedupe and digest knobs.

Kept apart from the root settings so the feed owns its configuration; the HTTP port is the root
``CHORUS_HTTP_PORT`` because ``chorus run`` serves it.
"""

from __future__ import annotations

from pydantic import Field

from core.settings import ChorusSettings


class FeedSettings(ChorusSettings):
    retention_days: float = Field(default=30.0, gt=0, alias="CHORUS_FEED_RETENTION_DAYS")
    hot_tau_hours: float = Field(default=6.0, gt=0, alias="CHORUS_FEED_HOT_TAU_HOURS")
    """Hot scores decay as exp(-age/tau): one unit of normalised engagement is worth ~tau of freshness."""
    dedupe_window_hours: float = Field(default=24.0, gt=0, alias="CHORUS_FEED_DEDUPE_WINDOW_HOURS")
    """Near-duplicates are looked for among stories from this far back (at least; up to twice as far)."""
    digest_stories: int = Field(default=5, ge=1, le=20, alias="CHORUS_FEED_DIGEST_STORIES")
    summary_chars: int = Field(default=220, ge=60, le=1000, alias="CHORUS_FEED_SUMMARY_CHARS")
    as_written_chars: int = Field(default=220, ge=0, le=1000, alias="CHORUS_FEED_AS_WRITTEN_CHARS")
    """A story whose text is at most this long (and fits its summary) is shown as written: a model would
    only reword it. 0 summarises every story."""
    summary_batch: int = Field(default=8, ge=1, le=32, alias="CHORUS_FEED_SUMMARY_BATCH")
    """Stories summarised by one model request (only stories the same people may read share one)."""
    summary_batch_wait_ms: float = Field(
        default=50.0, ge=0, le=1000, alias="CHORUS_FEED_SUMMARY_BATCH_WAIT_MS"
    )
    """A batch of summaries is sent once no text joined any batch for this long (a digest round's builds
    keep asking while they run), or when full, or after two seconds."""
    poll_interval_s: float = Field(default=60.0, gt=0, alias="CHORUS_FEED_POLL_INTERVAL_S")
    http_host: str = Field(default="127.0.0.1", alias="CHORUS_HTTP_HOST")
    base_url: str = Field(default="", alias="CHORUS_FEED_BASE_URL")
    """Public URL of the HTTP endpoint, for feed self-links; default http://<host>:<port>."""
    max_subscriptions_per_user: int = Field(default=10, ge=1, alias="CHORUS_FEED_MAX_SUBSCRIPTIONS")

    @property
    def retention_s(self) -> int:
        return int(self.retention_days * 86400)

    @property
    def tau_s(self) -> float:
        return self.hot_tau_hours * 3600

    @property
    def dedupe_window_s(self) -> int:
        return int(self.dedupe_window_hours * 3600)
