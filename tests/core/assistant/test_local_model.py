"""The bundled SmolLM2 served by a real llama_cpp.server child process, driven through ChatOpenAI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from core.assistant.local_model import LocalModelServer, bundled_model_path
from core.assistant.models import ModelRuntime
from core.errors import ProviderUnavailable
from core.settings import Settings

PROMPT = [
    SystemMessage("You write short, friendly social media posts. Plain text only."),
    HumanMessage("Write a short post about the launch of our community app."),
]


def _gone(pid: int) -> bool:
    """Exited (or a zombie waiting to be reaped: it no longer runs)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state or "\nState:\tX" in state


async def test_bundled_model_starts_on_demand_answers_and_stops(tmp_path: Path) -> None:
    runtime = ModelRuntime(Settings(CHORUS_DATA_DIR=tmp_path))
    assert runtime.local and runtime.server is not None
    assert runtime.server.process is None  # nothing starts before it is needed
    try:
        began = time.monotonic()
        models = await asyncio.gather(*(runtime.chat_model() for _ in range(4)))  # concurrent first use
        started = time.monotonic() - began
        assert runtime.server.starts == 1, "concurrent first calls must start one server, not several"
        model = models[0]
        proc = runtime.server.process
        assert proc is not None and proc.poll() is None
        began = time.monotonic()
        answer = await model.bind(max_tokens=80).ainvoke(PROMPT)
        answered = time.monotonic() - began
        text = str(answer.content).strip()
        assert text, "the bundled model answered with nothing"
        assert answer.usage_metadata is not None and 0 < answer.usage_metadata["output_tokens"] <= 80
        assert await runtime.chat_model() is model  # still running: reused, not restarted
        assert runtime.server.process is proc
        print(
            f"\nlocal model: server start {started:.2f}s, "
            f"{answer.usage_metadata['output_tokens']} tokens in {answered:.2f}s\n{text[:300]}"
        )
    finally:
        await runtime.aclose()
    assert proc.poll() is not None, "aclose() left the llama_cpp.server child running"
    assert not runtime.server.running


async def test_a_dead_server_is_restarted_on_next_use(tmp_path: Path) -> None:
    runtime = ModelRuntime(Settings(CHORUS_DATA_DIR=tmp_path))
    assert runtime.server is not None
    try:
        await runtime.chat_model()
        first = runtime.server.process
        assert first is not None
        first.kill()
        first.wait(5)
        model = await runtime.chat_model()
        second = runtime.server.process
        assert second is not None and second.pid != first.pid and second.poll() is None
        answer = await model.bind(max_tokens=8).ainvoke([HumanMessage("Say hello.")])
        assert str(answer.content).strip()
    finally:
        await runtime.aclose()


async def test_the_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """A worker killed with SIGKILL cannot clean up; the launcher's parent watch ends the server anyway."""
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from pathlib import Path
        from core.assistant.local_model import LocalModelServer
        async def main():
            server = LocalModelServer(Path({str(bundled_model_path())!r}))
            await server.ensure_running()
            print(server.process.pid, flush=True)
            os._exit(0)  # no cleanup, no atexit: as if killed
        asyncio.run(main())
        """
    )
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if not _gone(pid):
        os.kill(pid, 9)
        pytest.fail("the local model server outlived its parent")


async def test_missing_model_file_is_a_clear_provider_error(tmp_path: Path) -> None:
    runtime = ModelRuntime(Settings(CHORUS_DATA_DIR=tmp_path, CHORUS_LOCAL_MODEL_PATH=tmp_path / "none.gguf"))
    with pytest.raises(ProviderUnavailable, match="model file not found"):
        await runtime.chat_model()
    await runtime.aclose()


async def test_a_server_that_cannot_start_reports_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"this is not a GGUF file")
    server = LocalModelServer(broken, start_timeout_s=30, log_path=tmp_path / "local-model.log")
    with pytest.raises(ProviderUnavailable, match="exited during start") as caught:
        await server.ensure_running()
    assert "local-model.log" in str(caught.value)
    assert server.process is None and not server.running
