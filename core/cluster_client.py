"""redis-py's async cluster client, with two defects of redis-py 8.1 worked around.

1. Queuing a command in a transaction (``pipeline(transaction=True)``) finds its slot by starting a thread
   that runs a new event loop (``TransactionStrategy.execute_command``: "we have to run it in thread") and
   joins it: every queued command blocks the caller's event loop for a thread start and a loop's set-up,
   about a millisecond. A worker's transactions queue eight commands per Event, so on a cluster the process
   spent most of its time there (bench/cluster.py: 83 Events/s against 577 on one server). The slot of a
   command whose first argument is its key is computed here without the thread; anything else (WATCH,
   commands with movable keys) keeps redis-py's path.
2. While the client refreshes its view of the cluster (after a failover), another task can write on a
   connection that was just closed, and redis-py raises ``AttributeError: 'NoneType' object has no
   attribute 'writelines'``. It is a lost connection: raised as ConnectionError, the client's own retry
   (which refreshes the topology) handles it.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import AbstractStrategy, ClusterNode, ClusterPipeline, TransactionStrategy


class _QueuedTransaction(TransactionStrategy):
    """A transaction whose commands are queued without a thread when their key is their first argument."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        slot = self._slot(args)
        if slot is None:
            return super().execute_command(*args, **kwargs)
        self._pipeline_slots.add(slot)  # redis-py refuses a transaction over two slots when it runs
        return AbstractStrategy.execute_command(self, *args, **kwargs)

    def _slot(self, args: tuple[Any, ...]) -> int | None:
        if self._watching or len(args) < 2 or not isinstance(args[0], str):
            return None
        name = args[0].upper()
        if name in self.IMMEDIATE_EXECUTE_COMMANDS or name in self.NO_SLOTS_COMMANDS:
            return None
        client = self._pipe.cluster_client
        command: dict[str, Any] | None = client.commands_parser.commands.get(name.lower())  # type: ignore[assignment]
        if command is None or "movablekeys" in command["flags"] or command["first_key_pos"] != 1:
            return None
        return int(client.keyslot(args[1]))


class ClusterClient(aioredis.RedisCluster):
    """The cluster client every Chorus process uses for a ``redis+cluster://`` URL."""

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        pipe = super().pipeline(transaction, shard_hint)
        if transaction:
            pipe._execution_strategy = _QueuedTransaction(pipe)
        return pipe

    async def _execute_command(self, target_node: ClusterNode, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._execute_command(target_node, *args, **kwargs)
        except AttributeError as exc:
            raise redis.ConnectionError("connection closed during a cluster topology refresh") from exc
