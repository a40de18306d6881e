"""The response report's long memory: one compact record per resolved incident, kept a
year and more, so a report over a year of 100 000 incidents reads records, not incidents
and timelines (the incident store keeps a tenant's newest resolved ones for 30 days).

The pipeline's listener marks an incident when it is resolved (`ArchivingListener`, on
every resolve path: actions, KPI rules, heartbeats); the `Archiver` loop turns marks into
records a little later, from the incident's state and timeline as stored then (a resolve's
writes may still be in flight when it is told). Marks are durable in Redis and taken by
one process at a time (ZPOPMIN), so a process killed between the two loses nothing: a
record is idempotent (the incident id is its key) and a claimed mark that failed is put
back. `collect` (notify_core/reports/summary.py) reads the records of a span, and the live store
for what is open or newer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import astuple
from typing import Any, NamedTuple, Protocol

import orjson
from redis.asyncio import Redis

from notify_core.lifecycle import Background
from notify_core.redis.keys import RedisKeys
from notify_core.reports.summary import TIMELINE_READS, Handled, handled_from

log = logging.getLogger(__name__)

KEEP_MS = 400 * 86_400_000  # a year of reports, and a month of margin
CLAIM = 500  # marks turned into records per round
SETTLE_S = 120.0  # a marked incident not resolved in the store yet: its writes in flight


class Mark(NamedTuple):
    tenant: str
    incident_id: str
    at: float  # unix s, when it was resolved


class ArchiveStore(Protocol):
    async def mark(self, tenant: str, incident_id: str, at: float | None = None) -> None:
        """This incident was resolved (at `at`, default now): record it soon."""

    async def claim(self, count: int) -> list[Mark]:
        """Up to `count` marks, taken off so no other process records them too."""

    async def put(self, tenant: str, records: list[Handled], now_ms: int) -> None:
        """Store records (replacing an incident's earlier one); drop those past KEEP_MS."""

    async def span(self, tenant: str, start_ms: int, end_ms: int) -> list[Handled]:
        """The records of incidents opened in [start_ms, end_ms)."""


class MemoryArchive:
    """The embedded mode's archive (and the tests')."""

    def __init__(self) -> None:
        self._marks: dict[tuple[str, str], float] = {}
        self._records: dict[str, dict[str, Handled]] = {}

    async def mark(self, tenant: str, incident_id: str, at: float | None = None) -> None:
        self._marks[(tenant, incident_id)] = time.time() if at is None else at

    async def claim(self, count: int) -> list[Mark]:
        taken = [Mark(t, i, at) for (t, i), at in list(self._marks.items())[:count]]
        for m in taken:
            del self._marks[(m.tenant, m.incident_id)]
        return taken

    async def put(self, tenant: str, records: list[Handled], now_ms: int) -> None:
        mine = self._records.setdefault(tenant, {})
        for r in records:
            mine[r.incident_id] = r
        for ident in [i for i, r in mine.items() if r.opened_ms < now_ms - KEEP_MS]:
            del mine[ident]

    async def span(self, tenant: str, start_ms: int, end_ms: int) -> list[Handled]:
        return [
            r for r in self._records.get(tenant, {}).values() if start_ms <= r.opened_ms < end_ms
        ]


class RedisArchive:
    """Per tenant, in its slot: an index by opened time and a hash of records by incident
    id; the marks in one shared set (scored by when they were made)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._marks = self._keys.shared("report-marks")

    def _index(self, tenant: str) -> str:
        return self._keys.tenant("report-index", tenant)

    def _records(self, tenant: str) -> str:
        return self._keys.tenant("report-records", tenant)

    async def mark(self, tenant: str, incident_id: str, at: float | None = None) -> None:
        when = time.time() if at is None else at
        await self._redis.zadd(self._marks, {f"{tenant}\x00{incident_id}": when})

    async def claim(self, count: int) -> list[Mark]:
        taken: Any = await self._redis.zpopmin(self._marks, count)
        out = []
        for member, score in taken:
            text = member.decode() if isinstance(member, bytes) else member
            tenant, _, incident_id = text.partition("\x00")
            out.append(Mark(tenant, incident_id, float(score)))
        return out

    async def put(self, tenant: str, records: list[Handled], now_ms: int) -> None:
        if not records:
            return
        index, hashed = self._index(tenant), self._records(tenant)
        pipe = self._redis.pipeline(transaction=False)  # one slot: the tenant's
        pipe.zadd(index, {r.incident_id: r.opened_ms for r in records})
        # each record a JSON array in Handled's field order: a year reads 100 000 of them
        pipe.hset(hashed, mapping={r.incident_id: orjson.dumps(astuple(r)) for r in records})
        pipe.zrangebyscore(index, "-inf", now_ms - KEEP_MS)
        *_, old = await pipe.execute()
        if old:
            await self._redis.zrem(index, *old)
            await self._redis.hdel(hashed, *old)

    async def span(self, tenant: str, start_ms: int, end_ms: int) -> list[Handled]:
        ids: Any = await self._redis.zrangebyscore(self._index(tenant), start_ms, f"({end_ms}")
        out: list[Handled] = []
        hashed = self._records(tenant)
        for chunk in range(0, len(ids), 5000):
            raws: Any = await self._redis.hmget(hashed, ids[chunk : chunk + 5000])
            out += [Handled(*orjson.loads(raw)) for raw in raws if raw is not None]
        return out


class Archiver:
    """Turns marks into records every `every_s` (and at stop, what is marked then)."""

    def __init__(
        self,
        archive: ArchiveStore,
        incidents: Any,
        timeline: Any,
        region_of: Callable[[str, str | None], str | None],
        every_s: float = 5.0,
    ) -> None:
        self.archive = archive
        self._incidents = incidents
        self._timeline = timeline
        self._region_of = region_of
        self._background = Background.every(
            "report archiving",
            every_s,
            self._drain,
            wait_first=True,
            failed="failed; the marks are kept for the next round",
        )

    async def start(self) -> None:
        await self._background.start()

    async def stop(self) -> None:
        await self._background.stop()
        with contextlib.suppress(Exception):
            await self.round()

    async def _drain(self) -> None:
        while await self.round() == CLAIM:
            pass  # a backlog: keep going

    async def round(self) -> int:
        """Record what is marked; returns how many marks were taken."""
        taken = await self.archive.claim(CLAIM)
        if not taken:
            return 0
        try:
            await self._record(taken)
        except BaseException:
            for m in taken:  # not lost: the next round tries again
                await self.archive.mark(m.tenant, m.incident_id, m.at)
            raise
        return len(taken)

    async def _record(self, taken: list[Mark]) -> None:
        states = await self._incidents.get_many([(m.tenant, m.incident_id) for m in taken])
        by_tenant: dict[str, list[Handled]] = {}
        now = time.time()
        for chunk in range(0, len(taken), TIMELINE_READS):
            part = taken[chunk : chunk + TIMELINE_READS]
            lines = await asyncio.gather(
                *(self._timeline.get(m.tenant, m.incident_id) for m in part)
            )
            for (tenant, incident_id, at), entries in zip(part, lines, strict=True):
                state = states.get((tenant, incident_id))
                if state is None or state.opened_at_ms is None:
                    continue  # gone, or never opened here: nothing to report
                if state.status != "resolved":
                    # its resolve not written yet (write-behind): later; re-opened since:
                    # its next resolve marks it again
                    if now - at < SETTLE_S:
                        await self.archive.mark(tenant, incident_id, at)
                    continue
                region = self._region_of(tenant, state.site_id)
                handled = handled_from(incident_id, state, entries, region)
                by_tenant.setdefault(tenant, []).append(handled)
        now_ms = int(time.time() * 1000)
        for tenant, records in by_tenant.items():
            await self.archive.put(tenant, records, now_ms)


class ArchivingListener:
    """The pipeline's listener (the escalation engine) with resolves marked for the
    archive. Everything else is the inner listener's, batch methods included."""

    def __init__(self, inner: Any, archive: ArchiveStore) -> None:
        self._inner = inner
        self._archive = archive

    async def on_alert(
        self, tenant: str, incident_id: str, site: str | None, severity: str, title: str
    ) -> None:
        await self._inner.on_alert(tenant, incident_id, site, severity, title)

    async def on_action(
        self,
        tenant: str,
        incident_id: str,
        status: str,
        by: str,
        kind: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self._inner.on_action(tenant, incident_id, status, by, kind, details)
        if status == "resolved":
            await self._archive.mark(tenant, incident_id)

    async def read_ahead(self, keys: list[tuple[str, str]]) -> None:
        await self._inner.read_ahead(keys)

    def hold_timers(self) -> None:
        self._inner.hold_timers()

    async def release_timers(self) -> None:
        await self._inner.release_timers()

    def forget(self) -> None:
        self._inner.forget()
