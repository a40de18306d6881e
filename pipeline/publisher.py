"""The one publish path: store in the tenant history (which assigns the id), then emit.

At-least-once: `publish` returns only once the event is stored; a store failure is
retried with capped backoff for as long as it takes (the Kafka offset does not move
meanwhile), and a redelivered event is recognised by its dedupe key and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from notify_core import metrics
from notify_core.history import Dedupe, History
from notify_core.rooms import rooms_for
from notify_core.snapshots import SnapshotStore
from notify_core.write_behind import UNREACHABLE, WriteBehind

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any], list[str]], Awaitable[None]]


Item = tuple[dict[str, Any], Dedupe, int | None]  # event, dedupe, source ts (ms)


class Publisher:
    def __init__(
        self,
        history: History,
        emit: Emit,
        max_backoff_s: float = 5.0,
        snapshots: SnapshotStore | None = None,
        writes: WriteBehind | None = None,
    ) -> None:
        self._history = history
        self._writes = writes
        self._emit = emit
        self._max_backoff = max_backoff_s
        self._snapshots = snapshots
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, tenant: str) -> asyncio.Lock:
        lock = self._locks.get(tenant)
        if lock is None:
            lock = self._locks[tenant] = asyncio.Lock()
        return lock

    async def publish(
        self,
        event: dict[str, Any],
        dedupe_key: Dedupe = None,
        source_ts_ms: int | None = None,
    ) -> str | None:
        """Store then emit `event`; returns its id, or None for a duplicate.

        Append and emit happen under a per-tenant lock: the agents of different topics
        run concurrently, and without it id 11 could be emitted before id 10.
        """
        return (await self.publish_many([(event, dedupe_key, source_ts_ms)]))[0]

    async def publish_many(self, items: list[Item]) -> list[str | None]:
        """`publish` each item, in order, with one history round trip for all of them.

        The events are stored first, then emitted in order, under the locks of every
        tenant in the batch (taken in sorted order, so two batches cannot deadlock).
        """
        if not items:
            return []
        async with contextlib.AsyncExitStack() as stack:
            for tenant in sorted({event["tenant_id"] for event, _, _ in items}):
                await stack.enter_async_context(self._lock(tenant))
            ids = await self._store_many([(event, key) for event, key, _ in items])
            for (event, _, _), event_id in zip(items, ids, strict=True):
                if event_id is not None:
                    await self._emit_one(event)
        self._account(items, ids)
        kpis = [
            event
            for (event, _, _), event_id in zip(items, ids, strict=True)
            if event_id is not None and event["type"] == "kpi_update"
        ]
        if kpis:
            await self._snapshot(kpis)
        return ids

    async def _emit_one(self, event: dict[str, Any]) -> None:
        try:
            await self._emit(event, rooms_for(event))
        except Exception:
            # Stored is what counts: clients recover it from history.
            log.exception("emit of %s %s failed; it stays in history", event["type"], event["id"])

    @staticmethod
    def _account(items: list[Item], ids: list[str | None]) -> None:
        """Counters per type (one increment per batch) and the Kafka-to-emit latency."""
        stored: dict[str, int] = {}
        dupes: dict[str, int] = {}
        now = time.time()
        latencies: list[float] = []
        for (event, _, ts_ms), event_id in zip(items, ids, strict=True):
            kind = event["type"]
            if event_id is None:
                dupes[kind] = dupes.get(kind, 0) + 1
                continue
            stored[kind] = stored.get(kind, 0) + 1
            if ts_ms:
                latencies.append(max(0.0, now - ts_ms / 1000.0))
        metrics.observe_many(metrics.KAFKA_TO_EMIT, latencies)
        for kind, n in stored.items():
            metrics.NOTIFICATIONS.labels(kind).inc(n)
        for kind, n in dupes.items():
            metrics.DUPLICATES.labels(kind).inc(n)

    async def _snapshot(self, kpi_updates: list[dict[str, Any]]) -> None:
        if self._snapshots is None:
            return
        try:
            await self._snapshots.update_many(kpi_updates)
        except Exception:
            log.exception("KPI snapshot update failed for %s", kpi_updates[-1]["id"])

    async def _store_many(self, items: list[tuple[dict[str, Any], Dedupe]]) -> list[str | None]:
        """Append with capped backoff for as long as it takes (the offsets wait). State
        writes queued before (an incident's hash) are sent first: no client hears of a
        state that is not stored yet."""
        try:  # the common case, without building a retry loop per call
            return await self._append_many(items)
        except UNREACHABLE as exc:
            log.warning("history append failed (%s); retrying with backoff", exc)
            metrics.STORE_RETRIES.inc()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(UNREACHABLE),
            wait=wait_exponential_jitter(multiplier=0.1, max=self._max_backoff, jitter=0.1),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    metrics.STORE_RETRIES.inc()
                return await self._append_many(items)
        return []  # pragma: no cover - AsyncRetrying either returns or raises

    async def _append_many(self, items: list[tuple[dict[str, Any], Dedupe]]) -> list[str | None]:
        if self._writes is not None and self._writes.queued:
            await self._writes.flush()
        return await self._history.append_many(items)
