"""Redis hashes as the stores keep them, many read in one round trip (written through
notify_core/redis/write_behind.py).

Shared by the incident, escalation and KPI-snapshot stores, which each keep one hash per
thing and differ only in how they encode it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis

from notify_core.redis.keys import RedisKeys, slot_tag
from notify_core.redis.scripts import ScriptArgs, call_per_item
from notify_core.redis.write_behind import ABSENT, HashWrite, WriteBehind

T = TypeVar("T")
Key = tuple[str, str]  # tenant, id

# HGETALL of many keys as one command and one reply:
# redis-py spends more per command and reply (packing in Python, a timeout context, the
# parse, the dict) than Redis spends reading a small hash.
_HGETALL_MANY_LUA = """
local rows = {}
for i, key in ipairs(KEYS) do rows[i] = redis.call('HGETALL', key) end
return rows
"""
KEYS_PER_CALL = 500


async def hgetall_many(redis: Redis, keys: list[str]) -> list[dict[Any, Any]]:
    """HGETALL of each key, in order, in one round trip (an absent key gives an empty
    dict)."""
    if not keys:
        return []
    script = redis.register_script(_HGETALL_MANY_LUA)
    rows = await call_per_item(
        redis, script, keys, KEYS_PER_CALL, lambda chunk: ScriptArgs(list(chunk), []), slot_tag
    )
    return [dict(zip(row[::2], row[1::2], strict=True)) for row in rows]


async def read_hashes(
    redis: Redis, writes: WriteBehind, names: list[str], parse: Callable[[dict[Any, Any]], T]
) -> list[T]:
    """Each hash parsed, in one round trip; a value written to it and not sent yet wins,
    without asking Redis (checked again after the read: a write queued meanwhile wins too)."""
    values: dict[str, T] = {}
    unread: list[str] = []
    for name in names:
        pending = writes.pending(name)
        if pending is ABSENT:
            unread.append(name)
        else:
            values[name] = pending
    if unread:
        rows = await hgetall_many(redis, unread)
        for name, raw in zip(unread, rows, strict=True):
            pending = writes.pending(name)
            values[name] = parse(raw) if pending is ABSENT else pending
    return [values[name] for name in names]


class HashStore(Generic[T]):
    """One hash per (tenant, id), at `{prefix}{kind}:{{tenant}}:{id}`, decoded by `parse`.
    Written through `writes` (during a pipeline batch, sent with the batch's other writes);
    reads return what was written and not sent yet."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        kind: str,
        parse: Callable[[dict[Any, Any]], T],
        ttl_s: int,
        writes: WriteBehind | None = None,
    ) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._kind = kind
        self._parse = parse
        self._ttl_s = ttl_s
        self._writes = writes or WriteBehind(redis)

    def _key(self, tenant: str, ident: str) -> str:
        return self._keys.thing(self._kind, tenant, ident)

    async def get(self, tenant: str, ident: str) -> T:
        names = [self._key(tenant, ident)]
        return (await read_hashes(self._redis, self._writes, names, self._parse))[0]

    async def get_many(self, keys: list[Key]) -> dict[Key, T]:
        names = [self._key(*key) for key in keys]
        values = await read_hashes(self._redis, self._writes, names, self._parse)
        return dict(zip(keys, values, strict=True))

    async def _put(self, tenant: str, ident: str, fields: Mapping[str, str], value: T) -> None:
        await self._writes.write(HashWrite(self._key(tenant, ident), fields, self._ttl_s), value)
