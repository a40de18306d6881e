"""Limits that keep one user, tenant, token or address from taking the daemon down.

- Connections per user and per tenant, counted across every server process: each live
  connection is a member of two Redis sorted sets (the user's, the tenant's) scored by
  when it expires; its process re-scores its own every 10 s, so a process that dies
  (SIGKILL) stops counting within 30 s. One script checks both and admits or refuses
  atomically. The embedded mode counts in memory.
- HTTP API requests per token: a token bucket each (`Retry-After` when empty).
- Refused handshakes per address: more than N in a minute block the address for a while.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from typing import Any

from cachetools import TTLCache
from redis.asyncio import Redis

from notify_core.lifecycle import Background
from notify_core.obs import metrics
from notify_core.redis.keys import RedisKeys
from sio_server.admission.auth import Principal
from sio_server.admission.ratelimit import TokenBucket

log = logging.getLogger(__name__)

LEASE_S = 30.0
RENEW_S = 10.0
TOO_MANY = "too many connections"

# KEYS: the user's set, the tenant's set. ARGV: connection id, now, lease end, user
# limit, tenant limit. Expired members go first; then both counts are checked.
_ADMIT_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 'user' end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 'tenant' end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], 120)
redis.call('EXPIRE', KEYS[2], 120)
return false
"""


class ConnectionLimits:
    def __init__(self, redis: Redis | None, prefix: str, per_user: int, per_tenant: int) -> None:
        self._redis = redis
        self._keys_of = RedisKeys(prefix)
        self.per_user = per_user
        self.per_tenant = per_tenant
        self._admit = redis.register_script(_ADMIT_LUA) if redis is not None else None
        self._live: dict[str, Principal] = {}  # this process's connections
        self._users: Counter[tuple[str, str]] = Counter()
        self._tenants: Counter[str] = Counter()
        self._background = Background("connection-leases", self._renew)

    def _keys(self, p: Principal) -> list[str]:
        """The user's and the tenant's counts: one slot (the admit script takes both)."""
        keys = self._keys_of
        return [keys.user_connections(p.tenant_id, p.user_id), keys.tenant_connections(p.tenant_id)]

    async def acquire(self, p: Principal, conn_id: str) -> str | None:
        """Count a new connection in; the reason (`too many connections`) when over."""
        if self._admit is None:
            over = (
                "user"
                if self._users[(p.tenant_id, p.user_id)] >= self.per_user
                else "tenant"
                if self._tenants[p.tenant_id] >= self.per_tenant
                else None
            )
        else:
            now = time.time()
            raw = await self._admit(
                keys=self._keys(p),
                args=[conn_id, now, now + LEASE_S, self.per_user, self.per_tenant],
            )
            over = raw.decode() if isinstance(raw, bytes) else raw or None
        if over:
            metrics.CONNECTION_LIMITED.labels(over).inc()
            return TOO_MANY
        self._live[conn_id] = p
        self._users[(p.tenant_id, p.user_id)] += 1
        self._tenants[p.tenant_id] += 1
        return None

    async def release(self, conn_id: str) -> None:
        p = self._live.pop(conn_id, None)
        if p is None:
            return
        self._users[(p.tenant_id, p.user_id)] -= 1
        self._tenants[p.tenant_id] -= 1
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline(transaction=False)
                for key in self._keys(p):
                    pipe.zrem(key, conn_id)
                await pipe.execute()
            except Exception as exc:  # the lease runs out by itself
                log.warning("releasing a connection's count failed (%s)", exc)

    async def start(self) -> None:
        if self._redis is not None:
            await self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def _renew(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                until = time.time() + LEASE_S
                pipe = self._redis.pipeline(transaction=False)
                for conn_id, p in list(self._live.items()):
                    for key in self._keys(p):
                        pipe.zadd(key, {conn_id: until}, xx=True)
                await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("renewing connection leases failed (%s); retrying", exc)


class HttpRateLimiter:
    """A token bucket per token (by `jti`, else user), forgotten after an idle hour."""

    def __init__(self, rate: float, burst: float, max_tokens: int = 100_000) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: TTLCache[tuple[str, str, str], TokenBucket] = TTLCache(max_tokens, 3600)

    def retry_after(self, p: Principal) -> int | None:
        """None when the request may go; else the seconds to wait (`Retry-After`)."""
        key = (p.tenant_id, p.user_id, p.token_id or "")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        if bucket.take():
            return None
        return max(1, math.ceil(1.0 / self.rate))


class AddressGuard:
    """Counts refused handshakes per address; past the limit in a minute, blocks it."""

    def __init__(self, per_minute: int, block_s: float, max_addresses: int = 100_000) -> None:
        self.per_minute = per_minute
        self._failures: TTLCache[str, list[float]] = TTLCache(max_addresses, 60)
        self._blocked: TTLCache[str, bool] = TTLCache(max_addresses, block_s)

    def blocked(self, address: str | None) -> bool:
        return address is not None and address in self._blocked

    def refused(self, address: str | None) -> bool:
        """Note a refused handshake; True when this one blocks the address."""
        if address is None or address in self._blocked:
            return False
        now = time.monotonic()
        recent = [t for t in self._failures.get(address, []) if now - t < 60] + [now]
        self._failures[address] = recent
        if len(recent) > self.per_minute:
            self._blocked[address] = True
            self._failures.pop(address, None)
            metrics.ADDRESSES_BLOCKED.inc()
            log.warning("blocking %s: %d refused handshakes in a minute", address, len(recent))
            return True
        return False


def retry_headers(seconds: int) -> dict[str, Any]:
    return {"Retry-After": str(seconds)}
