"""Connections of the transports that are not Socket.IO: the plain WebSocket and SSE.

One `StreamConnection` owns what a connection is (its principal, rooms, rate bucket, and
a recovery hold of typed events) and writes through a `Codec` onto its socket; the
`ConnectionHub` keeps the room index and fans an event out, encoded once per codec, to
every member (python-socketio keeps the same bookkeeping for Socket.IO connections; the
delivery gate plays the hold's part there). A transport module only accepts the
connection, authenticates it, and feeds client frames in: rooms, visibility (`rooms_of`,
the same rooms as Socket.IO), resume (`sio_server.socketio.recovery.resume`) and client events
(`sio_server.client_events`) are the same code for every transport.

Writes go to the socket's transport, corked until the next flush (`sio_server.socketio.corking`: a
burst leaves in one write per socket): fan-out never awaits per recipient, and every write of a
connection, live or replayed, goes the same way, so events leave in the order written.
A client that stops reading is cut off at a bound of unsent
bytes; it reconnects with its last id and resumes from history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson

from notify_core.history.store import History
from notify_core.lifecycle import Background
from notify_core.obs import metrics
from notify_core.wire.ids import parse_id
from sio_server.admission.auth import Principal
from sio_server.admission.ratelimit import TokenBucket
from sio_server.client_events import ClientError
from sio_server.deliveries import Deliveries
from sio_server.presence import Presence
from sio_server.replay import hello, resume
from sio_server.socketio.corking import Corker

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0


class Codec(Protocol):
    """How one transport frames an event (encoded once per emit, shared by recipients)."""

    name: str  # the transport's metrics label

    def frame(self, event: dict[str, Any], body: bytes, resume_point: bool = True) -> bytes:
        """The bytes of `event` (`body`: its JSON) on this transport's wire; without
        `resume_point` it must not move the client's resume position (SSE's `id:`)."""

    def keepalive(self) -> bytes | None:
        """Bytes that keep an idle connection open through proxies, if the transport
        needs them (SSE's comment line)."""


class StreamConnection:
    """One plain-WebSocket or SSE connection."""

    __slots__ = (
        "_close",
        "_done",
        "_transport",
        "bucket",
        "closed",
        "codec",
        "held",
        "hub",
        "principal",
        "remote",
        "rooms",
        "viewing",
    )

    def __init__(
        self,
        hub: ConnectionHub,
        principal: Principal,
        codec: Codec,
        transport: asyncio.Transport,
        remote: str | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.hub = hub
        self.principal = principal
        self.codec = codec
        self._transport = transport
        self._close = close
        self.remote = remote
        self.rooms: set[str] = set()
        self.bucket = TokenBucket(*hub.event_rate)
        self.held: list[dict[str, Any]] | None = []  # held while resuming; None: live
        self.closed = False
        self.viewing: set[str] = set()  # incidents this connection views
        # resolved when the connection is closed, from either side (made when first
        # awaited: an idle Event costs ~1 KB, and only SSE's handler waits on it)
        self._done: asyncio.Future[None] | None = None

    @property
    def transport(self) -> str:
        return self.codec.name

    async def wait_closed(self) -> None:
        if self.closed:
            return
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._done)

    # -- client_events.Session ----------------------------------------------------
    async def join(self, room: str) -> None:
        self.hub.join(self, room)

    async def leave(self, room: str) -> None:
        self.hub.leave(self, room)

    async def resync(self, last_id: Any, epoch: Any) -> dict[str, Any]:
        if self.held is not None:
            raise ClientError("a recovery is already under way on this connection")
        self.held = []
        return await self.hub.resume(self, last_id, epoch)

    def disconnect(self) -> None:
        self.abort()

    # -- writing ---------------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Queue `data` on the socket; False (and the connection cut off) when the client
        has not read what it was sent before."""
        t = self._transport
        if self.closed or t.is_closing():
            return False
        if t.get_write_buffer_size() > self.hub.buffer_limit:
            metrics.SLOW_CLIENTS.labels(self.codec.name).inc()
            log.warning(
                "cutting off a %s client of %s: more than %d bytes unsent; it can resume",
                self.codec.name,
                self.principal.tenant_id,
                self.hub.buffer_limit,
            )
            self.abort(hard=True)
            return False
        self.hub.cork(self, data)
        return True

    def send(self, event: dict[str, Any], resume_point: bool = True) -> None:
        """Write one event past the hold (a replayed event, a marker)."""
        if self.write(self.codec.frame(event, orjson.dumps(event), resume_point)):
            self.hub.deliveries.on_event(self.principal.user_id, event)

    def release(self, after: tuple[int, int] | None) -> None:
        """Send what was held while resuming (newer than `after`, in id order), then go
        live. No await inside: nothing emitted meanwhile can slip past."""
        held, self.held = self.held or [], None
        stored = [e for e in held if e.get("id")]
        for event in sorted(stored, key=lambda e: parse_id(e["id"])):
            if after is not None and parse_id(event["id"]) <= after:
                continue  # already replayed
            self.send(event)
        for event in held:  # presence and the like: not in the history, no id to order by
            if not event.get("id"):
                self.send(event)

    def abort(self, hard: bool = False) -> None:
        """Leave every room and close (`hard`: drop the socket, unsent bytes too)."""
        if self.closed:
            return
        self.closed = True
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        self.hub.remove(self)
        if hard:
            self._transport.abort()
        elif self._close is not None:
            self._close()
        else:
            self._transport.close()


def _open_transport(conn: StreamConnection) -> asyncio.Transport | None:
    return None if conn.closed else conn._transport


class ConnectionHub:
    """The room index of every StreamConnection of this process, and their fan-out."""

    def __init__(
        self,
        history: History,
        deliveries: Deliveries,
        presence: Presence,
        event_rate: tuple[float, float] = (20.0, 40.0),
        buffer_limit: int = 4 * 1024 * 1024,
        coalesce_s: float = 0.002,
    ) -> None:
        self.history = history
        self.deliveries = deliveries
        self.presence = presence
        self.event_rate = event_rate
        self.buffer_limit = buffer_limit
        self._rooms: dict[str, set[StreamConnection]] = {}
        self.connections: set[StreamConnection] = set()
        self._keepalive = Background("stream-keepalive", self._keep_alive)
        # bytes waiting for the next flush, per connection: the events of a burst (and a
        # replay) leave in one write per socket, in the order written; a connection
        # closed meanwhile gets nothing more
        self._corker: Corker[StreamConnection] = Corker(_open_transport, coalesce_s)
        self.cork = self._corker.cork  # (conn, bytes): one call less per recipient

    def flush(self) -> None:
        """Write what was corked, one write per socket."""
        self._corker.flush()

    def join(self, conn: StreamConnection, room: str) -> None:
        if conn.closed:
            return
        conn.rooms.add(room)
        self._rooms.setdefault(room, set()).add(conn)

    def leave(self, conn: StreamConnection, room: str) -> None:
        conn.rooms.discard(room)
        members = self._rooms.get(room)
        if members is not None:
            members.discard(conn)
            if not members:
                del self._rooms[room]

    def remove(self, conn: StreamConnection) -> None:
        for room in list(conn.rooms):
            self.leave(conn, room)
        if conn in self.connections:
            self.connections.discard(conn)
            self.presence.left(conn.principal, conn.viewing)

    def by_transport(self) -> Iterator[tuple[str, str]]:
        """(tenant, transport) of each connection, for the connections gauge."""
        for conn in list(self.connections):
            yield conn.principal.tenant_id, conn.codec.name

    async def open(
        self, conn: StreamConnection, last_id: Any = None, epoch: Any = None
    ) -> dict[str, Any] | None:
        """Join the principal's rooms (held), send `connection_established`, resume when
        `last_id` is given, then go live. Returns the `sync_complete` of a resume."""
        self.connections.add(conn)
        self.presence.joined(conn.principal)
        for room in conn.principal.rooms:  # rooms_of, computed with the principal
            self.join(conn, room)
        p = conn.principal
        try:
            greeting, head = await hello(self.history, p, conn.transport)
            # on a resume the head is not where this client stands: the replay is
            conn.send(greeting, resume_point=last_id is None)
            if last_id is None:
                conn.release(head)
                return None
            return await self.resume(conn, last_id, epoch)
        except BaseException:
            conn.release(None)
            raise

    async def resume(self, conn: StreamConnection, last_id: Any, epoch: Any) -> dict[str, Any]:
        """Replay after `last_id`, `sync_complete`, release the hold (which must be on)."""

        async def send(event: dict[str, Any]) -> None:
            conn.send(event)

        try:
            resumed = await resume(self.history, conn.principal, last_id, epoch, send)
        except BaseException:
            conn.release(None)
            raise
        conn.send(resumed.done)
        conn.release(resumed.last)
        return resumed.done

    def emit(self, event: dict[str, Any], rooms: list[str]) -> int:
        """Write `event` to every connection in `rooms`; returns how many got it."""
        if not self._rooms:
            return 0
        members: set[StreamConnection] = set()
        for room in rooms:
            found = self._rooms.get(room)
            if found:
                members |= found
        if not members:
            return 0
        body = orjson.dumps(event)
        frames: dict[Codec, bytes] = {}
        # users whose (event, user) pair is noted, for events requiring acknowledgment
        acked: list[str] | None = [] if self.deliveries.wants(event) else None
        n = 0
        for conn in members:
            if conn.held is not None:
                conn.held.append(event)
                n += 1
                continue
            frame = frames.get(conn.codec)
            if frame is None:
                frame = frames[conn.codec] = conn.codec.frame(event, body)
            if conn.write(frame):
                n += 1
                if acked is not None:
                    acked.append(conn.principal.user_id)
        if acked and (ack_key := self.deliveries.key_of(event)) is not None:
            self.deliveries.delivered_users(ack_key, acked)
        metrics.DELIVERIES.labels("stream").inc(n)
        return n

    async def start(self) -> None:
        await self._keepalive.start()

    async def stop(self) -> None:
        self.flush()
        await self._keepalive.stop()
        for conn in list(self.connections):
            conn.abort()

    async def _keep_alive(self) -> None:
        """Once a second, close what the peer closed (SSE has no read loop to see it);
        every KEEPALIVE_S, the codecs' keep-alive bytes to idle connections."""
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            beat = ticks % int(KEEPALIVE_S) == 0
            for conn in list(self.connections):
                if conn._transport.is_closing():
                    conn.abort(hard=True)
                    continue
                data = conn.codec.keepalive() if beat else None
                if data is not None and conn.held is None:
                    conn.write(data)
