"""Attacker's side: other tenants, other sites, forged and broken tokens."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import jwt
import orjson
import pytest

from notify_core.wire.events import TOPIC_ACTIONS, TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES
from tests.helpers import NOT_STORED, TEST_SECRET, NodeClient, alert, envelope, new_tenant

TRANSPORTS = [pytest.param(["websocket"], id="websocket"), pytest.param(["polling"], id="polling")]


async def _every_event_type(produce, redis_client, daemon, tenant: str, site: str) -> None:
    await produce(TOPIC_ALERTS, alert(tenant, f"{tenant}-INC-1", "critical", site=site))
    await produce(TOPIC_ALERTS, alert(tenant, f"{tenant}-INC-2", "info"))
    await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -70}, site=site))
    await produce(TOPIC_SITES, envelope(tenant, {"status": "down"}, site=site))
    await produce(
        TOPIC_ACTIONS,
        envelope(
            tenant, {"incident_id": f"{tenant}-INC-1", "action": "acknowledge", "user_id": "x"}
        ),
    )
    notice = {
        "tenant_id": tenant,
        "title": "Maintenance window",
        "message": "tonight",
        "priority": "normal",
        "timestamp": "2026-11-25T10:00:00Z",
    }
    await redis_client.publish(daemon.settings.system_channel, orjson.dumps(notice))


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_tenant_never_sees_another_tenants_events(
    base_url, produce, token, redis_client, daemon, transports
):
    victim, attacker = new_tenant(), new_tenant()
    site = "shared-site-name"  # same site id in both tenants
    a = await NodeClient.start(base_url, token(attacker, roles=["admin", "oncall"]), transports)
    v = await NodeClient.start(base_url, token(victim, roles=["operator"]), transports)
    try:
        await a.connected()
        await v.connected()
        assert (await a.emit("subscribe_kpis", {"site_ids": [site]}))["granted"] == [site]
        assert (await v.emit("subscribe_kpis", {"site_ids": [site]}))["granted"] == [site]
        await a.emit("subscribe", {"topics": ["oncall"]})
        await _every_event_type(produce, redis_client, daemon, victim, site)
        # the victim gets all six kinds...
        await v.wait_count(lambda m: m["kind"] == "event" and m["name"] not in NOT_STORED, 6)
        kinds = sorted(e["type"] for e in v.events() if e["type"] not in NOT_STORED)
        assert kinds == [
            "incident_alert",
            "incident_alert",
            "incident_update",
            "kpi_update",
            "site_status",
            "system_notification",
        ]
        # ...and after a marker of its own tenant arrives, the attacker has none of them
        await produce(TOPIC_ALERTS, alert(attacker, "MARKER", "info"))
        await a.wait_for(lambda m: m.get("name") == "incident_alert")
        leaked = [e for e in a.events() if e.get("tenant_id") != attacker]
        assert leaked == []
    finally:
        await a.close()
        await v.close()


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_site_restricted_user_sees_only_its_sites(base_url, produce, token, transports):
    tenant = new_tenant()
    client = await NodeClient.start(
        base_url, token(tenant, roles=["operator"], sites=["s1"]), transports
    )
    try:
        await client.connected()
        ack = await client.emit("subscribe_kpis", {"site_ids": ["s1", "s2"]})
        assert ack == {"ok": True, "granted": ["s1"], "denied": ["s2"], "snapshot": {}}
        ack = await client.emit("subscribe", {"topics": ["site:s2", "oncall"]})
        assert ack["granted"] == [] and sorted(ack["denied"]) == ["oncall", "site:s2"]

        await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -99}, site="s2"))
        await produce(TOPIC_SITES, envelope(tenant, {"status": "down"}, site="s2"))
        await produce(TOPIC_ALERTS, alert(tenant, "INC-S2", "critical", site="s2"))
        await produce(
            TOPIC_ACTIONS,
            envelope(tenant, {"incident_id": "INC-S2", "action": "acknowledge", "user_id": "x"}),
        )
        # an action on an incident nobody knows the site of is not shown to restricted users
        await produce(
            TOPIC_ACTIONS,
            envelope(tenant, {"incident_id": "INC-UNKNOWN", "action": "resolve", "user_id": "x"}),
        )
        # each topic is keyed by tenant, so one partition each: a visible event produced after
        # the forbidden ones on the same topic arrives only once those have been handled
        await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -60}, site="s1"))
        await produce(TOPIC_SITES, envelope(tenant, {"status": "up"}, site="s1"))
        await produce(TOPIC_ALERTS, alert(tenant, "INC-S1", "major", site="s1"))
        await produce(TOPIC_ALERTS, alert(tenant, "INC-TENANT", "info"))

        def arrived(kind: str, **fields: str):
            def pred(m) -> bool:
                if m.get("name") != kind:
                    return False
                data = m["data"]
                body = data.get("incident", data)
                return all(data.get(k) == v or body.get(k) == v for k, v in fields.items())

            return pred

        await client.wait_for(arrived("kpi_update", site_id="s1"))
        await client.wait_for(arrived("site_status", site_id="s1"))
        await client.wait_for(arrived("incident_alert", incident_id="INC-TENANT"))
        await client.wait_for(arrived("incident_alert", incident_id="INC-S1"))
        # the actions topic's sentinel: INC-S1's site is known now, so its update is visible
        await produce(
            TOPIC_ACTIONS,
            envelope(tenant, {"incident_id": "INC-S1", "action": "acknowledge", "user_id": "x"}),
        )
        await client.wait_for(arrived("incident_update", incident_id="INC-S1"))

        got = [e for e in client.events() if e["type"] not in NOT_STORED]
        assert all(e.get("site_id") in (None, "s1") for e in got), got
        # exactly these five reach a user restricted to s1; they come from four topics,
        # and Kafka orders within a partition only, so their relative order is not promised
        assert sorted(e["type"] for e in got) == [
            "incident_alert",
            "incident_alert",
            "incident_update",
            "kpi_update",
            "site_status",
        ], got
    finally:
        await client.close()


def _bad_tokens(tenant: str) -> dict[str, object]:
    now = int(time.time())
    good = {"sub": "u", "tenant_id": tenant, "roles": ["operator"], "exp": now + 600}
    return {
        "expired": jwt.encode({**good, "exp": now - 120}, TEST_SECRET, algorithm="HS256"),
        "bad signature": jwt.encode(
            good, "another-secret-of-at-least-32-bytes!!", algorithm="HS256"
        ),
        "missing tenant": jwt.encode(
            {k: v for k, v in good.items() if k != "tenant_id"}, TEST_SECRET, algorithm="HS256"
        ),
        "missing exp": jwt.encode(
            {k: v for k, v in good.items() if k != "exp"}, TEST_SECRET, algorithm="HS256"
        ),
        "wrong algorithm HS512": jwt.encode(good, TEST_SECRET, algorithm="HS512"),
        "alg none": jwt.encode(good, None, algorithm="none"),
        "unknown role": jwt.encode({**good, "roles": ["root"]}, TEST_SECRET, algorithm="HS256"),
        "forged tenant with colon": jwt.encode(
            {**good, "tenant_id": f"{tenant}:x"}, TEST_SECRET, algorithm="HS256"
        ),
        "garbage": "not.a.jwt",
        "empty": "",
    }


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_every_bad_token_is_refused(base_url, transports):
    tokens = _bad_tokens(new_tenant())
    clients = {
        name: await NodeClient.start(base_url, tok, transports)  # type: ignore[arg-type]
        for name, tok in tokens.items()
    }
    clients["no auth at all"] = await NodeClient.start(base_url, auth={}, transports=transports)
    clients["token in query, bad"] = await NodeClient.start(
        base_url, auth={}, query={"token": "x.y.z"}, transports=transports
    )
    try:
        for name, client in clients.items():
            line = await client.wait_for(lambda m: m["kind"] in ("connect", "connect_error"))
            assert line["kind"] == "connect_error", name
            assert line["message"] == "authentication failed", name
    finally:
        await asyncio.gather(*(c.close() for c in clients.values()))


async def test_token_in_query_string_is_accepted(base_url, token):
    client = await NodeClient.start(
        base_url, auth={}, query={"token": token(new_tenant())}, transports=["websocket"]
    )
    try:
        await client.connected()
    finally:
        await client.close()


async def test_http_api_is_tenant_and_site_scoped(base_url, produce, token):
    tenant, other = new_tenant(), new_tenant()
    await produce(TOPIC_ALERTS, alert(tenant, "H-1", "critical", site="s1"))
    await produce(TOPIC_ALERTS, alert(tenant, "H-2", "major", site="s2"))
    await produce(TOPIC_ALERTS, alert(tenant, "H-3", "info"))
    url = f"{base_url}/api/v1/notifications"
    async with aiohttp.ClientSession() as http:

        async def get(tok: str, **params: str) -> tuple[int, dict]:
            headers = {"Authorization": f"Bearer {tok}"}
            async with http.get(url, params=params, headers=headers) as resp:
                return resp.status, await resp.json()

        body: dict = {}
        for _ in range(100):
            status, body = await get(token(tenant))
            if len(body.get("notifications", [])) == 3:
                break
            await asyncio.sleep(0.1)
        assert [n["incident"]["incident_id"] for n in body["notifications"]] == [
            "H-1",
            "H-2",
            "H-3",
        ]
        assert body["next"] == body["notifications"][-1]["id"]
        first = body["notifications"][0]["id"]
        status, page = await get(token(tenant), since=first, limit="1")
        assert status == 200 and [n["incident"]["incident_id"] for n in page["notifications"]] == [
            "H-2"
        ]
        status, restricted = await get(token(tenant, sites=["s2"]))
        assert [n["incident"]["incident_id"] for n in restricted["notifications"]] == ["H-2", "H-3"]
        status, foreign = await get(token(other))
        assert status == 200 and foreign["notifications"] == []
        status, typed = await get(token(tenant), types="kpi_update")
        assert status == 200 and typed["notifications"] == []
        for params in (
            {"since": "garbage"},
            {"limit": "0"},
            {"limit": "1001"},
            {"limit": "x"},
            {"types": "nope"},
        ):
            status, err = await get(token(tenant), **params)
            assert status == 400 and err["ok"] is False and err["error"], params
        async with http.get(url) as resp:
            assert resp.status == 401
        async with http.get(url, headers={"Authorization": "Bearer junk"}) as resp:
            assert resp.status == 401 and (await resp.json())["error"] == "authentication failed"


async def test_http_incident_action_checks_role_and_tenant(base_url, produce, token):
    tenant = new_tenant()
    viewer = await NodeClient.start(base_url, token(tenant), ["websocket"])
    try:
        await viewer.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "HA-1", "critical"))
        await viewer.wait_for(lambda m: m.get("name") == "incident_alert")
        async with aiohttp.ClientSession() as http:
            url = f"{base_url}/api/v1/incidents/HA-1/acknowledge"
            async with http.post(
                url, headers={"Authorization": "Bearer " + token(tenant, roles=[])}
            ) as resp:
                assert resp.status == 403
            # another tenant "acknowledging" HA-1: no such incident in its tenant, refused
            other = new_tenant()
            async with http.post(url, headers={"Authorization": "Bearer " + token(other)}) as resp:
                assert resp.status == 404
            async with http.post(
                f"{base_url}/api/v1/incidents/HA-1/explode",
                headers={"Authorization": "Bearer " + token(tenant)},
            ) as resp:
                assert resp.status == 404
            async with http.post(
                url, headers={"Authorization": "Bearer " + token(tenant, "boss")}
            ) as resp:
                assert resp.status == 202
        line = await viewer.wait_for(lambda m: m.get("name") == "incident_update")
        assert line["data"]["by"] == "boss" and line["data"]["tenant_id"] == tenant
        await asyncio.sleep(0.3)
        assert len(viewer.events("incident_update")) == 1
    finally:
        await viewer.close()
