"""Redis hashes as the stores keep them: many read in one round trip, written with a TTL.

Shared by the incident, escalation and KPI-snapshot stores, which each keep one hash per
thing and differ only in how they encode it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis


async def hgetall_many(redis: Redis, keys: list[str]) -> list[dict[Any, Any]]:
    """HGETALL of each key, in order, pipelined (an absent key gives an empty dict)."""
    if not keys:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        rows: list[dict[Any, Any]] = await pipe.execute()
    return rows


async def hset_with_ttl(redis: Redis, items: Mapping[str, Mapping[Any, Any]], ttl_s: int) -> None:
    """HSET each key's fields and (re)set its TTL: one round trip. No MULTI: a crash
    between the two leaves a hash without TTL until its next write, which is harmless."""
    if not items:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for key, mapping in items.items():
            pipe.hset(key, mapping=dict(mapping))
            pipe.expire(key, ttl_s)
        await pipe.execute()
