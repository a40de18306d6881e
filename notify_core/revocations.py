"""Revoked tokens: by `jti`, or every token of a user issued before a time.

Kept in Redis (a hash, `{prefix}revocations`, and a version counter every process polls)
or in memory in the embedded mode, each until the tokens it names would have expired
anyway. Every server process holds a snapshot, refreshed within a second of a change, so
`revoked()` costs a dict lookup on each handshake and HTTP call; a change bumps
`generation`, and the server then cuts the live connections it names (sio_server/app.py),
on every process, well within the 5 s the contract allows.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple, Protocol

import orjson
from redis.asyncio import Redis

from notify_core.redis.keys import RedisKeys
from notify_core.redis.snapshot_follower import UNCHANGED, FollowedSnapshot

log = logging.getLogger(__name__)

DEFAULT_KEEP_S = 7 * 24 * 3600  # when the tokens' own expiry is not known


class Revocation(NamedTuple):
    tenant_id: str
    jti: str | None
    user_id: str | None
    issued_before: float | None
    until: float  # kept until then: the tokens it names have expired by then
    at: float
    by: str

    def key(self) -> str:
        return (
            f"jti:{self.tenant_id}:{self.jti}"
            if self.jti
            else f"user:{self.tenant_id}:{self.user_id}"
        )

    def view(self) -> dict[str, Any]:
        return {k: v for k, v in self._asdict().items() if v is not None}


class Holder(Protocol):
    @property
    def tenant_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    @property
    def issued_at(self) -> float | None: ...

    @property
    def token_id(self) -> str | None: ...


class Revocations(FollowedSnapshot):
    """The snapshot every check reads, and the store behind it."""

    what = "revocations"

    def __init__(self, redis: Redis | None, prefix: str = "") -> None:
        self._redis = redis
        keys = RedisKeys(prefix)  # one slot: a change sets both in one transaction
        self._hash = keys.shared("revocations")
        self._version_key = keys.shared("revocations", "v")
        self._entries: dict[str, Revocation] = {}
        self._version: Any = None
        self.generation = 0  # bumped when the snapshot changes

    def revoked(self, p: Holder) -> bool:
        if not self._entries:
            return False
        now = time.time()
        if p.token_id is not None:
            hit = self._entries.get(f"jti:{p.tenant_id}:{p.token_id}")
            if hit is not None and hit.until > now:
                return True
        hit = self._entries.get(f"user:{p.tenant_id}:{p.user_id}")
        if hit is None or hit.until <= now or hit.issued_before is None:
            return False
        return p.issued_at is None or p.issued_at < hit.issued_before

    def listed(self, tenant: str) -> list[Revocation]:
        now = time.time()
        return [r for r in self._entries.values() if r.tenant_id == tenant and r.until > now]

    async def add(self, r: Revocation) -> None:
        if self._redis is None:
            self._entries[r.key()] = r
            self.generation += 1
            return
        await self._write(r.key(), orjson.dumps(r._asdict()))
        await self.refresh()

    async def refresh(self) -> None:
        """Read the store again if it changed (one GET when it did not)."""
        if self._redis is None or (version := await self._changed()) is UNCHANGED:
            return
        raw: Any = await self._redis.hgetall(self._hash)
        now = time.time()
        entries, gone = {}, []
        for field, value in raw.items():
            r = Revocation(**orjson.loads(value))
            if r.until > now:
                entries[r.key()] = r
            else:
                gone.append(field)
        if gone:
            await self._redis.hdel(self._hash, *gone)
        self._entries, self._version = entries, version
        self.generation += 1
