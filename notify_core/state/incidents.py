"""What the daemon remembers of an incident: its site, status and who worked on it.

Actions (`acknowledge`/`resolve`) name only the incident; the site comes from here,
so an `incident_update` reaches exactly those allowed to see the incident's site. The
same state answers `GET /api/v1/incidents`: what a fresh screen shows at once. Memory
for the embedded engine; in production a Redis hash per incident plus two sorted sets
per tenant (the incidents not resolved, and the latest resolved ones, by opening time),
shared by every pipeline process whichever partition carried the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import Redis

from notify_core.bounded import Bounded
from notify_core.clock import iso_ms
from notify_core.redis.hashes import HashStore
from notify_core.redis.write_behind import IndexMove, WriteBehind

INCIDENT_TTL_S = 30 * 24 * 3600
RESOLVED_KEPT = 10_000  # per tenant, the latest resolved incidents stay listable
STATUSES = ("open", "acknowledged", "snoozed", "resolved")


@dataclass(frozen=True, slots=True)
class IncidentState:
    site_id: str | None
    severity: str
    status: str  # open | acknowledged | resolved
    # when it was resolved (the resolving message's timestamp, epoch ms): an alert raised
    # no later than this is a late or redelivered copy and must not reopen it
    resolved_at_ms: int | None = None
    title: str = ""
    opened_at_ms: int | None = None  # the raising alert's event time
    acknowledged_by: str | None = None
    last_event_id: str | None = None  # the newest history event about it
    assignee: str | None = None  # who took it
    snoozed_until_ms: int | None = None
    acknowledged_at_ms: int | None = None  # the first acknowledgement (response reports)

    def current(self, now_ms: int) -> IncidentState:
        """As it stands at `now_ms`: a snooze that ran out is over (escalation re-armed)."""
        if self.status == "snoozed" and (self.snoozed_until_ms or 0) <= now_ms:
            status = "acknowledged" if self.acknowledged_by else "open"
            return replace(self, status=status, snoozed_until_ms=None)
        return self

    def view(self, incident_id: str) -> dict[str, Any]:
        """Its entry in `GET /api/v1/incidents` (the state `current` gives)."""
        opened = self.opened_at_ms
        return {
            "incident_id": incident_id,
            "status": self.status,
            "severity": self.severity,
            "site_id": self.site_id,
            "title": self.title,
            "opened_at": iso_ms(opened) if opened is not None else None,
            "acknowledged_by": self.acknowledged_by,
            "assignee": self.assignee,
            "suppressed": None,
            "snoozed_until": iso_ms(self.snoozed_until_ms) if self.snoozed_until_ms else None,
            "escalation_level": None,
            "last_event_id": self.last_event_id,
        }

    def outdates(self, raised_at_ms: int) -> bool:
        """True if this state is a resolution that an alert raised at `raised_at_ms`
        predates."""
        return (
            self.status == "resolved"
            and self.resolved_at_ms is not None
            and raised_at_ms <= self.resolved_at_ms
        )


def epoch_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


Key = tuple[str, str]  # tenant, incident id


Listing = list[tuple[str, "IncidentState"]]  # (incident id, state), newest opened first


class IncidentStore(Protocol):
    async def get(self, tenant: str, incident_id: str) -> IncidentState | None: ...

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None: ...

    async def get_many(self, keys: list[Key]) -> dict[Key, IncidentState | None]:
        """`get` for each key, in one round trip where there is one."""

    async def list(self, tenant: str, resolved: bool) -> list[tuple[str, IncidentState]]:
        """The tenant's incidents not resolved (or, `resolved`, the latest resolved ones),
        newest opened first."""

    async def page(
        self, tenant: str, resolved: bool, offset: int, count: int
    ) -> tuple[Listing, int | None]:
        """One page of `list`'s order from `offset`: its incidents and the offset of the
        next page (None: this was the last)."""

    async def opened_in(
        self, tenant: str, resolved: bool, start_ms: int, end_ms: int
    ) -> Sequence[str]:
        """The ids (no states) of the incidents `list` holds opened in [start_ms, end_ms)."""


def _order(items: Iterable[tuple[str, IncidentState]]) -> Listing:
    return sorted(items, key=lambda kv: kv[1].opened_at_ms or 0, reverse=True)


class MemoryIncidentStore:
    def __init__(self, maxsize: int = 200_000) -> None:
        self._items: Bounded[tuple[str, str], IncidentState] = Bounded(maxsize)
        self._by_tenant: dict[str, dict[str, None]] = {}

    async def get(self, tenant: str, incident_id: str) -> IncidentState | None:
        return self._items.get((tenant, incident_id))

    async def get_many(self, keys: list[Key]) -> dict[Key, IncidentState | None]:
        return {key: self._items.get(key) for key in keys}

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None:
        self._by_tenant.setdefault(tenant, {})[incident_id] = None
        for (old_tenant, old_id), _ in self._items.put((tenant, incident_id), state):
            self._by_tenant.get(old_tenant, {}).pop(old_id, None)

    async def list(self, tenant: str, resolved: bool) -> list[tuple[str, IncidentState]]:
        found = []
        for incident_id in self._by_tenant.get(tenant, {}):
            state = self._items.get((tenant, incident_id))
            if state is not None and (state.status == "resolved") == resolved:
                found.append((incident_id, state))
        ordered = _order(found)
        return ordered[:RESOLVED_KEPT] if resolved else ordered

    async def page(
        self, tenant: str, resolved: bool, offset: int, count: int
    ) -> tuple[Listing, int | None]:
        ordered = await self.list(tenant, resolved)
        nxt = offset + count
        return ordered[offset:nxt], nxt if nxt < len(ordered) else None

    async def opened_in(
        self, tenant: str, resolved: bool, start_ms: int, end_ms: int
    ) -> Sequence[str]:
        return [
            i
            for i, s in await self.list(tenant, resolved)
            if s.opened_at_ms is not None and start_ms <= s.opened_at_ms < end_ms
        ]


class RedisIncidentStore(HashStore[IncidentState | None]):
    """One hash per incident. Writes go through `writes`, so during a pipeline batch they
    are sent together (notify_core/redis/write_behind.py) and read back from there until then."""

    def __init__(self, redis: Redis, prefix: str, writes: WriteBehind | None = None) -> None:
        super().__init__(redis, prefix, "incident", _state, INCIDENT_TTL_S, writes)

    def _index(self, tenant: str, resolved: bool) -> str:
        return self._keys.incident_index(tenant, resolved)

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None:
        fields = {
            "site_id": state.site_id or "",
            "severity": state.severity,
            "status": state.status,
            "resolved_at_ms": "" if state.resolved_at_ms is None else str(state.resolved_at_ms),
            "title": state.title,
            "opened_at_ms": "" if state.opened_at_ms is None else str(state.opened_at_ms),
            "acknowledged_by": state.acknowledged_by or "",
            "last_event_id": state.last_event_id or "",
            "assignee": state.assignee or "",
            "snoozed_until_ms": ""
            if state.snoozed_until_ms is None
            else str(state.snoozed_until_ms),
            "acknowledged_at_ms": ""
            if state.acknowledged_at_ms is None
            else str(state.acknowledged_at_ms),
        }
        await self._put(tenant, incident_id, fields, state)
        resolved = state.status == "resolved"
        await self._writes.write(
            IndexMove(
                self._index(tenant, resolved),
                self._index(tenant, not resolved),
                incident_id,
                float(state.opened_at_ms or 0),
                RESOLVED_KEPT if resolved else 0,
                INCIDENT_TTL_S,
            )
        )

    async def list(self, tenant: str, resolved: bool) -> list[tuple[str, IncidentState]]:
        return (await self.page(tenant, resolved, 0, -1))[0]

    async def opened_in(
        self, tenant: str, resolved: bool, start_ms: int, end_ms: int
    ) -> Sequence[str]:
        """One read of the index (scored by opened time): no hash is read."""
        members: Any = await self._redis.zrangebyscore(
            self._index(tenant, resolved), start_ms, f"({end_ms}"
        )
        return [m.decode() if isinstance(m, bytes) else m for m in members]

    async def page(
        self, tenant: str, resolved: bool, offset: int, count: int
    ) -> tuple[Listing, int | None]:
        """`count` -1: to the end. Index entries whose hash expired are dropped here, and
        the next offset accounts for them."""
        index = self._index(tenant, resolved)
        stop = -1 if count < 0 else offset + count - 1
        members: Any = await self._redis.zrevrange(index, offset, stop)
        ids = [m.decode() if isinstance(m, bytes) else m for m in members]
        states = await self.get_many([(tenant, i) for i in ids])
        found, gone = [], []
        for incident_id in ids:
            state = states[(tenant, incident_id)]
            if state is None:
                gone.append(incident_id)  # its hash expired: forget it here too
            elif (state.status == "resolved") == resolved:
                found.append((incident_id, state))
        if gone:
            await self._redis.zrem(index, *gone)
        if count < 0 or len(ids) < count:
            return found, None
        return found, offset + len(ids) - len(gone)


def _state(raw: dict[Any, Any]) -> IncidentState | None:
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}
    resolved, opened = data.get("resolved_at_ms"), data.get("opened_at_ms")
    return IncidentState(
        data.get("site_id") or None,
        data["severity"],
        data["status"],
        int(resolved) if resolved else None,
        data.get("title", ""),
        int(opened) if opened else None,
        data.get("acknowledged_by") or None,
        data.get("last_event_id") or None,
        data.get("assignee") or None,
        int(data["snoozed_until_ms"]) if data.get("snoozed_until_ms") else None,
        int(data["acknowledged_at_ms"]) if data.get("acknowledged_at_ms") else None,
    )


class ReadAhead:
    """An IncidentStore whose reads during one pipeline batch come from one prefetch.

    The batch handler `prefetch`es the incidents its messages name (one round trip) and
    `forget`s them when the batch is done. Writes go straight through and update what was
    prefetched, so a later message of the same batch - or the threshold engine, which
    shares this object - reads what an earlier one wrote; anything not prefetched is read
    from the store. Only the pipeline writes incident state.
    """

    def __init__(self, store: IncidentStore) -> None:
        self.store = store
        self._known: dict[Key, IncidentState | None] = {}

    async def prefetch(self, keys: list[Key]) -> None:
        missing = [key for key in dict.fromkeys(keys) if key not in self._known]
        if missing:
            self._known.update(await self.store.get_many(missing))

    def forget(self) -> None:
        self._known.clear()

    async def get(self, tenant: str, incident_id: str) -> IncidentState | None:
        key = (tenant, incident_id)
        if key in self._known:
            return self._known[key]
        return await self.store.get(tenant, incident_id)

    async def get_many(self, keys: list[Key]) -> dict[Key, IncidentState | None]:
        return await self.store.get_many(keys)  # writes go through: the store is current

    async def list(self, tenant: str, resolved: bool) -> list[tuple[str, IncidentState]]:
        return await self.store.list(tenant, resolved)

    async def page(
        self, tenant: str, resolved: bool, offset: int, count: int
    ) -> tuple[Listing, int | None]:
        return await self.store.page(tenant, resolved, offset, count)

    async def opened_in(
        self, tenant: str, resolved: bool, start_ms: int, end_ms: int
    ) -> Sequence[str]:
        return await self.store.opened_in(tenant, resolved, start_ms, end_ms)

    async def put(self, tenant: str, incident_id: str, state: IncidentState) -> None:
        await self.store.put(tenant, incident_id, state)
        key = (tenant, incident_id)
        if key in self._known:  # otherwise the next get reads the store itself
            self._known[key] = state
