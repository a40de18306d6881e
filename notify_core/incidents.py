"""What the daemon remembers of an incident: its site and status, keyed by tenant.

Actions (`acknowledge`/`resolve`) name only the incident; the site comes from here,
so an `incident_update` reaches exactly those allowed to see the incident's site.
Memory for the embedded engine, a Redis hash per incident in production (shared by
every pipeline process, whichever partition carried the alert).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import Redis

from notify_core.redis_hashes import HashStore
from notify_core.write_behind import WriteBehind

INCIDENT_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class IncidentState:
    site_id: str | None
    severity: str
    status: str  # open | acknowledged | resolved
    # when it was resolved (the resolving message's timestamp, epoch ms): an alert raised
    # no later than this is a late or redelivered copy and must not reopen it
    resolved_at_ms: int | None = None

    def outdates(self, raised_at_ms: int) -> bool:
        """True if this state is a resolution that an alert raised at `raised_at_ms`
        predates."""
        return (
            self.status == "resolved"
            and self.resolved_at_ms is not None
            and raised_at_ms <= self.resolved_at_ms
        )


def epoch_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


Key = tuple[str, str]  # tenant, incident id


class IncidentStore(Protocol):
    async def get(self, tenant: str, incident_id: str) -> IncidentState | None: ...

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None: ...

    async def get_many(self, keys: list[Key]) -> dict[Key, IncidentState | None]:
        """`get` for each key, in one round trip where there is one."""


class MemoryIncidentStore:
    def __init__(self, maxsize: int = 200_000) -> None:
        self._items: OrderedDict[tuple[str, str], IncidentState] = OrderedDict()
        self._maxsize = maxsize

    async def get(self, tenant: str, incident_id: str) -> IncidentState | None:
        return self._items.get((tenant, incident_id))

    async def get_many(self, keys: list[Key]) -> dict[Key, IncidentState | None]:
        return {key: self._items.get(key) for key in keys}

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None:
        self._items[(tenant, incident_id)] = state
        self._items.move_to_end((tenant, incident_id))
        if len(self._items) > self._maxsize:
            self._items.popitem(last=False)


class RedisIncidentStore(HashStore[IncidentState | None]):
    """One hash per incident. Writes go through `writes`, so during a pipeline batch they
    are sent together (notify_core/write_behind.py) and read back from there until then."""

    def __init__(self, redis: Redis, prefix: str, writes: WriteBehind | None = None) -> None:
        super().__init__(redis, prefix, "incident", _state, INCIDENT_TTL_S, writes)

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None:
        fields = {
            "site_id": state.site_id or "",
            "severity": state.severity,
            "status": state.status,
            "resolved_at_ms": "" if state.resolved_at_ms is None else str(state.resolved_at_ms),
        }
        await self._put(tenant, incident_id, fields, state)


def _state(raw: dict[Any, Any]) -> IncidentState | None:
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    resolved = data.get("resolved_at_ms")
    return IncidentState(
        data.get("site_id") or None,
        data["severity"],
        data["status"],
        int(resolved) if resolved else None,
    )


class ReadAhead:
    """An IncidentStore whose reads during one pipeline batch come from one prefetch.

    The batch handler `prefetch`es the incidents its messages name (one round trip) and
    `forget`s them when the batch is done. Writes go straight through and update what was
    prefetched, so a later message of the same batch - or the threshold engine, which
    shares this object - reads what an earlier one wrote; anything not prefetched is read
    from the store. Only the pipeline writes incident state.
    """

    def __init__(self, store: IncidentStore) -> None:
        self.store = store
        self._known: dict[Key, IncidentState | None] = {}

    async def prefetch(self, keys: list[Key]) -> None:
        missing = [key for key in dict.fromkeys(keys) if key not in self._known]
        if missing:
            self._known.update(await self.store.get_many(missing))

    def forget(self) -> None:
        self._known.clear()

    async def get(self, tenant: str, incident_id: str) -> IncidentState | None:
        key = (tenant, incident_id)
        if key in self._known:
            return self._known[key]
        return await self.store.get(tenant, incident_id)

    async def get_many(self, keys: list[Key]) -> dict[Key, IncidentState | None]:
        return await self.store.get_many(keys)  # writes go through: the store is current

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None:
        await self.store.put(tenant, incident_id, state)
        key = (tenant, incident_id)
        if key in self._known:  # otherwise the next get reads the store itself
            self._known[key] = state
