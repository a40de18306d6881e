"""Delivery tracking: bounded by (event, user) pairs, the same whether noted a packet at a
time or a batch at once."""

from __future__ import annotations

from typing import Any

import orjson


def test_delivery_tracking_is_bounded_by_event_user_pairs():
    from types import SimpleNamespace

    from sio_server.deliveries import Deliveries

    users = {f"sid{i}": SimpleNamespace(user_id=f"u{i}") for i in range(5)}
    deliveries = Deliveries(users.get, max_entries=12)

    def packet(n: int) -> Any:
        body = {"id": f"{n}-0", "tenant_id": "t", "requires_acknowledgment": True}
        return SimpleNamespace(data="2" + orjson.dumps(["incident_alert", body]).decode())

    for n in range(1, 6):  # 5 alerts x 5 users = 25 pairs, kept to at most 12
        pkt = packet(n)
        for sid in users:
            deliveries.on_packet(sid, pkt)
    assert deliveries.delivered_total == 25
    kept = [n for n in range(1, 6) if deliveries.status("t", f"{n}-0")]
    assert kept == [4, 5]  # the oldest alerts go first, whole
    assert deliveries.was_delivered("t", "u3", "5-0")
    entry = deliveries.confirm("t", "u3", "5-0")
    assert entry is not None and entry["confirmed_at"] >= entry["delivered_at"]
    assert deliveries.confirm("t", "u3", "5-0") is None  # once
    assert deliveries.confirm("t", "u3", "1-0") is None  # forgotten, not an error


def test_the_fan_outs_batch_notes_the_same_pairs_as_one_packet_at_a_time():
    from types import SimpleNamespace

    from sio_server.deliveries import Deliveries

    # two users, one with three connections, and a connection whose user left
    users = {"a1": "alice", "a2": "alice", "a3": "alice", "b1": "bob"}
    principals = {sid: SimpleNamespace(user_id=u) for sid, u in users.items()}
    one, many = Deliveries(principals.get), Deliveries(principals.get)
    event = {"id": "7-0", "tenant_id": "t", "requires_acknowledgment": True}
    event["incident"] = {"incident_id": "INC-7"}
    pkt = SimpleNamespace(data="2" + orjson.dumps(["incident_alert", event]).decode())
    for sid in [*users, "gone"]:
        one.on_packet(sid, pkt)
    key = many.key_of(event)
    assert key is not None and many.key_of({**event, "requires_acknowledgment": False}) is None
    many.delivered_to_many(key, [*users, "gone"])
    assert set(many.status("t", "7-0")) == set(one.status("t", "7-0")) == {"alice", "bob"}
    assert many.delivered_total == one.delivered_total == 2
    assert many.incident_of == one.incident_of == {("t", "7-0"): "INC-7"}
