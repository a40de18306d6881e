"""engine.io's per-connection packet queue, in ~200 bytes instead of ~3.3 KB.

engine.io gives every connection an `asyncio.Queue` (through its driver table, like the
WebSocket class in `sio_server.websocket`). An empty one holds four `deque`s (items,
getters, putters, and its `join` event's waiters) of 760 bytes each, for a queue that
is idle nearly always: with direct writes (`sio_server.fanout`) it carries only
engine.io's own packets (the handshake, pings, acks) and, for polling clients, the
events of one poll. At 10 000 idle connections that was 32 MB, a tenth of the daemon's
memory per connection (docs/performance.md). This queue keeps what engine.io uses of
the asyncio one (unbounded `put`/`get` in FIFO order, `get_nowait`/`put_nowait`,
`task_done`/`join`, `qsize`) and allocates its containers only while they hold
something.
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
        self._getters: list[asyncio.Future[None]] | None = None
        self._unfinished = 0
        self._joined: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def parked(self) -> bool:
        """Nothing queued and a consumer waiting in `get` that has not been woken: no
        packet is held anywhere between this queue and the socket."""
        getters = self._getters
        return not self._items and bool(getters) and not getters[-1].done()  # type: ignore[index]

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._unfinished += 1
        for getter in self._getters or ():
            if not getter.done():
                getter.set_result(None)
                break

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

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                # woken and cancelled at once: pass the wake-up on, as asyncio.Queue does
                self._forget(getter)
                if self._items:
                    self._wake_next()
                raise
            self._forget(getter)
        return self.get_nowait()

    def _forget(self, getter: asyncio.Future[None]) -> None:
        getters = self._getters
        if getters is not None:
            if getter in getters:
                getters.remove(getter)
            if not getters:
                self._getters = None

    def _wake_next(self) -> None:
        for getter in self._getters or ():
            if not getter.done():
                getter.set_result(None)
                return

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
