"""Client -> server events, for every transport: one handler per event, one answer shape.

A transport (Socket.IO, the plain WebSocket) hands each client event to `ClientEvents.
dispatch` with its `Session`: the connection's principal, its rate bucket, and how it
joins and leaves rooms and replays history. The answer is `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`; Socket.IO sends it through the ack callback, the plain
WebSocket as a `<name>_result` frame. A malformed or unknown event is answered and
counted, never raised into the transport.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from notify_core.obs import metrics
from notify_core.obs.audit import Source
from notify_core.state.snapshots import SnapshotStore
from notify_core.state.timeline import Timeline
from notify_core.wire.events import ACTIONS, is_ident, is_incident_id, now_iso
from notify_core.wire.ids import InvalidEventId, parse_id
from notify_core.wire.rooms import oncall_room, site_room
from sio_server.admission.auth import Principal
from sio_server.admission.ratelimit import TokenBucket
from sio_server.deliveries import Deliveries
from sio_server.incident_actions import IncidentActions
from sio_server.presence import Presence, viewers_room

log = logging.getLogger(__name__)

MAX_SITES_PER_CALL = 500


class ClientError(Exception):
    """A client event we answer with `ok: false` and this message."""


class Session(Protocol):
    """What a client event may do to the connection it came on."""

    @property
    def principal(self) -> Principal: ...

    @property
    def bucket(self) -> TokenBucket: ...

    @property
    def transport(self) -> str:
        """The metrics label: `websocket`, `polling`, `ws`, `sse`."""

    @property
    def remote(self) -> str | None:
        """The peer's address (for the audit trail)."""

    async def join(self, room: str) -> None: ...

    async def leave(self, room: str) -> None: ...

    async def resync(self, last_id: Any, epoch: Any) -> dict[str, Any]:
        """Replay what was missed after `last_id`, then `sync_complete` (returned)."""

    def disconnect(self) -> None:
        """Close the connection soon (not from inside the handler's own await)."""

    @property
    def viewing(self) -> set[str]:
        """The incidents this connection views (`view_incident`)."""


def _site_ids(data: Any) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("site_ids"), list):
        raise ClientError("expected {site_ids: [string, ...]}")
    ids = data["site_ids"]
    if len(ids) > MAX_SITES_PER_CALL or not all(isinstance(s, str) and s for s in ids):
        raise ClientError(f"site_ids must be at most {MAX_SITES_PER_CALL} non-empty strings")
    return ids


Handler = Callable[[Session, Any], Awaitable[dict[str, Any]]]


class ClientEvents:
    def __init__(
        self,
        actions: IncidentActions,
        snapshots: SnapshotStore | None,
        timeline: Timeline | None,
        deliveries: Deliveries,
        presence: Presence,
    ) -> None:
        self.presence = presence
        self.actions = actions
        self.snapshots = snapshots
        self.timeline = timeline
        self.deliveries = deliveries
        self._handlers: dict[str, Handler] = {
            "subscribe_kpis": self.subscribe_kpis,
            "unsubscribe_kpis": self.unsubscribe_kpis,
            "subscribe": self.subscribe,
            "heartbeat": self.heartbeat,
            "incident_action": self.incident_action,
            "sync": self.sync,
            "received": self.received,
            "view_incident": self.view_incident,
            "unview_incident": self.unview_incident,
        }

    def knows(self, event: str) -> bool:
        return event in self._handlers

    async def dispatch(self, session: Session, event: str, data: Any) -> dict[str, Any]:
        """Rate limit (unknown events count too), expiry, then the handler's answer."""
        if not session.bucket.take():
            metrics.CLIENT_ERRORS.labels(self._label(event), "rate_limited").inc()
            return {"ok": False, "error": "rate limited: slow down"}
        handler = self._handlers.get(event)
        if handler is None:
            metrics.CLIENT_ERRORS.labels("unknown", "unknown_event").inc()
            return {"ok": False, "error": f"unknown event {event[:64]!r}"}
        if time.time() > session.principal.expires_at:
            metrics.CLIENT_ERRORS.labels(event, "token_expired").inc()
            session.disconnect()
            return {"ok": False, "error": "token expired"}
        try:
            return await handler(session, data)
        except ClientError as exc:
            metrics.CLIENT_ERRORS.labels(event, "bad_request").inc()
            return {"ok": False, "error": str(exc)}
        except asyncio.CancelledError:
            raise
        except Exception:
            metrics.CLIENT_ERRORS.labels(event, "internal").inc()
            log.exception("handler %s failed", event)
            return {"ok": False, "error": "internal error"}

    def _label(self, event: str) -> str:
        return event if event in self._handlers else "unknown"

    # -- the events --------------------------------------------------------------
    async def subscribe_kpis(self, s: Session, data: Any) -> dict[str, Any]:
        p = s.principal
        granted, denied = [], []
        for site in _site_ids(data):
            if p.can_see_site(site) and is_ident(site):
                await s.join(site_room(p.tenant_id, site))
                granted.append(site)
            else:
                denied.append(site)
        snapshot = {}
        if self.snapshots is not None and granted:
            snapshot = await self.snapshots.get(p.tenant_id, granted)
        return {"ok": True, "granted": granted, "denied": denied, "snapshot": snapshot}

    async def unsubscribe_kpis(self, s: Session, data: Any) -> dict[str, Any]:
        sites = _site_ids(data)
        for site in sites:
            if is_ident(site):
                await s.leave(site_room(s.principal.tenant_id, site))
        return {"ok": True, "removed": sites}

    async def subscribe(self, s: Session, data: Any) -> dict[str, Any]:
        """Topics: `oncall` (on-call or admin role) and `site:<site_id>` (= subscribe_kpis)."""
        p = s.principal
        if not isinstance(data, dict) or not isinstance(data.get("topics"), list):
            raise ClientError("expected {topics: [string, ...]}")
        topics = data["topics"]
        if len(topics) > MAX_SITES_PER_CALL or not all(isinstance(t, str) for t in topics):
            raise ClientError("topics must be a list of strings")
        granted, denied = [], []
        for topic in topics:
            if topic == "oncall" and p.has_any_role("oncall", "admin") and p.sites is None:
                await s.join(oncall_room(p.tenant_id))
                granted.append(topic)
            elif topic.startswith("site:") and p.can_see_site(topic[5:]) and is_ident(topic[5:]):
                await s.join(site_room(p.tenant_id, topic[5:]))
                granted.append(topic)
            else:
                denied.append(topic)
        return {"ok": True, "granted": granted, "denied": denied}

    async def heartbeat(self, s: Session, data: Any) -> dict[str, Any]:
        return {"ok": True, "type": "heartbeat_ack", "timestamp": now_iso()}

    async def incident_action(self, s: Session, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ClientError("expected {incident_id, action, note?, minutes?}")
        incident_id, action = data.get("incident_id"), data.get("action")
        if action not in ACTIONS:
            raise ClientError(f"action must be one of {', '.join(ACTIONS)}")
        source: Source = "ws" if s.transport == "ws" else "socket"
        outcome = await self.actions.act(
            s.principal,
            incident_id,
            action,
            source,
            s.remote,
            data.get("note"),
            data.get("minutes"),
        )
        if not outcome.ok:
            raise ClientError(outcome.error or "refused")
        return {"ok": True, "incident_id": incident_id, "action": action}

    async def sync(self, s: Session, data: Any) -> dict[str, Any]:
        last_id = data.get("last_id") if isinstance(data, dict) else None
        epoch = data.get("epoch") if isinstance(data, dict) else None
        done = await s.resync(last_id, epoch)
        result: dict[str, Any] = {
            "ok": True,
            "recovered": done["recovered"],
            "replayed": done["replayed"],
        }
        if "reason" in done:
            result["reason"] = done["reason"]
        return result

    async def view_incident(self, s: Session, data: Any) -> dict[str, Any]:
        """Join an incident's viewers (one it may see); they hear `incident_viewers`."""
        incident_id = data.get("incident_id") if isinstance(data, dict) else None
        if not is_incident_id(incident_id) or not await self.actions.may_see(
            s.principal, incident_id
        ):
            raise ClientError("no such incident")
        if incident_id not in s.viewing:
            s.viewing.add(incident_id)
            await s.join(viewers_room(s.principal.tenant_id, incident_id))
            self.presence.view(s.principal, incident_id)
        return {"ok": True, "incident_id": incident_id}

    async def unview_incident(self, s: Session, data: Any) -> dict[str, Any]:
        incident_id = data.get("incident_id") if isinstance(data, dict) else None
        if not isinstance(incident_id, str) or incident_id not in s.viewing:
            raise ClientError("not viewing that incident")
        s.viewing.discard(incident_id)
        await s.leave(viewers_room(s.principal.tenant_id, incident_id))
        self.presence.unview(s.principal, incident_id)
        return {"ok": True, "incident_id": incident_id}

    async def received(self, s: Session, data: Any) -> dict[str, Any]:
        """Delivery confirmation of an alert with `requires_acknowledgment`."""
        p = s.principal
        event_id = data.get("id") if isinstance(data, dict) else None
        try:
            parse_id(event_id)
        except InvalidEventId as exc:
            raise ClientError(f"id: {exc}") from None
        assert isinstance(event_id, str)
        entry = self.deliveries.confirm(p.tenant_id, p.user_id, event_id)
        incident = self.deliveries.incident_of.get((p.tenant_id, event_id))
        if entry is not None and incident and self.timeline is not None:
            await self.timeline.add(
                p.tenant_id,
                incident,
                "delivery_confirmed",
                user=p.user_id,
                event_id=event_id,
                after_s=round(entry["confirmed_at"] - entry["delivered_at"], 3),
            )
        known = self.deliveries.was_delivered(p.tenant_id, p.user_id, event_id)
        return {"ok": True, "id": event_id, "confirmed": known}
