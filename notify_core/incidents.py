"""What the daemon remembers of an incident: its site and status, keyed by tenant.

Actions (`acknowledge`/`resolve`) name only the incident; the site comes from here,
so an `incident_update` reaches exactly those allowed to see the incident's site.
Memory for the embedded engine, a Redis hash per incident in production (shared by
every pipeline process, whichever partition carried the alert).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

INCIDENT_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class IncidentState:
    site_id: str | None
    severity: str
    status: str  # open | acknowledged | resolved


class IncidentStore(Protocol):
    async def get(self, tenant: str, incident_id: str) -> IncidentState | None: ...

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None: ...


class MemoryIncidentStore:
    def __init__(self, maxsize: int = 200_000) -> None:
        self._items: OrderedDict[tuple[str, str], IncidentState] = OrderedDict()
        self._maxsize = maxsize

    async def get(self, tenant: str, incident_id: str) -> IncidentState | None:
        return self._items.get((tenant, incident_id))

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None:
        self._items[(tenant, incident_id)] = state
        self._items.move_to_end((tenant, incident_id))
        if len(self._items) > self._maxsize:
            self._items.popitem(last=False)


class RedisIncidentStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, tenant: str, incident_id: str) -> str:
        return f"{self._prefix}incident:{tenant}:{incident_id}"

    async def get(self, tenant: str, incident_id: str) -> IncidentState | None:
        raw: dict[Any, Any] = await self._redis.hgetall(self._key(tenant, incident_id))
        if not raw:
            return None
        data = {k.decode(): v.decode() for k, v in raw.items()}
        return IncidentState(data.get("site_id") or None, data["severity"], data["status"])

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None:
        key = self._key(tenant, incident_id)
        mapping: dict[Any, Any] = {
            "site_id": state.site_id or "",
            "severity": state.severity,
            "status": state.status,
        }
        async with self._redis.pipeline(
            transaction=False
        ) as pipe:  # one round trip; no MULTI needed
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, INCIDENT_TTL_S)
            await pipe.execute()
