"""Redis hashes as the stores keep them, many read in one round trip (written through
notify_core/write_behind.py).

Shared by the incident, escalation and KPI-snapshot stores, which each keep one hash per
thing and differ only in how they encode it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis

from notify_core.redis_scripts import call_in_chunks
from notify_core.write_behind import ABSENT, WriteBehind

T = TypeVar("T")

# HGETALL of many keys as one command (the keys as one JSON argument) and one reply:
# redis-py spends more per command and reply (packing in Python, a timeout context, the
# parse, the dict) than Redis spends reading a small hash.
_HGETALL_MANY_LUA = """
local rows = {}
for i, key in ipairs(cjson.decode(ARGV[1])) do rows[i] = redis.call('HGETALL', key) end
return rows
"""
KEYS_PER_CALL = 500


async def hgetall_many(redis: Redis, keys: list[str]) -> list[dict[Any, Any]]:
    """HGETALL of each key, in order, in one round trip (an absent key gives an empty
    dict)."""
    if not keys:
        return []
    script = redis.register_script(_HGETALL_MANY_LUA)
    replies = await call_in_chunks(
        redis, script, keys, KEYS_PER_CALL, lambda chunk: [orjson.dumps(list(chunk))]
    )
    return [dict(zip(row[::2], row[1::2], strict=True)) for reply in replies for row in reply]


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
