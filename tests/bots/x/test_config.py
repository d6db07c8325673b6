from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from bots import registry
from bots.x.config import XSettings

KEYS = {
    "X_API_KEY": "consumer-key-123456",
    "X_API_SECRET": "consumer-secret-123456",
    "X_ACCESS_TOKEN": "100-access-token-123456",
    "X_ACCESS_TOKEN_SECRET": "access-secret-123456",
}


def test_configured_needs_the_four_oauth1_secrets_and_says_which_are_missing() -> None:
    assert XSettings(**KEYS).configured
    partial = XSettings(X_API_KEY="k", X_ACCESS_TOKEN="t")
    assert not partial.configured
    assert partial.missing() == ["X_API_SECRET", "X_ACCESS_TOKEN_SECRET"]
    assert XSettings(**{**KEYS, "X_API_SECRET": ""}).missing() == ["X_API_SECRET"]


def test_describe_masks_every_secret() -> None:
    shown = XSettings(**KEYS, X_BEARER_TOKEN="bearer-token-abcdef").describe()
    text = "\n".join(f"{k}={v}" for k, v in shown.items())
    for secret in (*KEYS.values(), "bearer-token-abcdef"):
        assert secret not in text
    assert shown["X_API_BASE_URL"] == "https://api.x.com"


def test_tier_defaults_and_overrides() -> None:
    free = XSettings(X_API_TIER="free")
    assert (free.effective_poll_interval_s, free.effective_posts_per_day) == (900.0, 17)
    pro = XSettings(X_API_TIER="pro", X_POSTS_PER_DAY=50, X_POLL_INTERVAL_S=30)
    assert (pro.effective_poll_interval_s, pro.effective_posts_per_day) == (30.0, 50)
    assert XSettings().tier == "basic" and XSettings().effective_feed_poll_interval_s == 300.0
    assert (free.effective_replies_per_day, XSettings().effective_replies_per_day) == (5, 33)
    assert XSettings(X_REPLIES_PER_DAY=0).effective_replies_per_day == 0  # the rail off
    with pytest.raises(ValidationError):
        XSettings(X_API_TIER="enterprise-ish")


def test_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_OWNER_ACCOUNTS", "@Ada, 12345 ,")
    monkeypatch.setenv("X_FEED_SEARCHES", "chorus (launch OR release), -is:retweet; #chorus")
    monkeypatch.setenv("X_FEED_LISTS", '["42", "43"]')
    s = XSettings()
    assert s.owner_accounts == ["@Ada", "12345"]
    assert s.feed_searches == ["chorus (launch OR release), -is:retweet", "#chorus"]
    assert s.feed_lists == ["42", "43"] and s.has_feed_sources


def test_base_url_for_a_gateway_and_the_real_hosts() -> None:
    assert XSettings().rewrite_base_url is None  # X itself: tweepy's own hosts, no rewriting
    assert XSettings(X_API_BASE_URL="https://api.twitter.com/").rewrite_base_url is None
    gateway = XSettings(X_API_BASE_URL="https://gw.example.com/x/")
    assert gateway.rewrite_base_url == "https://gw.example.com/x"
    with pytest.raises(ValidationError, match="http"):
        XSettings(X_API_BASE_URL="gw.example.com")


def test_registry_finds_the_adapter_and_config_does_not_import_tweepy() -> None:
    assert registry.available("x") and isinstance(registry.settings_for("x"), XSettings)
    code = "import sys, bots.x.config; sys.exit(1 if 'tweepy' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
