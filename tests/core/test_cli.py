"""The ``chorus`` command as a newcomer runs it: a real process, embedded Redis, piped stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("chorus")
CHORUS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "core.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], tmp_path: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CHORUS_", "OPENAI_", "TELEGRAM_"))}
    environ.update({"CHORUS_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), **env})
    return subprocess.run(
        CHORUS + args, input=stdin, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=environ
    )


def test_piped_console_session_gets_answers_through_the_bus(tmp_path: Path) -> None:
    out = _run(["run"], tmp_path, stdin="@chorus hello\n/help\n/nonsense\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout
    assert "[#1] chorus>" in lines  # the mention was answered
    assert "/help" in lines and "Mention me" in lines
    assert "I don't know the command “nonsense”" in lines
    assert "Traceback" not in out.stdout + out.stderr
    # the events went through the real streams of the embedded server, whose AOF is on disk
    assert list((tmp_path / "data" / "redis").glob("appendonly*"))
    assert "started embedded redis" in out.stderr and "embedded redis stopped" in out.stderr


def test_moderator_flag_unlocks_moderator_help(tmp_path: Path) -> None:
    member = _run(["run"], tmp_path, stdin="/help\n")
    moderator = _run(["run", "--moderator"], tmp_path, stdin="/help\n")
    assert "/stats" not in member.stdout and "/stats" in moderator.stdout


def test_config_check_masks_secrets_and_lists_platforms(tmp_path: Path) -> None:
    secret = "sk-test-" + "a1b2c3d4" * 4
    out = _run(
        ["config", "check"],
        tmp_path,
        OPENAI_API_KEY=secret,
        CHORUS_REDIS_URL="redis://:hunter2pass@db:6379/0",
    )
    assert out.returncode == 0, out.stderr
    assert secret not in out.stdout and "hunter2pass" not in out.stdout
    assert "OPENAI_API_KEY = ****" in out.stdout
    assert "Platforms:" in out.stdout and "telegram" in out.stdout and "console" in out.stdout


def test_invalid_setting_is_one_clear_line(tmp_path: Path) -> None:
    out = _run(["run"], tmp_path, CHORUS_WORKER_CONCURRENCY="lots")
    assert out.returncode == 2
    assert "CHORUS_WORKER_CONCURRENCY" in out.stderr and "Traceback" not in out.stderr


def test_unconfigured_platform_says_what_is_missing(tmp_path: Path) -> None:
    out = _run(["run", "--platform", "telegram"], tmp_path)
    assert out.returncode == 2
    assert "telegram" in out.stderr and "Traceback" not in out.stderr
