"""Socket.IO connection lifecycle: auth, rooms, `connection_established`, recovery.

Client events are answered through the ack callback by `sio_server.client_events`, the
same handlers every transport uses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import socketio

from notify_core.history.store import History
from notify_core.state.snapshots import SnapshotStore
from sio_server.admission.admit import Admission, Refused
from sio_server.admission.auth import Principal
from sio_server.admission.ratelimit import TokenBucket
from sio_server.client_events import ClientError, ClientEvents
from sio_server.follower import LogFollower
from sio_server.presence import Presence
from sio_server.replay import hello
from sio_server.socketio.recovery import DeliveryGate, Recovery

log = logging.getLogger(__name__)


class SioSession:
    """A Socket.IO connection as the client events see it (`client_events.Session`)."""

    __slots__ = ("_handlers", "bucket", "eio_sid", "principal", "remote", "sid", "viewing")

    def __init__(
        self,
        handlers: SocketHandlers,
        sid: str,
        eio_sid: str,
        principal: Principal,
        bucket: Any,
        remote: str | None = None,
    ) -> None:
        self._handlers = handlers
        self.sid, self.eio_sid, self.principal, self.bucket = sid, eio_sid, principal, bucket
        self.remote = remote
        self.viewing: set[str] = set()  # incidents this connection views

    @property
    def transport(self) -> str:
        return str(self._handlers.sio.transport(self.sid))

    async def join(self, room: str) -> None:
        await self._handlers.sio.enter_room(self.sid, room)

    async def leave(self, room: str) -> None:
        await self._handlers.sio.leave_room(self.sid, room)

    async def resync(self, last_id: Any, epoch: Any) -> dict[str, Any]:
        gate = self._handlers.gate
        if gate.holding(self.eio_sid):
            raise ClientError("a recovery is already under way on this connection")
        gate.close(self.eio_sid)
        return await self._handlers.recovery.recover(self.eio_sid, self.principal, last_id, epoch)

    def disconnect(self) -> None:
        self._handlers.sio.start_background_task(self._handlers.sio.disconnect, self.sid)


class SocketHandlers:
    """Binds the Socket.IO lifecycle to one AsyncServer; client events go to `events`."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        admission: Admission,
        presence: Presence,
        history: History,
        gate: DeliveryGate,
        events: ClientEvents,
        by_eio: dict[str, Principal],
        snapshots: SnapshotStore | None = None,
        follower: LogFollower | None = None,
        event_rate: float = 20.0,
        event_burst: float = 40.0,
    ) -> None:
        self.follower = follower
        self.sio = sio
        self.admission = admission
        self.presence = presence
        self.history = history
        self.snapshots = snapshots
        self.events = events
        self.sessions: dict[str, SioSession] = {}
        self._by_eio = by_eio  # engine.io sid -> principal, shared with the deliveries
        self.gate = gate
        self.recovery = Recovery(history, self.gate)
        self._rate = (event_rate, event_burst)
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        sio.on("*", self.on_any)

    @property
    def principals(self) -> dict[str, Principal]:
        return {sid: s.principal for sid, s in self.sessions.items()}

    # -- lifecycle -------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            token = (query.get("token") or [None])[0]
        remote = environ.get("REMOTE_ADDR")
        try:
            principal = await self.admission.admit(token, remote, "socket", sid)
        except Refused as exc:
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None
        last_id = auth.get("last_id") if isinstance(auth, dict) else None
        epoch = auth.get("epoch") if isinstance(auth, dict) else None
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        self.sessions[sid] = SioSession(
            self, sid, eio_sid, principal, TokenBucket(*self._rate), remote
        )
        self._by_eio[eio_sid] = principal
        # In the rooms now, so nothing live is missed; held until connection_established
        # (and the replay, when resuming) has been sent.
        self.gate.close(eio_sid)
        for room in principal.rooms:  # rooms_of(principal), computed once with it
            await self.sio.enter_room(sid, room)
        if self.follower is not None:
            await self.follower.follow(principal.tenant_id)
        self.presence.joined(principal)
        self.sio.start_background_task(self._after_connect, sid, eio_sid, principal, last_id, epoch)

    async def _after_connect(
        self, sid: str, eio_sid: str, p: Principal, last_id: Any, epoch: Any
    ) -> None:
        try:
            greeting, head = await hello(self.history, p, self.sio.transport(sid))
            await self.gate.send(eio_sid, "connection_established", greeting)
            if last_id is None:
                await self.gate.open(eio_sid, head)
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
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        await self.admission.leave(sid)
        self.presence.left(session.principal, session.viewing)
        if self.follower is not None:
            self.follower.unfollow(session.principal.tenant_id)
        self._by_eio.pop(session.eio_sid, None)
        self.gate.forget(session.eio_sid)

    async def on_any(self, event: str, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        session = self.sessions.get(sid)
        if session is None:
            return {"ok": False, "error": "not connected"}
        return await self.events.dispatch(session, event, data)

    async def expire_sessions(self) -> int:
        """Disconnect connections whose token has expired; returns how many."""
        now = time.time()
        expired = [sid for sid, s in self.sessions.items() if s.principal.expires_at < now]
        for sid in expired:
            await self.sio.disconnect(sid)
        return len(expired)
