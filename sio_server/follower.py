"""Fan-out from the history itself: each server process follows the Redis stream of
every tenant it has connections for, and emits each entry to its local rooms in
stream order.

Pipelines only append. So however many pipeline processes append for one tenant, a
client sees ids strictly increasing, and live delivery and recovery read the same log.
A tenant is followed from the moment its first local connection arrives (before that
connection's recovery starts, so replay and live overlap and the delivery gate drops
the overlap), and forgotten when its last one leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from notify_core.history.store import RedisHistory, decode_entry
from notify_core.redis.scripts import is_cluster
from notify_core.retry import Backoff
from notify_core.wire.rooms import rooms_for

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any], list[str]], Awaitable[None]]


class LogFollower:
    """One reader per slot group: on a single Redis one XREAD follows every tenant; on a
    Redis Cluster one XREAD may only name keys of one slot, so each tenant followed has
    its own reader (a blocked connection to its node)."""

    def __init__(
        self,
        redis: Redis,
        history: RedisHistory,
        emit: Emit,
        block_ms: int = 200,
        batch: int = 1000,
    ) -> None:
        self._redis = redis
        self._history = history
        self._emit = emit
        self._block_ms = block_ms
        self._batch = batch
        self._per_tenant = is_cluster(redis)
        self._cursors: dict[str, str] = {}
        self._refs: Counter[str] = Counter()
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._failing: set[str] = set()

    @property
    def running(self) -> bool:
        """Started, and no reader is failing now (readiness)."""
        return self._started and not self._failing

    def _group(self, tenant: str) -> str:
        return tenant if self._per_tenant else ""

    async def follow(self, tenant: str) -> None:
        self._refs[tenant] += 1
        if tenant not in self._cursors:
            self._cursors[tenant] = await self._history.last_id(tenant) or "0-0"
            if self._started:
                self._ensure_reader(self._group(tenant))

    def unfollow(self, tenant: str) -> None:
        self._refs[tenant] -= 1
        if self._refs[tenant] <= 0:
            del self._refs[tenant]
            self._cursors.pop(tenant, None)
            group = self._group(tenant)
            if self._per_tenant and group in self._readers:
                self._readers.pop(group).cancel()
                self._failing.discard(group)

    def _ensure_reader(self, group: str) -> None:
        if group not in self._readers:
            name = f"history-follower {group}".rstrip()
            self._readers[group] = asyncio.create_task(self._run(group), name=name)

    async def start(self) -> None:
        self._started = True
        if not self._per_tenant:
            self._ensure_reader("")
        for tenant in list(self._cursors):
            self._ensure_reader(self._group(tenant))

    async def stop(self) -> None:
        self._started = False
        readers, self._readers = list(self._readers.values()), {}
        for task in readers:
            task.cancel()
        for task in readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _tenants(self, group: str) -> list[str]:
        return [group] if self._per_tenant else list(self._cursors)

    async def _run(self, group: str) -> None:
        backoff = Backoff("following the history", log)
        while True:
            try:
                tenants = [t for t in self._tenants(group) if t in self._cursors]
                if not tenants:
                    await asyncio.sleep(self._block_ms / 1000)
                    continue
                keys = {self._history.stream_key(t): t for t in tenants}
                streams: dict[Any, Any] = {k: self._cursors[t] for k, t in keys.items()}
                reply: Any = await self._redis.xread(
                    streams, count=self._batch, block=self._block_ms
                )
                for raw_key, entries in reply or []:
                    key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                    tenant = keys[key]
                    for entry_id, fields in entries:
                        event = decode_entry(entry_id, fields)
                        if tenant in self._cursors:
                            self._cursors[tenant] = event["id"]
                            await self._emit(event, rooms_for(event))
                self._failing.discard(group)
                backoff.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failing.add(group)
                await backoff.failed(exc)
