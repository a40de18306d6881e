"""Socket.IO connection lifecycle and client events.

Every client event is answered through its ack callback with `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`; a malformed or unknown event is answered and
counted, never raised into python-socketio.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import socketio

from notify_core import metrics
from notify_core.events import connection_established, is_ident, now_iso
from notify_core.history import History
from notify_core.ids import InvalidEventId, format_id, parse_id
from notify_core.rooms import (
    oncall_room,
    role_room,
    scope_room,
    site_room,
    tenant_room,
    user_room,
)
from notify_core.snapshots import SnapshotStore
from notify_core.timeline import Timeline
from sio_server.auth import Authenticator, AuthError, Principal
from sio_server.deliveries import Deliveries
from sio_server.follower import LogFollower
from sio_server.ratelimit import TokenBucket
from sio_server.recovery import DeliveryGate, Recovery

log = logging.getLogger(__name__)

ActionSink = Callable[[Principal, str, str], Awaitable[None]]
MAX_SITES_PER_CALL = 500


class ClientError(Exception):
    """A client event we answer with `ok: false` and this message."""


def _site_ids(data: Any) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("site_ids"), list):
        raise ClientError("expected {site_ids: [string, ...]}")
    ids = data["site_ids"]
    if len(ids) > MAX_SITES_PER_CALL or not all(isinstance(s, str) and s for s in ids):
        raise ClientError(f"site_ids must be at most {MAX_SITES_PER_CALL} non-empty strings")
    return ids


class SocketHandlers:
    """Binds our handlers to one AsyncServer and keeps per-connection state."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        auth: Authenticator,
        history: History,
        action_sink: ActionSink | None = None,
        event_rate: float = 20.0,
        event_burst: float = 40.0,
        snapshots: SnapshotStore | None = None,
        timeline: Timeline | None = None,
        ack_tracking_pairs: int = 200_000,
    ) -> None:
        self.timeline = timeline
        self.follower: LogFollower | None = None
        self.sio = sio
        self.auth = auth
        self.history = history
        self.action_sink = action_sink
        self.snapshots = snapshots
        self.principals: dict[str, Principal] = {}
        self._eio: dict[str, str] = {}
        self._by_eio: dict[str, Principal] = {}
        self.gate = DeliveryGate(sio)
        self.recovery = Recovery(history, self.gate)
        self.deliveries = Deliveries(self._by_eio.get, ack_tracking_pairs)
        self.gate.observer = self.deliveries.on_packet
        self._buckets: dict[str, TokenBucket] = {}
        self._rate = (event_rate, event_burst)
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        sio.on("*", self.on_any)
        self._handlers: dict[str, Callable[[str, Principal, Any], Awaitable[dict[str, Any]]]] = {
            "subscribe_kpis": self.subscribe_kpis,
            "unsubscribe_kpis": self.unsubscribe_kpis,
            "subscribe": self.subscribe,
            "heartbeat": self.heartbeat,
            "incident_action": self.incident_action,
            "sync": self.sync,
            "received": self.received,
        }

    # -- lifecycle -------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            token = (query.get("token") or [None])[0]
        try:
            principal = self.auth.verify(token)
        except AuthError as exc:
            metrics.AUTH_FAILURES.labels("socket", exc.reason.split(":")[0]).inc()
            log.info("connection refused: %s", exc.reason)
            raise socketio.exceptions.ConnectionRefusedError("authentication failed") from None
        last_id = auth.get("last_id") if isinstance(auth, dict) else None
        epoch = auth.get("epoch") if isinstance(auth, dict) else None
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        self.principals[sid] = principal
        self._eio[sid] = eio_sid
        self._by_eio[eio_sid] = principal
        self._buckets[sid] = TokenBucket(*self._rate)
        # In the rooms now, so nothing live is missed; held until connection_established
        # (and the replay, when resuming) has been sent.
        self.gate.close(eio_sid)
        await self._join_default_rooms(sid, principal)
        if self.follower is not None:
            await self.follower.follow(principal.tenant_id)
        self.sio.start_background_task(self._after_connect, sid, eio_sid, principal, last_id, epoch)

    async def _join_default_rooms(self, sid: str, p: Principal) -> None:
        rooms = [tenant_room(p.tenant_id), user_room(p.tenant_id, p.user_id)]
        if p.sites is None:
            rooms.append(scope_room(p.tenant_id))
            # escalations may name any site: only users who may see every site get them
            # through the on-call and role rooms
            rooms.extend(role_room(p.tenant_id, role) for role in sorted(p.roles))
            if p.has_any_role("oncall"):
                rooms.append(oncall_room(p.tenant_id))
        else:
            rooms.extend(scope_room(p.tenant_id, s) for s in p.sites)
        for room in rooms:
            await self.sio.enter_room(sid, room)

    async def _after_connect(
        self, sid: str, eio_sid: str, p: Principal, last_id: Any, epoch: Any
    ) -> None:
        try:
            position = await self.history.position(p.tenant_id)
            head = format_id(position.last_id) if position.last_id else None
            hello = connection_established(
                p.tenant_id,
                p.user_id,
                p.roles,
                p.sites,
                head,
                position.epoch,
                self.sio.transport(sid),
            )
            await self.gate.send(eio_sid, "connection_established", hello)
            if last_id is None:
                await self.gate.open(eio_sid, position.last_id)
                return
            snapshot = None
            if p.sites is not None and self.snapshots is not None:
                snapshot = await self.snapshots.get(p.tenant_id, sorted(p.sites))
            await self.recovery.recover(eio_sid, p, last_id, epoch, snapshot)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("post-connect work failed for %s", sid)
            await self.gate.open(eio_sid, None)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        principal = self.principals.pop(sid, None)
        self._buckets.pop(sid, None)
        if principal is not None and self.follower is not None:
            self.follower.unfollow(principal.tenant_id)
        eio_sid = self._eio.pop(sid, None)
        if eio_sid is not None:
            self._by_eio.pop(eio_sid, None)
            self.gate.forget(eio_sid)

    # -- dispatch --------------------------------------------------------------
    async def on_any(self, event: str, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        principal = self.principals.get(sid)
        if principal is None:
            return {"ok": False, "error": "not connected"}
        handler = self._handlers.get(event)
        if handler is None:
            metrics.CLIENT_ERRORS.labels("unknown", "unknown_event").inc()
            return {"ok": False, "error": f"unknown event {event[:64]!r}"}
        bucket = self._buckets.get(sid)
        if bucket is not None and not bucket.take():
            metrics.CLIENT_ERRORS.labels(event, "rate_limited").inc()
            return {"ok": False, "error": "rate limited: slow down"}
        if time.time() > principal.expires_at:
            metrics.CLIENT_ERRORS.labels(event, "token_expired").inc()
            self.sio.start_background_task(self.sio.disconnect, sid)
            return {"ok": False, "error": "token expired"}
        try:
            return await handler(sid, principal, data)
        except ClientError as exc:
            metrics.CLIENT_ERRORS.labels(event, "bad_request").inc()
            return {"ok": False, "error": str(exc)}
        except asyncio.CancelledError:
            raise
        except Exception:
            metrics.CLIENT_ERRORS.labels(event, "internal").inc()
            log.exception("handler %s failed", event)
            return {"ok": False, "error": "internal error"}

    # -- client events ---------------------------------------------------------
    async def subscribe_kpis(self, sid: str, p: Principal, data: Any) -> dict[str, Any]:
        granted, denied = [], []
        for site in _site_ids(data):
            if p.can_see_site(site) and is_ident(site):
                await self.sio.enter_room(sid, site_room(p.tenant_id, site))
                granted.append(site)
            else:
                denied.append(site)
        snapshot = {}
        if self.snapshots is not None and granted:
            snapshot = await self.snapshots.get(p.tenant_id, granted)
        return {"ok": True, "granted": granted, "denied": denied, "snapshot": snapshot}

    async def unsubscribe_kpis(self, sid: str, p: Principal, data: Any) -> dict[str, Any]:
        sites = _site_ids(data)
        for site in sites:
            if is_ident(site):
                await self.sio.leave_room(sid, site_room(p.tenant_id, site))
        return {"ok": True, "removed": sites}

    async def subscribe(self, sid: str, p: Principal, data: Any) -> dict[str, Any]:
        """Topics: `oncall` (on-call or admin role) and `site:<site_id>` (= subscribe_kpis)."""
        if not isinstance(data, dict) or not isinstance(data.get("topics"), list):
            raise ClientError("expected {topics: [string, ...]}")
        topics = data["topics"]
        if len(topics) > MAX_SITES_PER_CALL or not all(isinstance(t, str) for t in topics):
            raise ClientError("topics must be a list of strings")
        granted, denied = [], []
        for topic in topics:
            if topic == "oncall" and p.has_any_role("oncall", "admin") and p.sites is None:
                await self.sio.enter_room(sid, oncall_room(p.tenant_id))
                granted.append(topic)
            elif topic.startswith("site:") and p.can_see_site(topic[5:]) and is_ident(topic[5:]):
                await self.sio.enter_room(sid, site_room(p.tenant_id, topic[5:]))
                granted.append(topic)
            else:
                denied.append(topic)
        return {"ok": True, "granted": granted, "denied": denied}

    async def heartbeat(self, sid: str, p: Principal, data: Any) -> dict[str, Any]:
        return {"ok": True, "type": "heartbeat_ack", "timestamp": now_iso()}

    async def incident_action(self, sid: str, p: Principal, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ClientError("expected {incident_id, action}")
        incident_id, action = data.get("incident_id"), data.get("action")
        if not is_ident(incident_id):
            raise ClientError("incident_id must be an id string")
        if action not in ("acknowledge", "resolve"):
            raise ClientError("action must be 'acknowledge' or 'resolve'")
        if not p.has_any_role("operator", "oncall", "admin"):
            raise ClientError("forbidden: needs role operator, oncall or admin")
        if self.action_sink is None:
            raise ClientError("incident actions are not available on this server")
        await self.action_sink(p, incident_id, action)
        return {"ok": True, "incident_id": incident_id, "action": action}

    async def sync(self, sid: str, p: Principal, data: Any) -> dict[str, Any]:
        last_id = data.get("last_id") if isinstance(data, dict) else None
        epoch = data.get("epoch") if isinstance(data, dict) else None
        eio_sid = self._eio[sid]
        if self.gate.holding(eio_sid):
            raise ClientError("a recovery is already under way on this connection")
        self.gate.close(eio_sid)
        done = await self.recovery.recover(eio_sid, p, last_id, epoch)
        result: dict[str, Any] = {
            "ok": True,
            "recovered": done["recovered"],
            "replayed": done["replayed"],
        }
        if "reason" in done:
            result["reason"] = done["reason"]
        return result

    async def received(self, sid: str, p: Principal, data: Any) -> dict[str, Any]:
        """Delivery confirmation of an alert with `requires_acknowledgment`."""
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

    async def expire_sessions(self) -> int:
        """Disconnect connections whose token has expired; returns how many."""
        now = time.time()
        expired = [sid for sid, p in self.principals.items() if p.expires_at < now]
        for sid in expired:
            await self.sio.disconnect(sid)
        return len(expired)
