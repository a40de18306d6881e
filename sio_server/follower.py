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

from notify_core.history import RedisHistory, decode_entry
from notify_core.retry import Backoff
from notify_core.rooms import rooms_for

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any], list[str]], Awaitable[None]]


class LogFollower:
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
        self._cursors: dict[str, str] = {}
        self._refs: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self.running = False

    async def follow(self, tenant: str) -> None:
        self._refs[tenant] += 1
        if tenant not in self._cursors:
            self._cursors[tenant] = await self._history.last_id(tenant) or "0-0"

    def unfollow(self, tenant: str) -> None:
        self._refs[tenant] -= 1
        if self._refs[tenant] <= 0:
            del self._refs[tenant]
            self._cursors.pop(tenant, None)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="history-follower")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = Backoff("following the history", log)
        while True:
            self.running = True
            try:
                if not self._cursors:
                    await asyncio.sleep(self._block_ms / 1000)
                    continue
                keys = {self._history.stream_key(t): t for t in self._cursors}
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
                backoff.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.running = False
                await backoff.failed(exc)
