"""The ``chorus`` command as a newcomer runs it: a real process, embedded Redis, piped stdin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from core import keys
from core.redis_server import EmbeddedRedis

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
    assert "12 bus partitions" in out.stdout and "Feed: 12 partitions" in out.stdout


def test_invalid_setting_is_one_clear_line(tmp_path: Path) -> None:
    out = _run(["run"], tmp_path, CHORUS_WORKER_CONCURRENCY="lots")
    assert out.returncode == 2
    assert "CHORUS_WORKER_CONCURRENCY" in out.stderr and "Traceback" not in out.stderr


def test_unconfigured_platform_says_what_is_missing(tmp_path: Path) -> None:
    out = _run(["run", "--platform", "telegram"], tmp_path)
    assert out.returncode == 2
    assert "telegram" in out.stderr and "Traceback" not in out.stderr


def test_worker_started_before_redis_waits_for_it(tmp_path: Path) -> None:
    """``chorus worker`` with the operator's Redis down says so once, waits, then works when it answers."""
    server = EmbeddedRedis(tmp_path / "later")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CHORUS_", "OPENAI_", "TELEGRAM_"))}
    environ.update(CHORUS_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT), CHORUS_REDIS_URL=server.url)
    environ["CHORUS_WORKER_METRICS_PORT"] = "0"  # no fixed port in tests
    proc = subprocess.Popen([*CHORUS, "worker"], stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=environ)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the first log line
        assert "Redis (CHORUS_REDIS_URL) unavailable" in first and "starting once it answers" in first
        time.sleep(2.0)
        assert proc.poll() is None  # still waiting, not exited
        server.ensure_running()
        with redis.Redis(unix_socket_path=str(server.socket)) as r:
            deadline = time.monotonic() + 60
            # the worker reads the stream
            while not any(_s(g["name"]) == keys.WORKERS_GROUP for g in _groups(r)):
                assert time.monotonic() < deadline, "the worker never started reading"
                assert proc.poll() is None
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        rest = proc.stderr.read()
        assert "is back after" in rest and "Traceback" not in first + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        server.release()


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _groups(r: redis.Redis) -> list[dict[str, Any]]:
    try:
        return r.xinfo_groups(keys.events(keys.layout(keys.DEFAULT_PARTITIONS)[0]))  # type: ignore[no-any-return]
    except redis.ResponseError:  # no stream yet
        return []
