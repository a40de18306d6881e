"""Latest KPI values per site: what a (re)connecting client gets instead of every sample."""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from notify_core.redis.hashes import hgetall_many
from notify_core.redis.keys import RedisKeys
from notify_core.redis.write_behind import HashWrite, WriteBehind

SNAPSHOT_TTL_S = 7 * 24 * 3600


class SnapshotStore(Protocol):
    async def update(self, event: dict[str, Any]) -> None:
        """Merge a stored `kpi_update` (with its id) into its site's snapshot."""

    async def update_many(self, events: list[dict[str, Any]]) -> None:
        """`update` with each, in order (one round trip where there is one)."""

    async def get(self, tenant: str, sites: list[str]) -> dict[str, dict[str, Any]]:
        """`{site: {kpi_data, id, timestamp}}` for the sites that have one."""

    async def last_sample(self, tenant: str, site: str | None) -> int | None:
        """When (ms, as received) the last KPI sample of the tenant (or of one of its
        sites) was stored: what a `kind: kpi` heartbeat counts as a ping."""


class MemorySnapshots:
    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[str, Any]] = {}
        self._seen: dict[tuple[str, str | None], int] = {}

    async def update(self, event: dict[str, Any]) -> None:
        self._update(event, int(time.time() * 1000))

    async def update_many(self, events: list[dict[str, Any]]) -> None:
        now_ms = int(time.time() * 1000)  # when this batch was heard: once, not per event
        for event in events:
            self._update(event, now_ms)

    def _update(self, event: dict[str, Any], now_ms: int) -> None:
        if not event.get("kpi_data"):
            return
        key = (event["tenant_id"], event["site_id"])
        current = self._data.setdefault(key, {"kpi_data": {}})
        current["kpi_data"].update(event["kpi_data"])
        current["id"], current["timestamp"] = event["id"], event["timestamp"]
        self._seen[key] = self._seen[(key[0], None)] = now_ms

    async def last_sample(self, tenant: str, site: str | None) -> int | None:
        return self._seen.get((tenant, site))

    async def get(self, tenant: str, sites: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for site in sites:
            snap = self._data.get((tenant, site))
            if snap:
                out[site] = {**snap, "kpi_data": dict(snap["kpi_data"])}
        return out


class RedisSnapshots:
    """A hash per site: one field per KPI (JSON number), plus `_id` and `_ts`. Written
    through `writes`: during a pipeline batch, with the batch's other state writes (a
    snapshot may lag the history by milliseconds; clients catch up from the history)."""

    def __init__(self, redis: Redis, prefix: str, writes: WriteBehind | None = None) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._writes = writes or WriteBehind(redis)

    def _key(self, tenant: str, site: str) -> str:
        return self._keys.thing("kpi", tenant, site)

    def _tenant_key(self, tenant: str) -> str:
        return self._keys.tenant("kpi-seen", tenant)

    async def last_sample(self, tenant: str, site: str | None) -> int | None:
        key = self._key(tenant, site) if site is not None else self._tenant_key(tenant)
        raw = await self._redis.hget(key, "_seen")
        return int(raw) if raw else None

    async def update(self, event: dict[str, Any]) -> None:
        await self.update_many([event])

    async def update_many(self, events: list[dict[str, Any]]) -> None:
        """The samples of each site merged first (latest value wins), then one HSET per site."""
        merged: dict[str, dict[str, str]] = {}
        seen = str(int(time.time() * 1000))
        tenants: set[str] = set()
        for event in events:
            if not event.get("kpi_data"):
                continue
            tenant = event["tenant_id"]
            mapping = merged.setdefault(self._key(tenant, event["site_id"]), {})
            for name, value in event["kpi_data"].items():
                mapping[name] = orjson.dumps(value).decode()
            mapping["_id"], mapping["_ts"], mapping["_seen"] = event["id"], event["timestamp"], seen
            tenants.add(tenant)
        for tenant in tenants:
            merged[self._tenant_key(tenant)] = {"_seen": seen}
        if merged:
            await self._writes.merge_hashes(
                [HashWrite(key, fields, SNAPSHOT_TTL_S) for key, fields in merged.items()]
            )

    async def get(self, tenant: str, sites: list[str]) -> dict[str, dict[str, Any]]:
        rows = await hgetall_many(self._redis, [self._key(tenant, site) for site in sites])
        out = {}
        for site, raw in zip(sites, rows, strict=True):
            if not raw:
                continue
            data = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
            snap_id, ts = data.pop("_id", b""), data.pop("_ts", b"")
            data.pop("_seen", None)
            out[site] = {
                "kpi_data": {k: orjson.loads(v) for k, v in data.items()},
                "id": snap_id.decode() if isinstance(snap_id, bytes) else snap_id,
                "timestamp": ts.decode() if isinstance(ts, bytes) else ts,
            }
        return out
