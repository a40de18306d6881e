"""The emit path: an event is encoded and framed once, then written to each recipient.

python-socketio's room emit creates one task per recipient, which puts the packet on
the engine.io socket's queue, whose writer task wakes (through `wait_for`) and sends
it: at 1000 clients that was half of the CPU per delivered message
(docs/performance.md). Here an event is serialised once and framed once as a WebSocket
text frame (RFC 6455: unmasked, uncompressed), and written with `transport.write` to
every WebSocket recipient whose engine.io writer is idle - nothing queued and nothing in
flight, so order is kept. Everything else (polling, an upgrade in progress, a queue not
yet flushed, compression negotiated) goes on engine.io's queue for that socket, in the
same loop and without a task per recipient: put there directly when engine.io's `send`
would just put it (`socket_queue.enqueue`), through `send` otherwise. A connection
being recovered has its packets held by the delivery gate, as before.

Backpressure: a client that does not read stops at a bound (unsent bytes on its socket,
or queued packets for polling) and is cut off instead of growing memory or holding up
the others; it reconnects with its last id and recovers from history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import socketio
from engineio import packet as eio_packet

from notify_core.obs import metrics
from sio_server.deliveries import Deliveries
from sio_server.frames import text_frame
from sio_server.socketio.corking import Corker
from sio_server.socketio.socket_queue import enqueue

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DirectSocket:
    """A WebSocket connection we may write frames to ourselves."""

    socket: Any  # engineio.async_socket.AsyncSocket
    transport: asyncio.Transport

    def idle(self) -> bool:
        """True when engine.io has nothing queued or in flight for this connection.

        The writer task parks in `queue.get()` (a `SocketQueue`); while it holds packets
        (woken, or sending a batch) it is not parked, so a direct write would overtake them.
        """
        s = self.socket
        if not s.upgraded or s.upgrading or s.closing or s.closed:
            return False
        parked: bool = s.queue.parked()
        return parked


def encode_event(name: str, data: Any) -> tuple[bytes, Any]:
    """The socket.io EVENT `[name, data]` on the default namespace: its JSON body, and the
    engine.io MESSAGE packet carrying it (`42[...]` on the wire)."""
    body = orjson.dumps([name, data])
    return body, eio_packet.Packet(eio_packet.MESSAGE, "2" + body.decode())


def _itself(transport: asyncio.Transport) -> asyncio.Transport:
    return transport


class Fanout:
    """Delivers one event to the local members of a set of rooms."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        direct: dict[str, DirectSocket],
        held_for: Callable[[str], list[Any] | None],
        send_queued: Callable[[str, Any], Any],
        deliveries: Deliveries,
        buffer_limit: int,
        queue_limit: int,
        enabled: bool = True,
        coalesce_s: float = 0.002,
    ) -> None:
        self._sio = sio
        self._direct = direct
        self._held_for = held_for
        self._send_queued = send_queued
        self._deliveries = deliveries
        self.buffer_limit = buffer_limit
        self.queue_limit = queue_limit
        self.enabled = enabled
        self._cut: set[str] = set()
        # frames waiting for the next flush, per transport: events emitted close together
        # leave in one write per socket
        self._corker: Corker[asyncio.Transport] = Corker(_itself, coalesce_s, metrics.SOCKET_WRITES)

    async def emit(self, event: dict[str, Any], rooms: list[str]) -> int:
        """Send `event` to every local connection in `rooms`; returns how many got it."""
        manager = self._sio.manager
        if "/" not in manager.rooms:
            return 0
        body, pkt = encode_event(event["type"], event)
        frame = text_frame(b"42" + body) if self.enabled else b""
        # the connections whose (event, user) pair is noted, for events requiring
        # acknowledgment: noted together after the loop
        tracked: list[str] | None = [] if self._deliveries.wants(event) else None
        direct_n = queued_n = held_n = 0
        slow: list[tuple[str, str]] = []
        sockets, now = self._sio.eio.sockets, time.time()
        corker = self._corker
        for _sid, eio_sid in manager.get_participants("/", rooms):
            held = self._held_for(eio_sid)
            if held is not None:
                held.append(pkt)  # the gate reports it when it lets it through
                held_n += 1
                continue
            if tracked is not None:
                tracked.append(eio_sid)
            d = self._direct.get(eio_sid) if self.enabled else None
            if d is not None:
                transport = d.transport
                corked = corker.corked(transport)
                # frames already corked for it: this one follows them, whatever else
                # engine.io has queued since (acks, pings) may leave first
                if corked is not None or d.idle():
                    if transport.is_closing():
                        continue
                    if transport.get_write_buffer_size() > self.buffer_limit:
                        slow.append((eio_sid, "websocket"))
                        continue
                    corker.cork(transport, frame)
                    direct_n += 1
                    continue
            socket = sockets.get(eio_sid)
            if socket is not None:
                if socket.queue.qsize() > self.queue_limit:
                    slow.append((eio_sid, "queue"))
                    continue
                if self.enabled and enqueue(socket, pkt, now):
                    queued_n += 1
                    continue
            await self._send_queued(eio_sid, pkt)
            queued_n += 1
        if tracked and (ack_key := self._deliveries.key_of(event)) is not None:
            self._deliveries.delivered_to_many(ack_key, tracked)
        if direct_n:
            metrics.DELIVERIES.labels("direct").inc(direct_n)
        if queued_n:
            metrics.DELIVERIES.labels("queued").inc(queued_n)
        if held_n:
            metrics.DELIVERIES.labels("held").inc(held_n)
        for eio_sid, why in slow:
            await self._cut_off(eio_sid, why)
        return direct_n + queued_n + held_n

    def flush(self) -> None:
        """Write the frames corked since the last flush, one write per socket.

        Events keep their order: once a socket has corked frames, later events join
        them rather than engine.io's queue. The delivery gate calls this before holding a
        connection, so nothing emitted earlier can arrive after the replay it starts.
        """
        self._corker.flush()

    async def _cut_off(self, eio_sid: str, why: str) -> None:
        """Disconnect a client that stopped reading; it will resume from history."""
        if eio_sid in self._cut:
            return
        self._cut.add(eio_sid)
        try:
            metrics.SLOW_CLIENTS.labels(why).inc()
            log.warning(
                "cutting off %s: more than %s unsent (%s); it can resume with its last id",
                eio_sid,
                f"{self.buffer_limit} bytes"
                if why == "websocket"
                else f"{self.queue_limit} packets",
                why,
            )
            d = self._direct.get(eio_sid)
            if d is not None:
                d.transport.abort()  # the engine.io handler sees the close and cleans up
            socket = self._sio.eio.sockets.get(eio_sid)
            if socket is not None and not socket.closed:
                await socket.close(
                    wait=False, abort=True, reason=socket.server.reason.TRANSPORT_ERROR
                )
        finally:
            self._cut.discard(eio_sid)
