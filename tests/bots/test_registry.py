from __future__ import annotations

from bots import registry

permalink = registry.catalog().permalink


def test_permalinks_of_each_platform() -> None:
    """Each adapter declares its permalink rule; the catalog of every known platform serves them."""
    assert permalink("discord", "111", "222", "333") == "https://discord.com/channels/111/222/333"
    # the Telegram adapter names messages "<chat id>:<message id>" because ids repeat across chats
    assert permalink("telegram", "-1001234", "-1001234", "-1001234:42") == "https://t.me/c/1234/42"
    assert permalink("telegram", "-1001234", "-1001234", "42") == "https://t.me/c/1234/42"
    assert permalink("telegram", "-5678", "-5678", "-5678:42") == ""  # basic groups have no public links
    assert permalink("x", "100", "c", "1799") == "https://x.com/i/web/status/1799"
    assert permalink("console", "local", "console", "abc-1") == ""
