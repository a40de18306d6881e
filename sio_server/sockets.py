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
from notify_core.events import now_iso
from notify_core.history import History
from notify_core.ids import InvalidEventId, parse_id
from notify_core.rooms import (
    oncall_room,
    scope_room,
    site_room,
    tenant_room,
    user_room,
)
from sio_server.auth import Authenticator, AuthError, Principal
from sio_server.ratelimit import TokenBucket

log = logging.getLogger(__name__)

ActionSink = Callable[[Principal, str, str], Awaitable[None]]
MAX_SITES_PER_CALL = 500
REPLAY_PAGE = 500


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
    ) -> None:
        self.sio = sio
        self.auth = auth
        self.history = history
        self.action_sink = action_sink
        self.principals: dict[str, Principal] = {}
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
        self.principals[sid] = principal
        self._buckets[sid] = TokenBucket(*self._rate)
        if last_id is None:
            await self._join_default_rooms(sid, principal)
        # Sent after the CONNECT packet, so the client's handlers are in place.
        self.sio.start_background_task(self._after_connect, sid, principal, last_id)

    async def _join_default_rooms(self, sid: str, p: Principal) -> None:
        rooms = [tenant_room(p.tenant_id), user_room(p.tenant_id, p.user_id)]
        if p.sites is None:
            rooms.append(scope_room(p.tenant_id))
        else:
            rooms.extend(scope_room(p.tenant_id, s) for s in p.sites)
        if p.has_any_role("oncall"):
            rooms.append(oncall_room(p.tenant_id))
        for room in rooms:
            await self.sio.enter_room(sid, room)

    async def _after_connect(self, sid: str, p: Principal, last_id: Any) -> None:
        try:
            head = await self.history.last_id(p.tenant_id)
            await self.sio.emit(
                "connection_established",
                {
                    "id": head or "0-0",
                    "type": "connection_established",
                    "tenant_id": p.tenant_id,
                    "timestamp": now_iso(),
                    "user_id": p.user_id,
                    "roles": sorted(p.roles),
                    "sites": sorted(p.sites) if p.sites is not None else None,
                    "transport": self.sio.transport(sid),
                },
                to=sid,
            )
            if last_id is not None:
                await self._replay(sid, p, last_id, join_after=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("post-connect work failed for %s", sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        self.principals.pop(sid, None)
        self._buckets.pop(sid, None)

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
            if p.can_see_site(site) and _valid_ident(site):
                await self.sio.enter_room(sid, site_room(p.tenant_id, site))
                granted.append(site)
            else:
                denied.append(site)
        return {"ok": True, "granted": granted, "denied": denied}

    async def unsubscribe_kpis(self, sid: str, p: Principal, data: Any) -> dict[str, Any]:
        sites = _site_ids(data)
        for site in sites:
            if _valid_ident(site):
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
            if topic == "oncall" and p.has_any_role("oncall", "admin"):
                await self.sio.enter_room(sid, oncall_room(p.tenant_id))
                granted.append(topic)
            elif (
                topic.startswith("site:") and p.can_see_site(topic[5:]) and _valid_ident(topic[5:])
            ):
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
        if not isinstance(incident_id, str) or not _valid_ident(incident_id):
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
        replayed, recovered, reason = await self._replay(sid, p, last_id, join_after=False)
        result: dict[str, Any] = {"ok": True, "recovered": recovered, "replayed": replayed}
        if reason:
            result["reason"] = reason
        return result

    # -- replay ----------------------------------------------------------------
    async def _replay(
        self, sid: str, p: Principal, last_id: Any, join_after: bool
    ) -> tuple[int, bool, str | None]:
        """Send the events after `last_id` this principal may see, then `sync_complete`."""
        replayed, recovered, reason = 0, True, None
        try:
            after = parse_id(last_id)
        except InvalidEventId as exc:
            recovered, reason = False, f"invalid last_id: {exc}"
            after = None
        if after is not None:
            oldest = await self.history.oldest_id(p.tenant_id)
            if oldest is not None and parse_id(oldest) > after:
                recovered, reason = False, "history no longer reaches back to last_id"
            cursor = last_id
            cursor, replayed = await self._send_after(sid, p, cursor)
            if join_after:
                # Join, then read once more: what was stored between the first read and
                # the join is sent here; what comes after the join arrives live.
                await self._join_default_rooms(sid, p)
                cursor, more = await self._send_after(sid, p, cursor)
                replayed += more
        elif join_after:
            await self._join_default_rooms(sid, p)
        done: dict[str, Any] = {
            "id": await self.history.last_id(p.tenant_id) or "0-0",
            "type": "sync_complete",
            "tenant_id": p.tenant_id,
            "timestamp": now_iso(),
            "recovered": recovered,
            "replayed": replayed,
        }
        if reason:
            done["reason"] = reason
        await self.sio.emit("sync_complete", done, to=sid)
        return replayed, recovered, reason

    async def _send_after(self, sid: str, p: Principal, cursor: str) -> tuple[str, int]:
        sent = 0
        while True:
            page = await self.history.read_after(p.tenant_id, cursor, REPLAY_PAGE)
            for event in page:
                # KPI samples are state, not events: the snapshot covers them.
                if event["type"] != "kpi_update" and p.can_see(event):
                    await self.sio.emit(event["type"], event, to=sid)
                    sent += 1
            if page:
                cursor = page[-1]["id"]
            if len(page) < REPLAY_PAGE:
                return cursor, sent

    async def expire_sessions(self) -> int:
        """Disconnect connections whose token has expired; returns how many."""
        now = time.time()
        expired = [sid for sid, p in self.principals.items() if p.expires_at < now]
        for sid in expired:
            await self.sio.disconnect(sid)
        return len(expired)


def _valid_ident(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "_.-" for c in value)
