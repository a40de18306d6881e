"""Delivery confirmation of alerts that require acknowledgment.

The gate reports every packet it lets through to a connection; for events with
`requires_acknowledgment` we note (event, user) as delivered, and the client's
`received {id}` marks it confirmed. Rates are exported to Prometheus; `status()` gives
the per-user view (for the incident timeline). Kept per server process, bounded by the
number of (event, user) pairs, not of events: one alert to 1000 dashboards is 1000 pairs.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import orjson

from notify_core.obs import metrics

MARKER = '"requires_acknowledgment":true'


class Deliveries:
    def __init__(self, principal_of: Any, max_entries: int = 200_000) -> None:
        self._principal_of = principal_of  # eio_sid -> Principal | None
        # (tenant, event id) -> {user: [delivered_at, confirmed_at or 0.0]}, oldest first
        self._events: OrderedDict[tuple[str, str], dict[str, list[float]]] = OrderedDict()
        self._max = max_entries
        self._entries = 0
        self._last_pkt: tuple[int, tuple[str, str] | None] = (0, None)
        self.incident_of: dict[tuple[str, str], str] = {}
        self.delivered_total = 0
        self.confirmed_total = 0

    def on_packet(self, eio_sid: str, pkt: Any) -> None:
        """A Socket.IO packet let through to a connection (the gate's observer)."""
        data = getattr(pkt, "data", None)
        if not isinstance(data, str) or MARKER not in data:
            return
        if self._last_pkt[0] == id(pkt):
            key = self._last_pkt[1]
        else:
            try:
                key = self.key_of(orjson.loads(data[1:])[1])
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                key = None
            self._last_pkt = (id(pkt), key)
        if key is not None:
            self.delivered_to_many(key, [eio_sid])

    @staticmethod
    def wants(event: dict[str, Any]) -> bool:
        """Whether deliveries of `event` are tracked (it requires acknowledgment): the one
        rule, for every transport."""
        return bool(event.get("requires_acknowledgment") and event.get("id"))

    def key_of(self, event: dict[str, Any]) -> tuple[str, str] | None:
        """The pairs' key of a tracked event, its incident noted (call it once the event
        reached someone: `incident_of` is forgotten with the pairs); None for any other."""
        if not self.wants(event):
            return None
        key = (event["tenant_id"], event["id"])
        incident = (event.get("incident") or {}).get("incident_id")
        if incident:
            self.incident_of[key] = incident
        return key

    def delivered_to_many(self, key: tuple[str, str], eio_sids: list[str]) -> None:
        """One event handed to these Socket.IO connections (the live fan-out computes the
        key once per event, not per recipient)."""
        principal_of = self._principal_of
        principals = [principal_of(sid) for sid in eio_sids]
        self.delivered_users(key, [p.user_id for p in principals if p is not None])

    def delivered_users(self, key: tuple[str, str], user_ids: list[str]) -> None:
        """One event handed to connections of these users (a user with many connections
        is noted once)."""
        for user_id in dict.fromkeys(user_ids):
            self._delivered(key, user_id)

    def on_event(self, user_id: str, event: dict[str, Any]) -> None:
        """A stored event written to a connection of another transport (plain WebSocket,
        SSE): noted like a packet when it requires acknowledgment."""
        key = self.key_of(event)
        if key is not None:
            self._delivered(key, user_id)

    def _delivered(self, key: tuple[str, str], user_id: str) -> None:
        users = self._events.get(key)
        if users is None:
            users = self._events[key] = {}
        if user_id not in users:
            users[user_id] = [time.time(), 0.0]
            self._entries += 1
            self.delivered_total += 1
            metrics.ACK_DELIVERED.inc()
            while self._entries > self._max and len(self._events) > 1:
                old, gone = self._events.popitem(last=False)
                self._entries -= len(gone)
                self.incident_of.pop(old, None)

    def confirm(self, tenant: str, user: str, event_id: str) -> dict[str, float] | None:
        """Mark (event, user) confirmed; the entry when it is new, else None."""
        users = self._events.get((tenant, event_id))
        if users is None or user not in users:
            return None
        entry = users[user]
        if entry[1]:
            return None
        entry[1] = time.time()
        self.confirmed_total += 1
        metrics.ACK_CONFIRMED.inc()
        metrics.ACK_CONFIRM_SECONDS.observe(entry[1] - entry[0])
        return _view(entry)

    def was_delivered(self, tenant: str, user: str, event_id: str) -> bool:
        return user in self._events.get((tenant, event_id), {})

    def status(self, tenant: str, event_id: str) -> dict[str, dict[str, float]]:
        return {u: _view(v) for u, v in self._events.get((tenant, event_id), {}).items()}

    @property
    def tracked_pairs(self) -> int:
        return self._entries

    def ratio(self) -> float:
        return self.confirmed_total / self.delivered_total if self.delivered_total else 1.0


def _view(entry: list[float]) -> dict[str, float]:
    view = {"delivered_at": entry[0]}
    if entry[1]:
        view["confirmed_at"] = entry[1]
    return view
