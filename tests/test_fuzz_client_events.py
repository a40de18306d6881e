"""A fuzz of the client events (the one handler set behind Socket.IO and the plain
WebSocket's frames): any event name with any JSON data gets an answer, never an internal
error, and nothing an attacker sends reaches another tenant's room. Bounded: hypothesis,
a few hundred examples, in-memory parts (the handlers are what is fuzzed)."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notify_core.state.incidents import MemoryIncidentStore
from notify_core.state.snapshots import MemorySnapshots
from notify_core.state.timeline import MemoryTimeline
from sio_server.admission.auth import Principal
from sio_server.admission.ratelimit import TokenBucket
from sio_server.client_events import ClientEvents
from sio_server.deliveries import Deliveries
from sio_server.incident_actions import IncidentActions
from sio_server.presence import Presence

EVENTS = [
    "subscribe_kpis",
    "unsubscribe_kpis",
    "subscribe",
    "heartbeat",
    "incident_action",
    "sync",
    "received",
    "view_incident",
    "unview_incident",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
data = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "site_ids": st.lists(st.text(max_size=70), max_size=5) | json_values,
            "incident_id": st.text(max_size=140) | json_values,
            "action": st.sampled_from(["acknowledge", "resolve", "snooze", "comment", "x"])
            | json_values,
            "note": st.text(max_size=50) | json_values,
            "minutes": st.integers(-5, 5000) | json_values,
            "last_id": st.text(max_size=40) | json_values,
            "epoch": st.text(max_size=40) | json_values,
            "id": st.text(max_size=40) | json_values,
            "rooms": json_values,
        },
    ),
)


class FakeSession:
    def __init__(self) -> None:
        self.principal = Principal(
            "fuzzer", "t-fuzz", frozenset({"operator"}), None, time.time() + 3600
        )
        self.bucket = TokenBucket(1e9, 1e9)
        self.transport = "websocket"
        self.remote = "127.0.0.1"
        self.rooms: set[str] = set()
        self.viewing: set[str] = set()
        self.disconnected = False

    async def join(self, room: str) -> None:
        self.rooms.add(room)

    async def leave(self, room: str) -> None:
        self.rooms.discard(room)

    async def resync(self, last_id: Any, epoch: Any) -> dict[str, Any]:
        """The shape `recovery.resume` answers (the replay itself is tested elsewhere)."""
        return {"type": "sync_complete", "recovered": False, "replayed": 0, "epoch": None}

    def disconnect(self) -> None:
        self.disconnected = True


def _events() -> tuple[ClientEvents, list[tuple[Any, ...]]]:
    incidents = MemoryIncidentStore()
    sent: list[tuple[Any, ...]] = []

    async def sink(p: Principal, incident: str, action: str, extra: dict[str, Any]) -> None:
        sent.append((p.tenant_id, incident, action, extra))

    async def emit(event: dict[str, Any], rooms: list[str]) -> None:
        return None

    actions = IncidentActions(sink, incidents, None)
    events = ClientEvents(
        actions,
        MemorySnapshots(),
        MemoryTimeline(),
        Deliveries(lambda sid: None),
        Presence(None, "", emit),
    )
    return events, sent


EVENTS_UNDER_TEST, _ = _events()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(EVENTS) | st.text(max_size=30), payload=data)
async def test_any_client_event_gets_an_answer_and_never_an_internal_error(name, payload):
    session = FakeSession()
    answer = await EVENTS_UNDER_TEST.dispatch(session, name, payload)
    assert isinstance(answer, dict)
    assert answer.get("error") != "internal error", (name, payload, answer)
    # whatever was asked, the connection joined only rooms of its own tenant
    assert all("t-fuzz" in room for room in session.rooms), session.rooms
