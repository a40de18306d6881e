"""Writes that Kafka offsets wait for, confirmed by Redis replicas (`NOTIFY_REDIS_MIN_REPLICAS`).

Redis replicates asynchronously: a master can answer a write, the pipeline can commit the
Kafka offsets of the batch that caused it, and a failover to a replica that had not yet
received it loses it with no error anywhere. `WAIT n timeout` blocks until `n` replicas
acknowledged every write *of the calling connection*; a batch's writes go over many pooled
connections, so `confirm()` writes a marker on one connection after all of them were
answered and WAITs there: a master's replication stream is one ordered log, so a replica
that acknowledged the marker holds everything written before it.

On a Redis Cluster each shard replicates on its own: the marker is written and waited for
on every primary (a key tagged for one of its slots).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.cluster import key_slot

from notify_core.obs import metrics
from notify_core.redis.factory import on_one_connection
from notify_core.redis.keys import RedisKeys

log = logging.getLogger(__name__)


class ReplicasBehind(ConnectionError):
    """Fewer replicas than required acknowledged in time: nothing is committed, the
    batch is written again (a ConnectionError, so the pipeline's retry takes it)."""


class ReplicaConfirm:
    """`await confirm()` after a batch's writes and before its offsets are committed."""

    def __init__(self, redis: Redis, prefix: str, replicas: int, timeout_ms: int) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._key = self._keys.replication_marker()
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.confirmed = True  # the last confirmation succeeded (readiness)
        self._node_keys: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return self.replicas > 0

    async def confirm(self) -> None:
        """Raises ReplicasBehind when fewer than `replicas` acknowledged in time."""
        if not self.enabled:
            return
        start = time.perf_counter()
        if isinstance(self._redis, RedisCluster):
            acked = await self._confirm_cluster(self._redis)
        else:
            acked = await self._confirm_on(self._redis, self._key)
        metrics.REPLICA_WAIT_SECONDS.observe(time.perf_counter() - start)
        if acked < self.replicas:
            self.confirmed = False
            metrics.REPLICA_CONFIRMATIONS.labels("timeout").inc()
            raise ReplicasBehind(
                f"{acked} of {self.replicas} Redis replica(s) acknowledged within"
                f" {self.timeout_ms} ms (NOTIFY_REDIS_MIN_REPLICAS); the batch is written again"
            )
        self.confirmed = True
        metrics.REPLICA_CONFIRMATIONS.labels("ok").inc()

    async def _confirm_on(self, client: Any, key: str) -> int:
        """INCR then WAIT on one connection."""
        _, acked = await on_one_connection(
            client, ("INCR", key), ("WAIT", self.replicas, self.timeout_ms)
        )
        return int(acked)

    async def _confirm_cluster(self, cluster: RedisCluster) -> int:
        """The least of the primaries' acknowledgements (each shard waits on its own)."""
        least: int | None = None
        for node in cluster.get_primaries():
            key = self._node_keys.get(node.name) or self._key_on(cluster, node)
            acked = await self._confirm_on(node, key)
            least = acked if least is None else min(least, acked)
        return least or 0

    def _key_on(self, cluster: RedisCluster, node: Any) -> str:
        """A marker key whose slot this primary serves."""
        for shard in range(100_000):
            key = self._keys.replication_marker(shard)
            owner = cluster.nodes_manager.get_node_from_slot(key_slot(key.encode()))
            if owner is not None and owner.name == node.name:
                self._node_keys[node.name] = key
                return key
        raise RuntimeError(f"no marker key found for Redis node {node.name}")
