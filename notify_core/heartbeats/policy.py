"""Heartbeats: what a silent source means (pure), and where pings are kept.

`decide` is a plain function of a heartbeat's last ping, whether its incident is open and
`now`: a source that pinged once and then stayed quiet past its `timeout` opens incident
`heartbeat:<name>`; the next ping after it opened resolves it. Before the first ping a
heartbeat is `inactive` and raises nothing (a source not deployed yet is not an outage).

The store is one Redis hash per tenant (`heartbeats:{tenant}`): `ping:<name>` (ms of the
last ping) and `open:<name>` (ms when its incident was opened). Opening and resolving are
claimed with HSETNX / HDEL, so with several processes watching, each transition is
produced once. Memory in the embedded mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from notify_core.heartbeats.config import Heartbeat
from notify_core.redis.keys import RedisKeys

State = Literal["inactive", "healthy", "unhealthy"]
Change = Literal["open", "resolve"]


@dataclass(frozen=True, slots=True)
class Beat:
    """What is known of one heartbeat: its last ping and when its incident opened."""

    last_ping_ms: int | None
    opened_ms: int | None


def state(hb: Heartbeat, beat: Beat, now_ms: int) -> State:
    if beat.last_ping_ms is None:
        return "inactive"
    if beat.opened_ms is not None and beat.last_ping_ms <= beat.opened_ms:
        return "unhealthy"
    return "unhealthy" if now_ms - beat.last_ping_ms > hb.timeout * 1000 else "healthy"


def decide(hb: Heartbeat, beat: Beat, now_ms: int) -> Change | None:
    """The transition due now, if any."""
    if beat.last_ping_ms is None:
        return None
    if beat.opened_ms is None:
        late = now_ms - beat.last_ping_ms > hb.timeout * 1000
        return "open" if late else None
    return "resolve" if beat.last_ping_ms > beat.opened_ms else None


def deadline_ms(hb: Heartbeat, beat: Beat) -> int | None:
    """When the heartbeat goes unhealthy if no ping comes (None: inactive or open)."""
    if beat.last_ping_ms is None or beat.opened_ms is not None:
        return None
    return beat.last_ping_ms + int(hb.timeout * 1000)


class HeartbeatStore:
    def __init__(self, redis: Redis | None, prefix: str = "") -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._memory: dict[str, dict[str, int]] = {}
        self._max = redis.register_script(_MAX_LUA) if redis is not None else None

    def _key(self, tenant: str) -> str:
        return self._keys.tenant("heartbeats", tenant)

    async def ping(self, tenant: str, name: str, at_ms: int) -> None:
        """Record a ping (a later one wins: pings may arrive out of order)."""
        field = f"ping:{name}"
        if self._redis is None:
            table = self._memory.setdefault(tenant, {})
            table[field] = max(table.get(field, 0), at_ms)
            return
        assert self._max is not None
        await self._max(keys=[self._key(tenant)], args=[field, at_ms])

    async def beats(self, tenant: str) -> dict[str, Beat]:
        """Every heartbeat of `tenant` with a ping or an open incident, by name."""
        if self._redis is None:
            raw = {k: str(v) for k, v in self._memory.get(tenant, {}).items()}
        else:
            found = await self._redis.hgetall(self._key(tenant))
            raw = {_text(k): _text(v) for k, v in found.items()}
        names = {field.split(":", 1)[1] for field in raw}
        out = {}
        for name in names:
            ping, opened = raw.get(f"ping:{name}"), raw.get(f"open:{name}")
            out[name] = Beat(int(ping) if ping else None, int(opened) if opened else None)
        return out

    async def claim_open(self, tenant: str, name: str, at_ms: int) -> bool:
        """Mark the incident open; False when another process already did."""
        field = f"open:{name}"
        if self._redis is None:
            table = self._memory.setdefault(tenant, {})
            if field in table:
                return False
            table[field] = at_ms
            return True
        return bool(await self._redis.hsetnx(self._key(tenant), field, at_ms))

    async def claim_resolve(self, tenant: str, name: str) -> bool:
        """Clear the open mark; False when another process already did."""
        field = f"open:{name}"
        if self._redis is None:
            return self._memory.get(tenant, {}).pop(field, None) is not None
        return bool(await self._redis.hdel(self._key(tenant), field))

    async def release_open(self, tenant: str, name: str) -> None:
        """Undo a claim whose record could not be produced (the next tick tries again)."""
        await self.claim_resolve(tenant, name)


_MAX_LUA = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
