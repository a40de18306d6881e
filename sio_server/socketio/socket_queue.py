"""engine.io's per-connection packet queue, in ~100 bytes instead of ~3.3 KB.

engine.io gives every connection an `asyncio.Queue` (from its server's `create_queue`,
which `sio_server.socketio.websocket.install` points here). An empty one holds four `deque`s (items,
getters, putters, and its `join` event's waiters) of 760 bytes each, for a queue that
is idle nearly always: with direct writes (`sio_server.socketio.fanout`) it carries only
engine.io's own packets (the handshake, pings, acks) and, for polling clients, the
events of one poll. At 10 000 idle connections that was 32 MB, a tenth of the daemon's
memory per connection (docs/performance.md). This queue keeps what engine.io uses of
the asyncio one (unbounded `put`/`get` in FIFO order, `get_nowait`/`put_nowait`,
`task_done`/`join`, `qsize`), allocates its containers only while they hold
something, and hands a packet straight to a waiting `get`, whose future is awaited
without a task of its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class SocketQueue:
    __slots__ = ("_getters", "_items", "_joined", "_unfinished")

    def __init__(self, maxsize: int = 0) -> None:
        if maxsize:
            raise ValueError("SocketQueue is unbounded (engine.io never bounds it)")
        self._items: deque[Any] | None = None
        # a list: a deque allocates a 64-slot block (760 bytes) for its first item
        self._getters: list[asyncio.Future[Any]] | None = None
        self._unfinished = 0
        self._joined: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def parked(self) -> bool:
        """Nothing queued and a consumer waiting in `get` that has not been handed a
        packet: no packet is held anywhere between this queue and the socket."""
        getters = self._getters
        if not getters or self._items:
            return False
        return not getters[-1].done()

    def put_nowait(self, item: Any) -> None:
        self._unfinished += 1
        if not self._hand(item):
            if self._items is None:
                self._items = deque()
            self._items.append(item)

    def put_back(self, item: Any) -> None:
        """Return a packet taken by a `get` whose reader went away before using it: it
        is the next one out (to a waiting `get`, or at the head of the queue)."""
        self._unfinished += 1
        if not self._hand(item):
            if self._items is None:
                self._items = deque()
            self._items.appendleft(item)

    def _hand(self, item: Any) -> bool:
        """Give `item` to the longest-waiting `get` still waiting, if there is one."""
        getters = self._getters
        handed = False
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(item)
                handed = True
                break
        if not getters:
            self._getters = None
        return handed

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def get(self) -> asyncio.Future[Any]:
        """The next packet, as a future: engine.io waits with `asyncio.wait_for`, which
        would wrap a coroutine in a task (and its frame) per wait; a future it does not.
        A packet handed over is that future's result (on Python 3.11 `wait_for` returns
        it even when its timeout fires in the same turn; that timeout is engine.io's ping
        timeout, after which it closes the connection either way)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._items:
            future.set_result(self.get_nowait())
            return future
        getters = self._getters
        if getters is None:
            getters = self._getters = []
        elif getters and getters[0].done():  # cancelled (timed out) waits
            self._getters = getters = [g for g in getters if not g.done()]
        getters.append(future)
        return future

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joined is not None:
            if not self._joined.done():
                self._joined.set_result(None)
            self._joined = None

    async def join(self) -> None:
        if self._unfinished == 0:
            return
        if self._joined is None:
            self._joined = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._joined)


def enqueue(socket: Any, pkt: Any, now: float) -> bool:
    """engine.io's `AsyncSocket.send` without its five coroutine layers (the gate, the
    socket.io and engine.io servers' `send_packet`, `send`, `check_ping_timeout`): put
    `pkt` on an open socket's `SocketQueue` and return True. False when engine.io must
    decide (closing or closed, or its ping timeout passed, which closes it): the caller
    then sends the slow way. `now` is `time.time()`, read once per fan-out."""
    if socket.closed or socket.closing:
        return False
    last_ping = socket.last_ping
    if last_ping and now - last_ping > socket.server.ping_timeout:
        return False
    queue = socket.queue
    if type(queue) is not SocketQueue:
        return False
    queue.put_nowait(pkt)
    return True
