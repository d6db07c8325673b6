from __future__ import annotations

import pytest

from core.settings import Settings, env_list


@pytest.mark.parametrize(
    ("raw", "sep", "expected"),
    [
        ("a, b,,c ", ",", ["a", "b", "c"]),
        ('["x, y", "z"]', ",", ["x, y", "z"]),
        ("from:a, b; #c", ";", ["from:a, b", "#c"]),
        (r"  \d{3},\d{2}  ", None, [r"\d{3},\d{2}"]),
        ("   ", None, []),
        ("", ",", []),
        (["kept"], ",", ["kept"]),
    ],
)
def test_env_list(raw: object, sep: str | None, expected: object) -> None:
    assert env_list(raw, sep) == expected


def test_blocklists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_BLOCKLIST_WORDS", "spam, scam")
    monkeypatch.setenv("CHORUS_BLOCKLIST_PATTERNS", r"buy\s+now,?")
    settings = Settings()
    assert settings.blocklist_words == ["spam", "scam"]
    assert settings.blocklist_patterns == [r"buy\s+now,?"]
