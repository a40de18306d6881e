"""Greeting and resuming, the same for every transport: `hello` says where the tenant's
history stands (`connection_established`), `resume` replays what a client missed that it
may see and builds `sync_complete`. Each transport sends the events its own way (the
Socket.IO one past its delivery gate, `sio_server.socketio.recovery`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from notify_core.history.resume import decide
from notify_core.history.store import History
from notify_core.obs import metrics
from notify_core.wire.events import connection_established, sync_complete
from notify_core.wire.ids import format_id, parse_id
from sio_server.admission.auth import Principal

REPLAY_PAGE = 500

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Resumed(NamedTuple):
    done: dict[str, Any]  # the `sync_complete` event to send after the replay
    last: tuple[int, int] | None  # the newest id replayed past (held live events after it)


async def hello(
    history: History, p: Principal, transport: str
) -> tuple[dict[str, Any], tuple[int, int] | None]:
    """`connection_established` for `p` on `transport`, where its tenant's history stands
    now (its head and epoch), and the head's position (what a fresh connection goes live
    after). Every transport greets through here."""
    position = await history.position(p.tenant_id)
    head = format_id(position.last_id) if position.last_id else None
    event = connection_established(
        p.tenant_id, p.user_id, p.roles, p.sites, head, position.epoch, transport
    )
    return event, position.last_id


async def resume(
    history: History,
    p: Principal,
    last_id: Any,
    client_epoch: Any,
    send: Send,
    snapshot: dict[str, Any] | None = None,
) -> Resumed:
    """Decide (`notify_core.history.resume.decide`), replay what the history holds after
    `last_id` that `p` may see, and build `sync_complete`. Every transport resumes
    through here; the caller sends `done` and releases what it held."""
    position = await history.position(p.tenant_id)
    decision = decide(last_id, client_epoch, position)
    replayed, last = 0, decision.after
    if decision.after is not None:
        replayed, last = await _replay(history, p, decision.after, send)
    done = sync_complete(
        p.tenant_id,
        format_id(last) if last else "0-0",
        decision.recovered,
        replayed,
        decision.reason,
        position.epoch,
        snapshot,
    )
    metrics.RECOVERIES.labels("ok" if decision.recovered else "not_recovered").inc()
    metrics.REPLAYED.inc(replayed)
    return Resumed(done, last)


async def _replay(
    history: History, p: Principal, after: tuple[int, int], send: Send
) -> tuple[int, tuple[int, int]]:
    """Send visible events after `after`; returns (how many, the newest id read)."""
    sent, cursor, last = 0, format_id(after), after
    while True:
        page = await history.read_after(p.tenant_id, cursor, REPLAY_PAGE)
        for event in page:
            last = parse_id(event["id"])
            # KPI samples are state, not events: subscribe_kpis returns the snapshot.
            if event["type"] != "kpi_update" and p.can_see(event):
                await send(event)
                sent += 1
        if page:
            cursor = page[-1]["id"]
        if len(page) < REPLAY_PAGE:
            return sent, last
