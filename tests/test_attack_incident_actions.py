"""Attacks on incident actions (socket, plain WebSocket, HTTP) and the audit trail they
leave: a site-restricted user acting on another site's incident, fake incident ids
flooding the history, a role-less token; each written as the attack, then the defence
observed from outside (nothing stored, nothing broadcast, a `refused` audit record)."""

from __future__ import annotations

import asyncio

import aiohttp

from notify_core.wire.events import TOPIC_ALERTS
from tests.helpers import NodeClient, WsClient, alert, new_tenant
from tests.test_plain_ws import ws_url


async def _post(base_url: str, token: str, path: str) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base_url}{path}", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.json()


async def _get(base_url: str, token: str, path: str, **params: str) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        ) as r,
    ):
        return r.status, await r.json()


async def test_a_site_restricted_user_cannot_act_on_another_sites_incident(
    base_url, produce, token
):
    tenant = new_tenant()
    watcher = await NodeClient.start(base_url, token(tenant, "watcher"), ["websocket"])
    mallory = token(tenant, "mallory", ["operator"], sites=["s1"])
    attacker = await NodeClient.start(base_url, mallory, ["polling"])
    ws = await WsClient.start(ws_url(base_url, tenant, "mallory", mallory))
    try:
        await watcher.connected()
        await attacker.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "S2-INC", "critical", site="s2"))
        await produce(TOPIC_ALERTS, alert(tenant, "S1-INC", "critical", site="s1"))
        await watcher.wait_count(lambda m: m.get("name") == "incident_alert", 2)
        # the attack, on every transport
        ack = await attacker.emit("incident_action", {"incident_id": "S2-INC", "action": "resolve"})
        assert ack == {"ok": False, "error": "no such incident"}
        frame = await ws.ask(
            {"type": "incident_action", "incident_id": "S2-INC", "action": "acknowledge"},
            "incident_action_result",
        )
        assert frame["ok"] is False and frame["error"] == "no such incident"
        status, body = await _post(base_url, mallory, "/api/v1/incidents/S2-INC/resolve")
        assert status == 404 and body["ok"] is False
        # the positive twin: its own site's incident
        ack = await attacker.emit(
            "incident_action", {"incident_id": "S1-INC", "action": "acknowledge"}
        )
        assert ack["ok"] is True
        update = await watcher.wait_for(lambda m: m.get("name") == "incident_update")
        assert update["data"]["incident_id"] == "S1-INC"
        await asyncio.sleep(0.5)
        assert [u["incident_id"] for u in watcher.events("incident_update")] == ["S1-INC"]
    finally:
        await watcher.close()
        await attacker.close()
        await ws.close()


async def test_fake_incident_ids_store_and_broadcast_nothing(base_url, produce, token, daemon):
    tenant = new_tenant()
    watcher = await NodeClient.start(base_url, token(tenant, "watcher"), ["websocket"])
    try:
        await watcher.connected()
        head_before = (await daemon.stores.history.position(tenant)).last_id
        for n in range(20):  # the flood
            status, _ = await _post(
                base_url, token(tenant), f"/api/v1/incidents/FAKE-{n}/acknowledge"
            )
            assert status == 404
            ack = await watcher.emit(
                "incident_action", {"incident_id": f"FAKE-S{n}", "action": "resolve"}
            )
            assert ack["ok"] is False
        await produce(TOPIC_ALERTS, alert(tenant, "REAL", "major"))  # the path still works
        await watcher.wait_for(lambda m: m.get("name") == "incident_alert")
        status, _ = await _post(base_url, token(tenant), "/api/v1/incidents/REAL/acknowledge")
        assert status == 202
        await watcher.wait_for(lambda m: m.get("name") == "incident_update")
        await asyncio.sleep(0.3)
        stored = await daemon.stores.history.read_after(tenant, None, 100)
        assert head_before is None
        assert [e["type"] for e in stored] == ["incident_alert", "incident_update"]
    finally:
        await watcher.close()


async def test_every_action_attempt_is_in_the_tenants_audit_trail_only(base_url, produce, token):
    tenant, other = new_tenant(), new_tenant()
    await produce(TOPIC_ALERTS, alert(tenant, "AU-1", "critical", site="s1"))
    admin = token(tenant, "root", ["admin"])

    async def known() -> bool:
        _, body = await _get(base_url, admin, "/api/v1/incidents")
        return any(i["incident_id"] == "AU-1" for i in body["incidents"])

    for _ in range(100):
        if await known():
            break
        await asyncio.sleep(0.1)
    assert (await _post(base_url, admin, "/api/v1/incidents/AU-1/acknowledge"))[0] == 202
    assert (await _post(base_url, token(tenant, "eve", []), "/api/v1/incidents/AU-1/resolve"))[
        0
    ] == 403
    assert (await _post(base_url, admin, "/api/v1/incidents/NOPE/resolve"))[0] == 404
    status, body = await _get(base_url, admin, "/api/v1/audit")
    assert status == 200
    got = [(r["actor"], r["action"], r["target"], r["result"]) for r in body["records"]]
    assert got == [
        ("root", "acknowledge", "AU-1", "ok"),
        ("eve", "resolve", "AU-1", "refused"),
        ("root", "resolve", "NOPE", "refused"),
    ]
    first = body["records"][0]
    assert first["source"] == "http" and first["tenant_id"] == tenant and first["at"].endswith("Z")
    assert body["records"][1]["reason"].startswith("forbidden")
    status, only = await _get(base_url, admin, "/api/v1/audit", action="resolve")
    assert [r["target"] for r in only["records"]] == ["AU-1", "NOPE"]
    status, after = await _get(base_url, admin, "/api/v1/audit", since=body["next"])
    assert after["records"] == []
    # another tenant's admin reads nothing of it; an operator may not read at all
    status, theirs = await _get(base_url, token(other, "root", ["admin"]), "/api/v1/audit")
    assert status == 200 and theirs["records"] == []
    status, _ = await _get(base_url, token(tenant, "op", ["operator"]), "/api/v1/audit")
    assert status == 403


async def test_actions_from_other_systems_are_audited_once_with_source_kafka(
    base_url, produce, token
):
    from notify_core.wire.events import TOPIC_ACTIONS
    from tests.helpers import envelope

    tenant = new_tenant()
    admin = token(tenant, "root", ["admin"])
    watcher = await NodeClient.start(base_url, token(tenant), ["websocket"])
    try:
        await watcher.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "KA-1", "critical"))
        await watcher.wait_for(lambda m: m.get("name") == "incident_alert")
        body = {"incident_id": "KA-1", "action": "acknowledge", "user_id": "ticketing-bot"}
        await produce(TOPIC_ACTIONS, envelope(tenant, body))
        await watcher.wait_for(lambda m: m.get("name") == "incident_update")
        assert (await _post(base_url, admin, "/api/v1/incidents/KA-1/resolve"))[0] == 202
        await watcher.wait_count(lambda m: m.get("name") == "incident_update", 2)
        records: list = []
        for _ in range(50):
            _, page = await _get(base_url, admin, "/api/v1/audit")
            records = page["records"]
            if len(records) >= 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        _, page = await _get(base_url, admin, "/api/v1/audit")
        got = [(r["actor"], r["action"], r["source"]) for r in page["records"]]
        assert got == [("ticketing-bot", "acknowledge", "kafka"), ("root", "resolve", "http")]
    finally:
        await watcher.close()
