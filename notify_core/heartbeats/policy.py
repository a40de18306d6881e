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
from notify_core.redis.shared_hashes import shared_hashes

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
    """Pings and open marks, one shared hash per tenant (`ping:<name>`, `open:<name>`)."""

    def __init__(self, redis: Redis | None, prefix: str = "") -> None:
        self._hashes = shared_hashes(redis)
        self._keys = RedisKeys(prefix)

    def _key(self, tenant: str) -> str:
        return self._keys.tenant("heartbeats", tenant)

    async def ping(self, tenant: str, name: str, at_ms: int) -> None:
        """Record a ping (a later one wins: pings may arrive out of order)."""
        await self._hashes.raise_to(self._key(tenant), f"ping:{name}", at_ms)

    async def beats(self, tenant: str) -> dict[str, Beat]:
        """Every heartbeat of `tenant` with a ping or an open incident, by name."""
        raw = {k: v.decode() for k, v in (await self._hashes.fields(self._key(tenant))).items()}
        names = {field.split(":", 1)[1] for field in raw}
        out = {}
        for name in names:
            ping, opened = raw.get(f"ping:{name}"), raw.get(f"open:{name}")
            out[name] = Beat(int(ping) if ping else None, int(opened) if opened else None)
        return out

    async def claim_open(self, tenant: str, name: str, at_ms: int) -> bool:
        """Mark the incident open; False when another process already did."""
        return await self._hashes.put_new(self._key(tenant), f"open:{name}", str(at_ms).encode())

    async def claim_resolve(self, tenant: str, name: str) -> bool:
        """Clear the open mark; False when another process already did."""
        return await self._hashes.remove(self._key(tenant), f"open:{name}")

    async def release_open(self, tenant: str, name: str) -> None:
        """Undo a claim whose record could not be produced (the next tick tries again)."""
        await self.claim_resolve(tenant, name)
