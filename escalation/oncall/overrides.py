"""Where on-call overrides live: one Redis hash per tenant (`oncall-overrides:{tenant}`,
field = id), or memory in the embedded mode.

Written by the HTTP API (any server process), read when a level with `schedule:` fires
(any pipeline process) and when who-is-on-call is asked: one HGETALL per read, no cache,
so an override made a moment ago changes who the next page reaches. Overrides that ended
more than `KEEP_ENDED` ago are dropped when the tenant's overrides are next written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis

from escalation.oncall.rotation import Override
from notify_core.clock import iso
from notify_core.redis.keys import RedisKeys

KEEP_ENDED = timedelta(days=30)


def override_view(o: Override) -> dict[str, Any]:
    """The wire shape (`POST`/`GET /api/v1/oncall/overrides`)."""
    return {
        "id": o.id,
        "schedule": o.schedule,
        "user_id": o.user_id,
        "starts_at": _iso(o.starts_at),
        "ends_at": _iso(o.ends_at),
        "replaces": o.replaces,
    }


def _iso(t: datetime) -> str:
    return iso(t, "milliseconds")


def _from_json(raw: bytes | str) -> Override:
    d = orjson.loads(raw)
    return Override(
        id=d["id"],
        schedule=d["schedule"],
        user_id=d["user_id"],
        starts_at=datetime.fromisoformat(d["starts_at"]),
        ends_at=datetime.fromisoformat(d["ends_at"]),
        replaces=d.get("replaces"),
    )


class OverrideStore:
    def __init__(self, redis: Redis | None, prefix: str = "") -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._memory: dict[str, dict[str, Override]] = {}

    def _key(self, tenant: str) -> str:
        return self._keys.tenant("oncall-overrides", tenant)

    async def all(self, tenant: str) -> list[Override]:
        """Every override of `tenant`, by start."""
        if self._redis is None:
            found = list(self._memory.get(tenant, {}).values())
        else:
            raw = await self._redis.hgetall(self._key(tenant))
            found = [_from_json(v) for v in raw.values()]
        return sorted(found, key=lambda o: (o.starts_at, o.id))

    async def of(self, tenant: str, schedule: str) -> list[Override]:
        return [o for o in await self.all(tenant) if o.schedule == schedule]

    async def add(self, tenant: str, override: Override, now: datetime) -> None:
        stale = [o.id for o in await self.all(tenant) if o.ends_at < now - KEEP_ENDED]
        if self._redis is None:
            table = self._memory.setdefault(tenant, {})
            table[override.id] = override
            for ident in stale:
                table.pop(ident, None)
            return
        view = override_view(override)
        view["starts_at"] = override.starts_at.astimezone(UTC).isoformat()
        view["ends_at"] = override.ends_at.astimezone(UTC).isoformat()
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._key(tenant), override.id, orjson.dumps(view))
        if stale:
            pipe.hdel(self._key(tenant), *stale)
        await pipe.execute()

    async def delete(self, tenant: str, ident: str) -> Override | None:
        """Remove one; what it was (None: there was none)."""
        if self._redis is None:
            return self._memory.get(tenant, {}).pop(ident, None)
        key = self._key(tenant)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hget(key, ident)
        pipe.hdel(key, ident)
        raw, _ = await pipe.execute()
        return _from_json(raw) if raw is not None else None
