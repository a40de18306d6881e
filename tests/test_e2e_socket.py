"""Kafka -> Faust -> Socket.IO -> the official Node socket.io-client, both transports."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from notify_core.wire.events import TOPIC_ACTIONS, TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES
from tests.helpers import NOT_STORED, NodeClient, alert, envelope, new_tenant

TRANSPORTS = [pytest.param(["websocket"], id="websocket"), pytest.param(["polling"], id="polling")]
BASE_FIELDS = {"id", "type", "tenant_id", "timestamp"}


def _id(value: str) -> tuple[int, int]:
    ms, seq = value.split("-")
    return int(ms), int(seq)


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_events_arrive_with_contract_fields(base_url, produce, token, transports):
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant, roles=["operator"]), transports)
    try:
        hello = await client.connected()
        assert hello["transport"] == transports[0]
        established = client.events("connection_established")[0]
        assert BASE_FIELDS <= established.keys() and established["tenant_id"] == tenant

        ack = await client.emit("subscribe_kpis", {"site_ids": ["s1"]})
        assert ack == {"ok": True, "granted": ["s1"], "denied": [], "snapshot": {}}

        await produce(TOPIC_ALERTS, alert(tenant, "INC-1", "critical", site="s1"))
        await produce(TOPIC_ALERTS, alert(tenant, "INC-2", "minor"))
        await produce(
            TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -71.5, "availability_pct": 99}, site="s1")
        )
        await produce(
            TOPIC_SITES, envelope(tenant, {"status": "down", "cause": "mains"}, site="s1")
        )

        await client.wait_count(lambda m: m["kind"] == "event" and m["name"] not in NOT_STORED, 4)
        inc1, inc2 = client.events("incident_alert")
        assert BASE_FIELDS <= inc1.keys()
        assert inc1["type"] == "incident_alert" and inc1["tenant_id"] == tenant
        assert inc1["site_id"] == "s1" and inc1["priority"] == "critical"
        assert inc1["requires_acknowledgment"] is True
        assert inc1["incident"]["incident_id"] == "INC-1"
        assert inc1["incident"]["title"] == "Mains power lost"
        assert "site_id" not in inc2 and inc2["requires_acknowledgment"] is False

        kpi = client.events("kpi_update")[0]
        assert kpi["site_id"] == "s1" and kpi["kpi_data"] == {
            "rssi_dbm": -71.5,
            "availability_pct": 99,
            "threshold_breach": False,  # always a boolean (ADR-010's client toasts on it)
        }
        status = client.events("site_status")[0]
        assert status["site_id"] == "s1" and status["status"] == "down"
        assert status["details"] == {"cause": "mains"}

        ids = [_id(e["id"]) for e in client.events() if e["type"] not in NOT_STORED]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), "ids strictly increase"
    finally:
        await client.close()


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_incident_action_round_trip(base_url, produce, token, transports):
    tenant = new_tenant()
    operator = await NodeClient.start(base_url, token(tenant, "op1"), transports)
    viewer = await NodeClient.start(base_url, token(tenant, "op2"), transports)
    try:
        await operator.connected()
        await viewer.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "INC-9", "critical", site="s9"))
        await viewer.wait_for(lambda m: m.get("name") == "incident_alert")

        ack = await operator.emit(
            "incident_action", {"incident_id": "INC-9", "action": "acknowledge"}
        )
        assert ack == {"ok": True, "incident_id": "INC-9", "action": "acknowledge"}
        line = await viewer.wait_for(lambda m: m.get("name") == "incident_update")
        update = line["data"]
        assert update["incident_id"] == "INC-9" and update["status"] == "acknowledged"
        assert update["by"] == "op1" and update["site_id"] == "s9"
    finally:
        await operator.close()
        await viewer.close()


async def test_acknowledge_twice_broadcasts_once(base_url, produce, token):
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant), ["websocket"])
    try:
        await client.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "INC-A", "critical"))
        await client.wait_for(lambda m: m.get("name") == "incident_alert")
        for user in ("a", "b"):
            await produce(
                TOPIC_ACTIONS,
                envelope(
                    tenant, {"incident_id": "INC-A", "action": "acknowledge", "user_id": user}
                ),
            )
        await produce(
            TOPIC_ACTIONS,
            envelope(tenant, {"incident_id": "INC-A", "action": "resolve", "user_id": "c"}),
        )
        updates = await client.wait_count(lambda m: m.get("name") == "incident_update", 2)
        await asyncio.sleep(0.5)
        statuses = [u["data"]["status"] for u in client.lines if u.get("name") == "incident_update"]
        assert statuses == ["acknowledged", "resolved"]
        assert updates[0]["data"]["by"] == "a"
    finally:
        await client.close()


async def test_redelivered_message_is_emitted_once(base_url, produce, token):
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant), ["websocket"])
    try:
        await client.connected()
        message = alert(tenant, "INC-DUP", "major")
        await produce(TOPIC_ALERTS, message)
        await produce(TOPIC_ALERTS, message)  # a producer retry: same bytes again
        await produce(TOPIC_ALERTS, alert(tenant, "INC-NEXT", "major"))
        await client.wait_count(lambda m: m.get("name") == "incident_alert", 2)
        await asyncio.sleep(0.5)
        ids = [e["incident"]["incident_id"] for e in client.events("incident_alert")]
        assert ids == ["INC-DUP", "INC-NEXT"]
    finally:
        await client.close()


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_client_events_errors_never_break_the_connection(
    base_url, produce, token, transports
):
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant, roles=["operator"]), transports)
    try:
        await client.connected()
        unknown = await client.emit("drop_tables", {"x": 1})
        assert unknown["ok"] is False and "unknown event" in unknown["error"]
        for bad in ("s1", {"site_ids": "s1"}, {"site_ids": [1, 2]}, None, [1, 2, 3]):
            ack = await client.emit("subscribe_kpis", raw_args=[bad])
            assert ack["ok"] is False, bad
        bad_action = await client.emit("incident_action", {"incident_id": "x", "action": "nuke"})
        assert bad_action["ok"] is False and "action" in bad_action["error"]
        bad_topics = await client.emit("subscribe", {"topics": "oncall"})
        assert bad_topics["ok"] is False
        denied = await client.emit("subscribe", {"topics": ["oncall", "site:s1"]})
        assert denied == {"ok": True, "granted": ["site:s1"], "denied": ["oncall"]}
        beat = await client.emit("heartbeat", {})
        assert beat["ok"] is True and beat["type"] == "heartbeat_ack"
        # still fully working
        await produce(TOPIC_ALERTS, alert(tenant, "INC-OK", "warning"))
        line = await client.wait_for(lambda m: m.get("name") == "incident_alert")
        assert line["data"]["incident"]["incident_id"] == "INC-OK"
    finally:
        await client.close()


async def test_client_event_flood_is_rate_limited(base_url, token):
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant), ["websocket"])
    try:
        await client.connected()
        acks = await asyncio.gather(*(client.emit("heartbeat", {}) for _ in range(80)))
        limited = [a for a in acks if not a["ok"]]
        assert limited and all("rate limited" in a["error"] for a in limited)
        assert sum(a["ok"] for a in acks) >= 40  # the burst is served
    finally:
        await client.close()


async def test_sync_replays_missed_events(base_url, produce, token):
    tenant = new_tenant()
    first = await NodeClient.start(base_url, token(tenant), ["websocket"])
    await first.connected()
    await produce(TOPIC_ALERTS, alert(tenant, "INC-0", "info"))
    line = await first.wait_for(lambda m: m.get("name") == "incident_alert")
    last_id = line["data"]["id"]
    await first.close()
    for i in range(1, 4):
        await produce(TOPIC_ALERTS, alert(tenant, f"INC-{i}", "info"))
    await asyncio.sleep(1.0)
    again = await NodeClient.start(
        base_url, auth={"token": token(tenant), "last_id": last_id}, transports=["websocket"]
    )
    try:
        await again.connected()
        done = await again.wait_for(lambda m: m.get("name") == "sync_complete")
        assert done["data"]["recovered"] is True and done["data"]["replayed"] == 3
        ids = [e["incident"]["incident_id"] for e in again.events("incident_alert")]
        assert ids == ["INC-1", "INC-2", "INC-3"]
        garbage = await again.emit("sync", {"last_id": "not-an-id"})
        assert garbage["ok"] is True and garbage["recovered"] is False
        assert "invalid last_id" in garbage["reason"]
    finally:
        await again.close()


async def test_json_payload_helper_is_real_json():
    # guards the helpers: produced bytes are what a real producer would send
    assert orjson.loads(orjson.dumps(alert("t", "i")))["payload"]["severity"] == "critical"
