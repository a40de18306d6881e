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

from notify_core.history.store import Dedupe, History
from notify_core.obs import metrics
from notify_core.obs.prometheus_adapter import observe_many
from notify_core.redis.write_behind import UNREACHABLE, WriteBehind
from notify_core.state.snapshots import SnapshotStore
from notify_core.wire.rooms import rooms_for

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any], list[str]], Awaitable[None]]


# while a part is stored, the loop turns its emits give (see `_emit_stored`)
EMITS_PER_TURN = 64
TURNS_PER_PART = 4
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
        """`publish` each item, in order, with one history round trip for all of them, or
        for each part of a long batch (the history's `store_part`).

        The events are stored first, then emitted in order, under the locks of every
        tenant in the batch (taken in sorted order, so two batches cannot deadlock). With
        parts, each part is emitted (and its KPI snapshots merged) while the next part is
        being stored: Redis' time and ours overlap instead of adding up. A part is sent
        only once the one before is stored, so ids still grow in emit order.
        """
        if not items:
            return []
        size = self._history.store_part or len(items)
        parts = [items[i : i + size] for i in range(0, len(items), size)]
        ids: list[str | None] = []
        async with contextlib.AsyncExitStack() as stack:
            for tenant in sorted({event["tenant_id"] for event, _, _ in items}):
                await stack.enter_async_context(self._lock(tenant))
            if len(parts) == 1:
                ids = await self._store_many([(event, key) for event, key, _ in items])
                await self._emit_stored(items, ids)
            else:
                await self._publish_parts(parts, ids)
        last = parts[-1]  # the parts before it were followed up while the next was stored
        await self._after_stored(last, ids[len(ids) - len(last) :])
        return ids

    async def _publish_parts(self, parts: list[list[Item]], ids: list[str | None]) -> None:
        """Store and emit `parts` in order, each stored while the one before is emitted;
        their ids are appended to `ids`; what follows the last part is the caller's."""

        def store(part: list[Item]) -> asyncio.Future[list[str | None]]:
            return asyncio.ensure_future(self._store_many([(e, key) for e, key, _ in part]))

        storing = store(parts[0])
        try:
            for n, part in enumerate(parts):
                part_ids = await storing
                ids.extend(part_ids)
                overlap = n + 1 < len(parts)
                if overlap:
                    storing = store(parts[n + 1])
                await self._emit_stored(part, part_ids, TURNS_PER_PART if overlap else 0)
                if overlap:
                    await self._after_stored(part, part_ids)
        finally:
            if not storing.done():  # cancelled, or emitting failed: stop what is in flight
                storing.cancel()
            elif not storing.cancelled():
                storing.exception()  # retrieved, so a failure here is not logged as lost

    async def _emit_stored(self, items: list[Item], ids: list[str | None], turns: int = 0) -> None:
        """Emit in id order. With `turns`, give the event loop that many turns, one every
        `EMITS_PER_TURN` emits: a part being stored meanwhile gets its request out to
        Redis (redis-py takes a few turns to send one). Not otherwise: each turn lets
        the Kafka consumer's thread take the GIL, which costs the memory engine ~10 %."""
        emitted = 0
        for (event, _, _), event_id in zip(items, ids, strict=True):
            if event_id is not None:
                await self._emit_one(event)
                emitted += 1
                if turns and emitted % EMITS_PER_TURN == 0:
                    turns -= 1
                    await asyncio.sleep(0)
        for _ in range(turns):  # a part with few events to emit
            await asyncio.sleep(0)

    async def _after_stored(self, items: list[Item], ids: list[str | None]) -> None:
        """Counters, latency and the KPI snapshots of stored (not duplicate) events."""
        self._account(items, ids)
        kpis = [
            event
            for (event, _, _), event_id in zip(items, ids, strict=True)
            if event_id is not None and event["type"] == "kpi_update"
        ]
        if kpis:
            await self._snapshot(kpis)

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
        observe_many(metrics.KAFKA_TO_EMIT, latencies)
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
