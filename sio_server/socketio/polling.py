"""Long-polling's hot request, the GET that waits for packets, answered without aiohttp's
request machinery; every other request on the port goes to aiohttp unchanged.

A polling client sends one GET per delivery (the official Node client opens a TCP
connection for each). Through aiohttp and engine.io that GET cost ~45 µs of Python:
the protocol object and its task, the `Request`, routing, middlewares, engine.io's
WSGI-style environ and `parse_qs`, a `Response` and its writer (docs/performance.md,
issue 22). Here each connection first meets `PollingProtocol`. When a complete request
head is a long-poll of a connected engine.io session, not upgrading, on HTTP/1.1 with no
body, from an allowed Origin (or none), it is answered here, with engine.io's own
socket and queue and the same answer engine.io gives. Anything else (handshake, POST,
upgrade, an unknown session, a refused Origin, a malformed or oversized head, HTTP/1.0)
is handed to aiohttp's protocol with the bytes read so far, and aiohttp and engine.io
answer and count it as before: this path only ever takes the case it is sure of.

Behaviour kept from engine.io's poll: the first packet ends the wait and everything
already queued leaves in the same answer (`\\x1e`-separated); a `None` (socket closing)
ends it with an empty answer; no packet within ping interval + ping timeout closes the
session and answers 400. One difference, on purpose: when the client's TCP connection
drops while a poll waits, engine.io would still take the next packet off the queue and
write it to the dead connection; here the wait is cancelled and the packet stays queued
for the client's next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

from engineio import exceptions as eio_exceptions

from notify_core.lifecycle import Background
from notify_core.obs import metrics
from sio_server.admission.origin import OriginPolicy
from sio_server.socketio.polling_request import (
    MAX_HEAD_BYTES,
    Clock,
    PollRequest,
    could_be_poll,
    parse_poll,
)
from sio_server.socketio.socket_queue import SocketQueue

log = logging.getLogger(__name__)


class LeanPolling:
    """The shared part: engine.io's server, the Origin rule, the waiting polls and idle
    keep-alive connections (timed out by one sweep, not a timer each)."""

    def __init__(
        self,
        eio: Any,  # engineio.AsyncServer
        origins: OriginPolicy,
        path: str = "/socket.io/",
        idle_timeout_s: float = 75.0,  # aiohttp's keepalive_timeout
        sweep_s: float = 1.0,
    ) -> None:
        self.eio = eio
        self.origins = origins
        self.path = path.encode()
        self.idle_timeout_s = idle_timeout_s
        self.sweep_s = sweep_s
        self.clock = Clock()
        self.connections: set[PollingProtocol] = set()
        self._sweeper = Background("lean-polling-sweep", self._sweep)
        # expiries under way (the loop keeps only a weak reference to a task)
        self.expiring: set[asyncio.Task[None]] = set()
        self._lean = metrics.POLLING_REQUESTS.labels("lean")
        self._handed = metrics.POLLING_REQUESTS.labels("aiohttp")

    def protocol_factory(self, aiohttp_factory: Callable[[], Any]) -> Callable[[], Any]:
        """What the listening socket makes for each connection (`aiohttp_site`)."""
        return lambda: PollingProtocol(self, aiohttp_factory)

    def poll_timeout_s(self) -> float:
        return float(self.eio.ping_interval + self.eio.ping_timeout)

    async def start(self) -> None:
        await self._sweeper.start()

    async def stop(self) -> None:
        await self._sweeper.stop()
        for conn in list(self.connections):
            conn.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                now = asyncio.get_running_loop().time()
                for conn in list(self.connections):
                    conn.check_deadline(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lean polling sweep failed")

    def counted(self, lean: bool) -> None:
        (self._lean if lean else self._handed).inc()


class PollingProtocol(asyncio.Protocol):
    """One client TCP connection, until it is handed to aiohttp (or closes)."""

    __slots__ = (
        "_buffer",
        "_deadline",
        "_factory",
        "_request",
        "_shared",
        "_socket",
        "_transport",
        "_waiting",
    )

    def __init__(self, shared: LeanPolling, aiohttp_factory: Callable[[], Any]) -> None:
        self._shared = shared
        self._factory = aiohttp_factory
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._waiting: asyncio.Future[Any] | None = None  # the queue's `get` of a poll
        self._socket: Any = None
        self._request: PollRequest | None = None
        self._deadline = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._shared.connections.add(self)
        self._idle()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if self._waiting is not None or self._socket is not None:
            # pipelined while a poll waits: kept for after the answer (bounded)
            if len(buffer) > MAX_HEAD_BYTES:
                self.close()
                return
            self._buffer = buffer
            return
        self._next(buffer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._shared.connections.discard(self)
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.cancel()  # what it would have taken stays queued for the next poll
        self._transport = None  # a packet handed over already is given back (`_answer`)

    # requests
    def _next(self, buffer: bytes) -> None:
        """Answer the request at the head of `buffer`, or hand the connection over."""
        end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES or not could_be_poll(buffer):
                self._hand_over(buffer)
            else:
                self._buffer = buffer
            return
        request = parse_poll(buffer[:end], self._shared.path)
        socket = self._lean_socket(request) if request is not None else None
        if socket is None or request is None:
            self._hand_over(buffer)
            return
        self._buffer = buffer[end + 4 :]
        self._shared.counted(True)
        self._socket, self._request = socket, request
        waiting = socket.queue.get()
        if waiting.done():
            self._answer(waiting)
            return
        self._waiting = waiting
        self._deadline = asyncio.get_running_loop().time() + self._shared.poll_timeout_s()
        waiting.add_done_callback(self._answer)

    def _lean_socket(self, request: PollRequest) -> Any:
        """engine.io's socket for this poll when engine.io would simply poll it."""
        shared = self._shared
        socket = shared.eio.sockets.get(request.sid)
        if (
            socket is None
            or not socket.connected
            or socket.closed
            or socket.upgraded
            or socket.upgrading
            or not isinstance(socket.queue, SocketQueue)
        ):
            return None
        if request.origin is not None and not shared.origins.allows(
            request.origin, request.scheme, request.host
        ):
            return None  # engine.io refuses it, with its log line and our counter
        return socket

    def _answer(self, waiting: asyncio.Future[Any]) -> None:
        """The poll's first packet is here: take what else is queued, and answer."""
        if waiting.cancelled():
            return
        self._waiting = None
        socket, request = self._socket, self._request
        assert request is not None
        transport = self._transport
        first = waiting.result()
        queue = socket.queue
        if transport is None or transport.is_closing():
            # gone between the hand-over and this callback: give the packet back
            if first is not None:
                queue.put_back(first)
            queue.task_done()
            self._socket = self._request = None
            return
        queue.task_done()
        packets = [] if first is None else [first]
        while first is not None:
            try:
                pkt = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            queue.task_done()
            if pkt is None:
                queue.put_nowait(None)
                break
            packets.append(pkt)
        body = "\x1e".join([p.encode(b64=True) for p in packets]).encode()
        self._respond(b"200 OK", b"text/plain; charset=UTF-8", body, request)
        eio = self._shared.eio
        if socket.closed and eio.sockets.get(socket.sid) is socket:
            del eio.sockets[socket.sid]
        self._finish(request)

    def _respond(self, status: bytes, ctype: bytes, body: bytes, request: PollRequest) -> None:
        assert self._transport is not None
        head = [b"HTTP/1.1 ", status, b"\r\nContent-Type: ", ctype, b"\r\n"]
        if request.origin is not None:  # allowed, or it would not be here
            head += [b"Access-Control-Allow-Origin: ", request.origin.encode("latin-1"), b"\r\n"]
        if self._shared.eio.cors_credentials:
            head.append(b"Access-Control-Allow-Credentials: true\r\n")
        head += [
            b"Content-Length: %d\r\nDate: " % len(body),
            self._shared.clock.date(),
            b"\r\n\r\n" if request.keep_alive else b"\r\nConnection: close\r\n\r\n",
            body,
        ]
        self._transport.write(b"".join(head))

    def _finish(self, request: PollRequest) -> None:
        self._socket = self._request = None
        if not request.keep_alive:
            self.close()
            return
        self._idle()
        if self._buffer:
            buffer, self._buffer = self._buffer, b""
            self._next(buffer)

    def _idle(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._shared.idle_timeout_s

    def check_deadline(self, now: float) -> None:
        """From the sweep: an idle connection past its keep-alive, or a poll past its
        wait (engine.io's ping timeout: the session is closed, as engine.io does)."""
        if now < self._deadline or self._transport is None:
            return
        waiting, self._waiting = self._waiting, None
        if waiting is None:
            if self._socket is None:
                self.close()
            return
        waiting.cancel()
        task = asyncio.get_running_loop().create_task(self._expire())
        self._shared.expiring.add(task)
        task.add_done_callback(self._shared.expiring.discard)

    async def _expire(self) -> None:
        socket, request = self._socket, self._request
        assert request is not None
        eio = self._shared.eio
        with contextlib.suppress(eio_exceptions.EngineIOError):
            await socket.close(wait=False, reason=eio.reason.TRANSPORT_ERROR)
        if socket.sid in eio.sockets:
            await eio.disconnect(socket.sid)
        if self._transport is not None and not self._transport.is_closing():
            self._respond(b"400 BAD REQUEST", b"text/plain", b'"Bad Request"', request)
            self._finish(request)

    def _hand_over(self, buffer: bytes) -> None:
        """aiohttp takes the connection from here, with what was read of it."""
        transport = self._transport
        assert transport is not None
        self._shared.counted(False)
        self._shared.connections.discard(self)
        self._transport = None
        protocol = self._factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if buffer:
            protocol.data_received(buffer)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
