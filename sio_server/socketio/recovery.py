"""Recovery that keeps order: missed events first, then `sync_complete`, then live.

python-socketio has no connection-state recovery, so we replay from our own history.
A connection that is recovering is *gated*: it already sits in its rooms (so nothing
live is missed), but live packets addressed to it are held in a buffer. We send the
history after `last_id` straight to it, then `sync_complete`, then the held packets
whose id is newer than the last one replayed (older ones were in the replay), in id
order, and only then open the gate. Works over both transports and whichever server
process the client lands on, since the history is shared.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import socketio

from notify_core.bounded import Bounded
from notify_core.history.store import History
from notify_core.wire.ids import InvalidEventId, parse_id
from sio_server.admission.auth import Principal
from sio_server.replay import resume
from sio_server.socketio.fanout import encode_event

log = logging.getLogger(__name__)

ENCODED_CACHE = 50_000  # packets of recently replayed events, shared by every client
SendRaw = Callable[[str, Any], Awaitable[None]]


def _event_id(pkt: Any) -> tuple[int, int] | None:
    """The `id` of a buffered EVENT packet (`2["name",{...}]`), None for anything else."""
    data = getattr(pkt, "data", None)
    if not isinstance(data, str) or not data.startswith("2["):
        return None
    try:
        body = orjson.loads(data[1:])
        return parse_id(body[1]["id"])
    except (ValueError, KeyError, IndexError, TypeError, InvalidEventId):
        return None


class DeliveryGate:
    """Holds live packets for connections that are being recovered."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        observer: Callable[[str, Any], None] | None = None,
        before_hold: Callable[[], None] | None = None,
    ) -> None:
        """`observer` sees every packet sent (acknowledgement tracking); `before_hold`
        flushes frames already emitted before a connection is held (the fan-out's)."""
        self._sio = sio
        self._held: dict[str, list[Any]] = {}
        self._encoded: Bounded[tuple[str, str], list[Any]] = Bounded(ENCODED_CACHE)
        self.observer = observer
        self.before_hold = before_hold
        self._send_raw: SendRaw = sio._send_eio_packet
        # every emit to a room or sid ends in this coroutine (python-socketio 5.x)
        sio._send_eio_packet = self._gated

    async def _gated(self, eio_sid: str, pkt: Any) -> None:
        held = self._held.get(eio_sid)
        if held is not None:
            held.append(pkt)
            return
        if self.observer is not None:
            self.observer(eio_sid, pkt)
        await self._send_raw(eio_sid, pkt)

    def close(self, eio_sid: str) -> None:
        if self.before_hold is not None:
            self.before_hold()
        self._held[eio_sid] = []

    def held_for(self, eio_sid: str) -> list[Any] | None:
        """The buffer of a gated connection (append to hold a packet), None when open."""
        return self._held.get(eio_sid)

    async def send_raw(self, eio_sid: str, pkt: Any) -> None:
        """Queue on engine.io's socket, past the gate and the observer."""
        await self._send_raw(eio_sid, pkt)

    def holding(self, eio_sid: str) -> bool:
        return eio_sid in self._held

    def forget(self, eio_sid: str) -> None:
        self._held.pop(eio_sid, None)

    def _encode(self, name: str, data: dict[str, Any]) -> list[Any]:
        return [encode_event(name, data)[1]]  # the same packet the live fan-out sends

    async def send(self, eio_sid: str, name: str, data: dict[str, Any]) -> None:
        """Send past the gate (replayed events and markers)."""
        for raw in self._encode(name, data):
            if self.observer is not None:
                self.observer(eio_sid, raw)
            await self._send_raw(eio_sid, raw)

    async def send_stored(self, eio_sid: str, event: dict[str, Any]) -> None:
        """Send a history event past the gate; encoded once for every recovering client."""
        key = (event["tenant_id"], event["id"])
        packets = self._encoded.get(key)
        if packets is None:
            packets = self._encode(event["type"], event)
            self._encoded.put(key, packets)
        for raw in packets:
            if self.observer is not None:
                self.observer(eio_sid, raw)
            await self._send_raw(eio_sid, raw)

    async def open(self, eio_sid: str, after: tuple[int, int] | None) -> int:
        """Send what was held (newer than `after`, in id order), then let live through."""
        sent = 0
        while True:
            held = self._held.get(eio_sid)
            if held is None:
                return sent
            if not held:
                del self._held[eio_sid]  # no await since the check: nothing slips past
                return sent
            self._held[eio_sid] = []
            keyed = [(_event_id(p), i, p) for i, p in enumerate(held)]
            keyed.sort(key=lambda k: (k[0] or (0, 0), k[1]))
            for ident, _, pkt in keyed:
                if ident is not None and after is not None and ident <= after:
                    continue  # already replayed
                if self.observer is not None:
                    self.observer(eio_sid, pkt)
                await self._send_raw(eio_sid, pkt)
                if ident is not None:
                    after = ident
                sent += 1


class Recovery:
    """Socket.IO's face of `resume`: replayed events go past the delivery gate."""

    def __init__(self, history: History, gate: DeliveryGate) -> None:
        self.history = history
        self.gate = gate

    async def recover(
        self,
        eio_sid: str,
        p: Principal,
        last_id: Any,
        epoch: Any = None,
        snapshot: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Replay, `sync_complete`, release what was held. The gate must be closed."""
        try:

            async def send(event: dict[str, Any]) -> None:
                await self.gate.send_stored(eio_sid, event)

            resumed = await resume(self.history, p, last_id, epoch, send, snapshot)
            await self.gate.send(eio_sid, "sync_complete", resumed.done)
            await self.gate.open(eio_sid, resumed.last)
            return resumed.done
        except BaseException:
            await self.gate.open(eio_sid, None)
            raise
