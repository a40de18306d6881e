"""ADR-010's plain WebSocket, from Node's `ws` (a browser-style client), against the session
daemon on the real broker and Redis: same rooms, visibility, recovery and client events
as Socket.IO; bad frames answered, never fatal."""

from __future__ import annotations

import asyncio

from notify_core.wire.events import TOPIC_ACTIONS, TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES
from notify_core.wire.ids import parse_id
from tests.helpers import WsClient, alert, envelope, new_tenant


def ws_url(base_url: str, tenant: str, user: str, token: str, **query: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    root = base_url.replace("http", "ws", 1)
    return f"{root}/api/v1/notifications/ws/{tenant}/{user}?token={token}{extra}"


async def _open(base_url: str, tenant: str, user: str, token: str, **query: str) -> WsClient:
    client = await WsClient.start(ws_url(base_url, tenant, user, token, **query))
    await client.frame(lambda f: f and f.get("type") == "connection_established")
    return client


async def test_connect_heartbeat_subscribe_and_a_kafka_incident(base_url, produce, token):
    tenant = new_tenant()
    client = await _open(base_url, tenant, "alice", token(tenant, "alice"))
    try:
        first = client.frames()[0]
        assert first["type"] == "connection_established" and first["user_id"] == "alice"
        assert first["transport"] == "ws" and "epoch" in first
        beat = await client.ask({"type": "heartbeat"}, "heartbeat_ack")
        assert beat["ok"] is True
        sub = await client.ask(
            {"type": "subscribe_kpis", "site_ids": ["s1"]}, "subscribe_kpis_result"
        )
        assert sub["ok"] is True and sub["granted"] == ["s1"] and sub["denied"] == []
        await produce(TOPIC_ALERTS, alert(tenant, "INC-WS", site="s1"))
        await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -70.5}, site="s1"))
        inc = await client.frame(lambda f: f.get("type") == "incident_alert")
        assert inc["incident"]["incident_id"] == "INC-WS" and inc["site_id"] == "s1"
        assert inc["priority"] == "critical" and inc["id"]
        kpi = await client.frame(lambda f: f.get("type") == "kpi_update")
        assert kpi["kpi_data"]["rssi_dbm"] == -70.5
        act = await client.ask(
            {"type": "incident_action", "incident_id": "INC-WS", "action": "acknowledge"},
            "incident_action_result",
        )
        assert act["ok"] is True
        upd = await client.frame(lambda f: f.get("type") == "incident_update")
        assert upd["incident_id"] == "INC-WS" and upd["status"] == "acknowledged"
    finally:
        await client.close()


async def test_a_token_for_another_tenant_or_user_is_closed_with_1008(base_url, token):
    tenant, other = new_tenant(), new_tenant()
    attempts = [
        (tenant, "alice", token(other, "alice")),  # another tenant's token
        (tenant, "alice", token(tenant, "mallory")),  # another user's token
        (tenant, "alice", "not-a-jwt"),
        (tenant, "alice", token(tenant, "alice", ttl=-60)),  # expired
    ]
    for path_tenant, user, bad in attempts:
        client = await WsClient.start(ws_url(base_url, path_tenant, user, bad))
        try:
            closed = await client.wait_for(lambda m: m["kind"] in ("close", "refused"))
            assert closed["kind"] == "close" and closed["code"] == 1008, closed
            assert client.frames() == [], "no event before the close"
        finally:
            await client.close()
    good = await _open(base_url, tenant, "alice", token(tenant, "alice"))  # the positive twin
    await good.close()


async def test_reconnect_with_last_id_replays_exactly_what_was_missed(base_url, produce, token):
    tenant = new_tenant()
    client = await _open(base_url, tenant, "u1", token(tenant))
    await produce(TOPIC_ALERTS, alert(tenant, "SEEN"))
    seen = await client.frame(lambda f: f.get("type") == "incident_alert")
    epoch = client.frames()[0]["epoch"] or ""
    await client.close()
    for n in range(3):
        await produce(TOPIC_ALERTS, alert(tenant, f"MISSED-{n}"))
    await asyncio.sleep(1.0)  # stored while away
    query = {"last_id": seen["id"], **({"epoch": epoch} if epoch else {})}
    again = await WsClient.start(ws_url(base_url, tenant, "u1", token(tenant), **query))
    try:
        done = await again.frame(lambda f: f.get("type") == "sync_complete")
        types = [f["type"] for f in again.frames()]
        assert types[0] == "connection_established"
        replayed = [f["incident"]["incident_id"] for f in again.frames("incident_alert")]
        assert replayed == ["MISSED-0", "MISSED-1", "MISSED-2"]
        assert done["replayed"] == 3 and types.index("sync_complete") == 4
        await produce(TOPIC_ALERTS, alert(tenant, "LIVE"))
        live = await again.frame(
            lambda f: f.get("type") == "incident_alert" and f["incident"]["incident_id"] == "LIVE"
        )
        assert parse_id(live["id"]) > parse_id(again.frames("incident_alert")[2]["id"])
    finally:
        await again.close()


async def test_tenant_isolation_and_site_restriction_for_every_event_type(base_url, produce, token):
    tenant, other = new_tenant(), new_tenant()
    s1 = await _open(base_url, tenant, "only-s1", token(tenant, "only-s1", sites=["s1"]))
    alls = await _open(base_url, tenant, "all", token(tenant, "all"))
    foreign = await _open(base_url, other, "x", token(other, "x"))
    try:
        sub = await s1.ask(
            {"type": "subscribe_kpis", "site_ids": ["s1", "s2"]}, "subscribe_kpis_result"
        )
        assert sub["granted"] == ["s1"] and sub["denied"] == ["s2"]
        await alls.ask(
            {"type": "subscribe_kpis", "site_ids": ["s1", "s2"]}, "subscribe_kpis_result"
        )
        for site in ("s1", "s2"):
            await produce(TOPIC_ALERTS, alert(tenant, f"I-{site}", site=site))
            await produce(TOPIC_SITES, envelope(tenant, {"status": "degraded"}, site=site))
            await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -60.0}, site=site))
        await alls.wait_count(
            lambda m: m["kind"] == "frame" and m["data"].get("type") == "incident_alert", 2
        )
        for site in ("s1", "s2"):  # once the incidents are known (another topic, another order)
            action = {"incident_id": f"I-{site}", "action": "acknowledge", "user_id": "bot"}
            await produce(TOPIC_ACTIONS, envelope(tenant, action))
        await produce(TOPIC_ALERTS, alert(tenant, "I-tenant-wide"))
        await produce(TOPIC_ALERTS, alert(other, "I-other", site="s1"))

        # the positive twins: the all-sites user gets both sites of every type
        await alls.wait_count(
            lambda m: m["kind"] == "frame" and m["data"].get("type") == "incident_update", 2
        )
        await alls.wait_count(
            lambda m: m["kind"] == "frame" and m["data"].get("type") == "kpi_update", 2
        )
        await foreign.frame(lambda f: f.get("type") == "incident_alert")
        await s1.frame(
            lambda f: (
                f.get("type") == "incident_alert"
                and f["incident"]["incident_id"] == "I-tenant-wide"
            )
        )
        await asyncio.sleep(0.5)
        for kind in ("incident_alert", "site_status", "kpi_update", "incident_update"):
            assert {f.get("site_id") for f in alls.frames(kind)} >= {"s1", "s2"}, kind
            assert {f.get("site_id") for f in s1.frames(kind)} <= {"s1", None}, kind
            assert any(f.get("site_id") == "s1" for f in s1.frames(kind)), kind
        for client in (s1, alls):
            assert all(f["tenant_id"] == tenant for f in client.frames() if f and "tenant_id" in f)
        assert [f["incident"]["incident_id"] for f in foreign.frames("incident_alert")] == [
            "I-other"
        ]
    finally:
        for c in (s1, alls, foreign):
            await c.close()


async def test_bad_frames_get_an_error_and_the_socket_stays_usable(base_url, token):
    tenant = new_tenant()
    client = await _open(base_url, tenant, "u1", token(tenant))
    try:
        bad = [
            "{not json",
            "[1, 2, 3]",
            '{"no_type": 1}',
            '{"type": 42}',
            '{"type": "launch_missiles"}',
            '{"type": "subscribe_kpis", "site_ids": "s1"}',
            '{"type": "sync", "last_id": "garbage"}',
            '{"type": "heartbeat", "pad": "' + "x" * 100_000 + '"}',
        ]
        for text in bad:
            await client.send(text)
        await client.command({"binary": [1, 2, 3]})
        beat = await client.ask({"type": "heartbeat"}, "heartbeat_ack")
        assert beat["ok"] is True, "still usable after every bad frame"
        errors = client.frames("error")
        assert len(errors) == 7 and all(e["error"] for e in errors)
        results = {f["type"]: f for f in client.frames() if f["type"].endswith("_result")}
        assert results["subscribe_kpis_result"]["ok"] is False
        sync = client.frames("sync_complete")
        assert sync and sync[-1]["recovered"] is False and results["sync_result"]["ok"] is True
    finally:
        await client.close()


async def test_a_foreign_origin_is_refused_and_the_own_origin_is_not(base_url, token):
    tenant = new_tenant()
    url = ws_url(base_url, tenant, "u1", token(tenant))
    evil = await WsClient.start(url, headers={"Origin": "https://evil.example"})
    try:
        refused = await evil.wait_for(lambda m: m["kind"] in ("refused", "open", "close"))
        assert refused["kind"] == "refused" and refused["status"] == 403
    finally:
        await evil.close()
    own = await WsClient.start(url, headers={"Origin": base_url})
    try:
        await own.frame(lambda f: f.get("type") == "connection_established")
    finally:
        await own.close()
