"""Per-incident timeline: every step in order (raised, notified whom and how, webhook
result, acknowledged, resolved). Written by the pipeline and escalation, read by the
HTTP API for the caller's tenant only."""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from notify_core.bounded import Bounded
from notify_core.redis.keys import RedisKeys
from notify_core.redis.write_behind import ListAppend, WriteBehind

TIMELINE_TTL_S = 30 * 24 * 3600
MAX_ENTRIES = 1000


class Timeline(Protocol):
    async def add(self, tenant: str, incident_id: str, kind: str, **details: Any) -> None: ...

    async def get(self, tenant: str, incident_id: str) -> list[dict[str, Any]]: ...


def _entry(kind: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"at": time.time(), "kind": kind, **details}


class MemoryTimeline:
    def __init__(self, max_incidents: int = 50_000) -> None:
        self._data: Bounded[tuple[str, str], list[dict[str, Any]]] = Bounded(max_incidents)

    async def add(self, tenant: str, incident_id: str, kind: str, **details: Any) -> None:
        entries = self._data.get((tenant, incident_id))
        if entries is None:
            entries = []
            self._data.put((tenant, incident_id), entries)
        entries.append(_entry(kind, details))
        if len(entries) > MAX_ENTRIES:  # the latest are kept: late acks and resolves matter
            del entries[0]

    async def get(self, tenant: str, incident_id: str) -> list[dict[str, Any]]:
        return list(self._data.get((tenant, incident_id), []))


class RedisTimeline:
    """A list per incident capped at its latest MAX_ENTRIES. Entries go through `writes`
    (sent together during a pipeline batch; a read may miss the last milliseconds')."""

    def __init__(self, redis: Redis, prefix: str, writes: WriteBehind | None = None) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._writes = writes or WriteBehind(redis)

    def _key(self, tenant: str, incident_id: str) -> str:
        return self._keys.timeline(tenant, incident_id)

    async def add(self, tenant: str, incident_id: str, kind: str, **details: Any) -> None:
        entry = orjson.dumps(_entry(kind, details))
        await self._writes.write(
            ListAppend(self._key(tenant, incident_id), entry, MAX_ENTRIES, TIMELINE_TTL_S)
        )

    async def get(self, tenant: str, incident_id: str) -> list[dict[str, Any]]:
        rows: Any = await self._redis.lrange(self._key(tenant, incident_id), 0, -1)
        return [orjson.loads(r) for r in rows]
