"""Answering a page by SMS: per recipient, a small number that names the incident.

A page SMS to +254700000001 about incident X says `Reply 3a to acknowledge, 3c to
resolve`: `3` is that recipient's code for X, kept a day in Redis (`sms-replies:{number}`,
memory in the embedded mode). A reply from that number with `3a` or `3c` acts as the user
the page went to; the codes of one number count up from 1 and wrap at 99.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from notify_core.redis.keys import RedisKeys

KEEP_S = 24 * 3600
REPLY = re.compile(r"^\s*(\d{1,2})\s*([ac])\s*$", re.IGNORECASE)
VERBS = {"a": "acknowledge", "c": "resolve"}


@dataclass(frozen=True, slots=True)
class Paged:
    tenant: str
    user: str
    incident_id: str
    method_id: str


def parse_reply(body: str) -> tuple[int, str] | None:
    """(code, action) of `3a` / `3c` (any case, spaces allowed); None otherwise."""
    match = REPLY.match(body)
    if match is None:
        return None
    return int(match.group(1)), VERBS[match.group(2).lower()]


class SmsReplies:
    def __init__(self, redis: Redis | None, prefix: str = "") -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._memory: dict[str, dict[str, bytes]] = {}

    def _key(self, number: str) -> str:
        return self._keys.tenant("sms-replies", number)

    async def code_for(self, number: str, paged: Paged) -> int:
        """The code `number` answers `paged` with (a new one per page)."""
        value = orjson.dumps([paged.tenant, paged.user, paged.incident_id, paged.method_id])
        if self._redis is None:
            table = self._memory.setdefault(number, {})
            n = int(table.get("n", b"0")) % 99 + 1
            table["n"], table[str(n)] = str(n).encode(), value
            return n
        key = self._key(number)
        counter: Any = await self._redis.hincrby(key, "n", 1)
        n = (int(counter) - 1) % 99 + 1
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, str(n), value)
        pipe.expire(key, KEEP_S)
        await pipe.execute()
        return n

    async def paged(self, number: str, code: int) -> Paged | None:
        if self._redis is None:
            raw: Any = self._memory.get(number, {}).get(str(code))
        else:
            raw = await self._redis.hget(self._key(number), str(code))
        if not raw:
            return None
        tenant, user, incident, method = orjson.loads(raw)
        return Paged(tenant, user, incident, method)
