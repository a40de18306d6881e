"""Escalation state per incident. `claim()` is the cluster-wide exactly-once: the
first process to claim a step (HSETNX) delivers it; any other, late or duplicate,
does nothing."""

from __future__ import annotations

from typing import Any, Protocol

from redis.asyncio import Redis

from escalation.policy import EscalationState
from notify_core.bounded import Bounded
from notify_core.redis.hashes import HashStore
from notify_core.redis.write_behind import ABSENT, WriteBehind

TTL_S = 30 * 24 * 3600


Key = tuple[str, str]  # tenant, incident id


class EscalationStore(Protocol):
    async def get(self, tenant: str, incident_id: str) -> EscalationState | None: ...

    async def get_many(self, keys: list[Key]) -> dict[Key, EscalationState | None]:
        """`get` for each key, in one round trip where there is one."""

    async def put(self, tenant: str, incident_id: str, state: EscalationState) -> None: ...

    async def claim(self, tenant: str, incident_id: str, step_key: str) -> bool: ...


class MemoryEscalationStore:
    """The embedded engine's store: the states of the `maxsize` most recently written
    incidents (as `MemoryIncidentStore` keeps incidents); an older incident's escalation
    stops. Redis keeps them for TTL_S instead."""

    def __init__(self, maxsize: int = 200_000) -> None:
        self._data: Bounded[tuple[str, str], EscalationState] = Bounded(maxsize)

    async def get(self, tenant: str, incident_id: str) -> EscalationState | None:
        return self._data.get((tenant, incident_id))

    async def get_many(self, keys: list[Key]) -> dict[Key, EscalationState | None]:
        return {key: self._data.get(key) for key in keys}

    async def put(self, tenant: str, incident_id: str, state: EscalationState) -> None:
        current = self._data.get((tenant, incident_id))
        fired = current.fired if current is not None and current.epoch == state.epoch else set()
        state.fired = fired | state.fired
        self._data.put((tenant, incident_id), state)

    async def claim(self, tenant: str, incident_id: str, step_key: str) -> bool:
        state = self._data.get((tenant, incident_id))
        if state is None or step_key in state.fired:
            return False
        state.fired.add(step_key)
        return True


class RedisEscalationStore(HashStore[EscalationState | None]):
    """One hash per incident (steps claimed as `fired:<step>` fields). Writes go through
    `writes` (batched during a pipeline batch, read back from there until sent)."""

    def __init__(self, redis: Redis, prefix: str, writes: WriteBehind | None = None) -> None:
        super().__init__(redis, prefix, "esc", _parse, TTL_S, writes)

    async def put(self, tenant: str, incident_id: str, state: EscalationState) -> None:
        fields = {
            "policy": state.policy,
            "status": state.status,
            "epoch": repr(state.epoch),
            "acked_at": repr(state.acked_at) if state.acked_at is not None else "",
            "site": state.site or "",
            "title": state.title,
            "snoozed_until": repr(state.snoozed_until) if state.snoozed_until is not None else "",
            "severity": state.severity,
            "muted": "1" if state.muted else "",
            "group": state.group or "",
            "members": ",".join(state.members),
        }
        await self._put(tenant, incident_id, fields, state)

    async def claim(self, tenant: str, incident_id: str, step_key: str) -> bool:
        key = self._key(tenant, incident_id)
        claimed = bool(await self._redis.hsetnx(key, f"fired:{step_key}", 1))
        pending = self._writes.pending(key)
        if claimed and pending is not ABSENT:  # what a read returns until the put is sent
            pending.fired.add(step_key)
        return claimed


def _parse(raw: Any) -> EscalationState | None:
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    acked = data.get("acked_at")
    return EscalationState(
        policy=data["policy"],
        status=data["status"],
        epoch=float(data["epoch"]),
        acked_at=float(acked) if acked else None,
        fired={k[6:] for k in data if k.startswith("fired:")},
        site=data.get("site") or None,
        title=data.get("title", ""),
        snoozed_until=float(data["snoozed_until"]) if data.get("snoozed_until") else None,
        severity=data.get("severity", ""),
        muted=bool(data.get("muted")),
        group=data.get("group") or None,
        members=[m for m in data.get("members", "").split(",") if m],
    )
