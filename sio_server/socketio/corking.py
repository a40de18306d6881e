"""Bytes for many sockets held briefly and written once per socket: the write batching
of every fan-out (Socket.IO's direct WebSocket frames, the plain WebSocket and SSE).

A write is a system call per socket. When idle, what was corked leaves at the end of
the loop iteration; under load, `coalesce_s` after the previous flush (or as long as
that flush took, if longer), so the events of a burst share one write per socket: the
same effect as Node's engine.io holding packets while a write is in flight. Frames of
one socket leave in the order corked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import Counter

K = TypeVar("K")


class Corker(Generic[K]):
    def __init__(
        self,
        transport_of: Callable[[K], asyncio.Transport | None],
        coalesce_s: float = 0.002,
        writes: Counter | None = None,
    ) -> None:
        """`transport_of(key)`: where a key's bytes go, or None when they must be dropped
        (the connection was closed meanwhile). `writes`: a counter of socket writes."""
        self._transport_of = transport_of
        self.coalesce_s = coalesce_s
        self._writes = writes
        self._corked: dict[K, list[bytes]] = {}
        self._handle: asyncio.Handle | None = None
        self._last_flush = 0.0
        self._took = 0.0

    def corked(self, key: K) -> list[bytes] | None:
        """The frames waiting for `key` (append to follow them), None when none wait."""
        return self._corked.get(key)

    def cork(self, key: K, data: bytes) -> None:
        frames = self._corked.get(key)
        if frames is None:
            self._corked[key] = [data]
            if self._handle is None:
                self._schedule()
        else:
            frames.append(data)

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        due = self._last_flush + max(self.coalesce_s, self._took)
        if loop.time() >= due:
            self._handle = loop.call_soon(self.flush)
        else:
            self._handle = loop.call_at(due, self.flush)

    def flush(self) -> None:
        """Write everything corked now, one write per socket (also called directly: before
        a connection is held for a recovery, and at shutdown)."""
        if self._handle is not None:
            self._handle.cancel()  # when called directly; a no-op from the loop
            self._handle = None
        corked, self._corked = self._corked, {}
        if not corked:
            return
        started = time.perf_counter()
        writes = 0
        transport_of = self._transport_of
        for key, frames in corked.items():
            transport = transport_of(key)
            if transport is None or transport.is_closing():
                continue
            transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            writes += 1
        if self._writes is not None:
            self._writes.inc(writes)
        self._took = time.perf_counter() - started
        self._last_flush = asyncio.get_running_loop().time()
