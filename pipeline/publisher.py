"""The one publish path: store in the tenant history (which assigns the id), then emit.

At-least-once: `publish` returns only once the event is stored; a store failure is
retried with capped backoff for as long as it takes (the Kafka offset does not move
meanwhile), and a redelivered event is recognised by its dedupe key and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from notify_core import metrics
from notify_core.history import History
from notify_core.rooms import rooms_for
from notify_core.snapshots import SnapshotStore

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any], list[str]], Awaitable[None]]

_RETRYABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


class Publisher:
    def __init__(
        self,
        history: History,
        emit: Emit,
        max_backoff_s: float = 5.0,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self._history = history
        self._emit = emit
        self._max_backoff = max_backoff_s
        self._snapshots = snapshots
        self._locks: dict[str, asyncio.Lock] = {}

    async def publish(
        self,
        event: dict[str, Any],
        dedupe_key: str | None = None,
        source_ts_ms: int | None = None,
    ) -> str | None:
        """Store then emit `event`; returns its id, or None for a duplicate.

        Append and emit happen under a per-tenant lock: the agents of different topics
        run concurrently, and without it id 11 could be emitted before id 10.
        """
        lock = self._locks.get(event["tenant_id"])
        if lock is None:
            lock = self._locks[event["tenant_id"]] = asyncio.Lock()
        async with lock:
            event_id = await self._store(event, dedupe_key)
            if event_id is None:
                metrics.DUPLICATES.labels(event["type"]).inc()
                return None
            try:
                await self._emit(event, rooms_for(event))
            except Exception:
                # Stored is what counts: clients recover it from history.
                log.exception("emit of %s %s failed; it stays in history", event["type"], event_id)
        metrics.NOTIFICATIONS.labels(event["type"]).inc()
        if source_ts_ms:
            metrics.KAFKA_TO_EMIT.observe(max(0.0, time.time() - source_ts_ms / 1000.0))
        if self._snapshots is not None and event["type"] == "kpi_update":
            try:
                await self._snapshots.update(event)
            except Exception:
                log.exception("KPI snapshot update failed for %s", event_id)
        return event_id

    async def _store(self, event: dict[str, Any], dedupe_key: str | None) -> str | None:
        try:  # the common case, without building a retry loop per event
            return await self._history.append(event, dedupe_key)
        except _RETRYABLE as exc:
            log.warning("history append failed (%s); retrying with backoff", exc)
            metrics.STORE_RETRIES.inc()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_RETRYABLE),
            wait=wait_exponential_jitter(multiplier=0.1, max=self._max_backoff, jitter=0.1),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    metrics.STORE_RETRIES.inc()
                return await self._history.append(event, dedupe_key)
        return None  # pragma: no cover - AsyncRetrying either returns or raises
