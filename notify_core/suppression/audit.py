"""The audit records of suppression that ends on its own: a one-time maintenance window
past its `ends_at`, a silence past its `ends_at`.

Made or ended by a person, they are audited where that happens (the HTTP API, the site
topic); nobody acts when they lapse, so this loop notices. Every pipeline process runs it;
a Redis `SET NX` per (kind, tenant, id) makes one of them write the record (memory in the
embedded mode, one process).
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis

from notify_core.lifecycle import Background
from notify_core.obs.audit import AuditLog, audit_record
from notify_core.suppression.store import SuppressionStore

log = logging.getLogger(__name__)

KEEP_S = 7 * 86400


class ExpiryAudit:
    def __init__(
        self,
        store: SuppressionStore,
        audit: AuditLog,
        redis: Redis | None,
        prefix: str,
        every_s: float = 5.0,
    ) -> None:
        self.store, self.audit, self.redis = store, audit, redis
        self._prefix = prefix
        self._told: set[str] = set()
        self._since = time.time()  # what ended before we started is not ours to report
        self._background = Background.every(
            "auditing lapsed windows and silences", every_s, self.sweep, wait_first=True
        )

    def ended(self, now: float) -> list[tuple[str, str, str]]:
        """(action, tenant, id) of what lapsed in (`_since`, `now`]."""
        out = []
        for w in self.store.all_windows():
            if w.start is None and w.ends_at is not None and self._since < w.ends_at <= now:
                out.append(("maintenance_end", w.tenant_id, w.id))
        for s in self.store.all_silences():
            if self._since < s.ends_at <= now:
                out.append(("silence_expire", s.tenant_id, s.id))
        return out

    async def sweep(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        told = 0
        for action, tenant, ident in self.ended(now):
            key = f"{action}:{tenant}:{ident}"
            if key in self._told:
                continue
            self._told.add(key)
            if self.redis is not None:
                first = await self.redis.set(
                    f"{self._prefix}audit-lapsed:{key}", b"1", nx=True, ex=KEEP_S
                )
                if not first:
                    continue  # another process wrote it
            await self.audit.record(
                audit_record(tenant, None, action, ident, "ok", "config", "ended on schedule")
            )
            told += 1
        # what ended up to `now` is never listed again: only a sweep that failed half-way
        # repeats its interval, and needs to know what it already told
        self._since = now
        self._told.clear()
        return told

    async def start(self) -> None:
        await self._background.start()

    async def stop(self) -> None:
        await self._background.stop()
