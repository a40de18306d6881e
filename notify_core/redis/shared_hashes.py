"""Small shared hashes, in Redis or in memory, behind one interface: the memory/Redis twin
of the stores that keep a few fields per tenant (heartbeats, people), so a store is
written once against `SharedHashes` instead of branching on `redis is None` in every
method. Keys are the same strings on both (`RedisKeys`); values are bytes.

`shared_hashes(redis)` picks the twin: Redis when the daemon has one, else memory (one
process, `towerco-notify run` on its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from redis.asyncio import Redis


class SharedHashes(Protocol):
    async def get(self, key: str, field: str) -> bytes | None: ...

    async def put(self, key: str, field: str, value: bytes) -> None: ...

    async def put_new(self, key: str, field: str, value: bytes) -> bool:
        """Set the field only when it is absent (HSETNX); False: someone else did."""
        ...

    async def raise_to(self, key: str, field: str, value: int) -> None:
        """Set an integer field to `value` unless it already holds a larger one."""
        ...

    async def remove(self, key: str, field: str) -> bool:
        """Delete the field; False when it was not there (someone else did)."""
        ...

    async def fields(self, key: str) -> dict[str, bytes]: ...

    def keys(self, prefix: str) -> AsyncIterator[str]:
        """Every key starting with `prefix` (a scan: for rare, operator-driven sweeps)."""
        ...

    async def count(self, key: str, ttl_s: int) -> int:
        """Add one to a counter that lives `ttl_s` after its first count; the new value."""
        ...


class MemoryHashes:
    def __init__(self) -> None:
        self._tables: dict[str, dict[str, bytes]] = {}
        # one process's memory: counters are forgotten with it, so they need no expiry
        self._counters: dict[str, int] = {}

    async def get(self, key: str, field: str) -> bytes | None:
        return self._tables.get(key, {}).get(field)

    async def put(self, key: str, field: str, value: bytes) -> None:
        self._tables.setdefault(key, {})[field] = value

    async def put_new(self, key: str, field: str, value: bytes) -> bool:
        table = self._tables.setdefault(key, {})
        if field in table:
            return False
        table[field] = value
        return True

    async def raise_to(self, key: str, field: str, value: int) -> None:
        table = self._tables.setdefault(key, {})
        if value > int(table.get(field, b"0")):
            table[field] = str(value).encode()

    async def remove(self, key: str, field: str) -> bool:
        return self._tables.get(key, {}).pop(field, None) is not None

    async def fields(self, key: str) -> dict[str, bytes]:
        return dict(self._tables.get(key, {}))

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        for key in list(self._tables):
            if key.startswith(prefix):
                yield key

    async def count(self, key: str, ttl_s: int) -> int:
        n = self._counters[key] = self._counters.get(key, 0) + 1
        return n


_RAISE_TO = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


class RedisHashes:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._raise_to = redis.register_script(_RAISE_TO)

    async def get(self, key: str, field: str) -> bytes | None:
        raw: Any = await self._redis.hget(key, field)
        return raw

    async def put(self, key: str, field: str, value: bytes) -> None:
        await self._redis.hset(key, field, value)

    async def put_new(self, key: str, field: str, value: bytes) -> bool:
        return bool(await self._redis.hsetnx(key, field, value))

    async def raise_to(self, key: str, field: str, value: int) -> None:
        await self._raise_to(keys=[key], args=[field, value])

    async def remove(self, key: str, field: str) -> bool:
        return bool(await self._redis.hdel(key, field))

    async def fields(self, key: str) -> dict[str, bytes]:
        found: Any = await self._redis.hgetall(key)
        return {_text(k): v for k, v in found.items()}

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        async for key in self._redis.scan_iter(match=f"{prefix}*", count=500):
            yield _text(key)

    async def count(self, key: str, ttl_s: int) -> int:
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl_s)
        n, _ = await pipe.execute()
        return int(n)


def shared_hashes(redis: Redis | None) -> SharedHashes:
    return RedisHashes(redis) if redis is not None else MemoryHashes()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
