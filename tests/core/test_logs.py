from __future__ import annotations

import json
import logging

import pytest

from core import logs


@pytest.fixture
def restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_known_and_token_shaped_secrets_are_masked(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    logs.setup("INFO", "text", secrets=["my-own-password-123"])
    log = logging.getLogger("chorus.test")
    log.info("connecting with %s", "my-own-password-123")
    log.info("telegram url https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe")
    log.info("openai key sk-proj-abcdefghijklmnop1234")
    try:
        raise RuntimeError("token sk-abcdefghijklmnopqrstuvwx leaked in an exception")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert "my-own-password-123" not in err
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in err
    assert "sk-proj-abcdefghijklmnop1234" not in err and "sk-abcdefghijklmnopqrstuvwx" not in err
    assert err.count("****") >= 4 and "RuntimeError" in err


def test_json_lines(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    logs.setup("INFO", "json", secrets=["s3cr3t-value"])
    logging.getLogger("chorus.test").warning("value=%s", "s3cr3t-value")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["level"] == "warning" and record["message"] == "value=****"


def test_outage_says_one_warning_then_summaries_then_back(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    outage = logs.Outage(logging.getLogger("t.outage"), "Redis", every_s=60)
    with caplog.at_level(logging.INFO, logger="t.outage"):
        for _ in range(150):  # a retry every second for 150 s
            outage.failed(ConnectionError("Connection refused\nmore detail"))
            now[0] += 1
        outage.recovered()
        outage.recovered()  # nothing more to say
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "Redis unavailable (ConnectionError: Connection refused); waiting for it",
        "Redis still unavailable after 60s (61 failed attempts; last: ConnectionError: Connection refused)",
        "Redis still unavailable after 120s (121 failed attempts; last: ConnectionError: Connection refused)",
        "Redis is back after 150.0s (150 failed attempts)",
    ]
    assert all(r.exc_info is None for r in caplog.records)  # no tracebacks
