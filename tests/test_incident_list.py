"""`GET /api/v1/incidents`: the state a fresh screen shows at once, through the real broker
and Redis (the session daemon): every open incident, newest first, visible ones only."""

from __future__ import annotations

import aiohttp

from notify_core.wire.events import TOPIC_ACTIONS, TOPIC_ALERTS
from notify_core.wire.ids import parse_id
from tests.conftest import eventually
from tests.helpers import alert, envelope, new_tenant


async def _list(base_url: str, token: str, **query: str) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}/api/v1/incidents",
            params=query,
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        return r.status, await r.json()


async def test_a_fresh_screen_lists_every_open_incident(base_url, produce, token):
    tenant, other = new_tenant(), new_tenant()
    await produce(TOPIC_ALERTS, alert(tenant, "A", "critical", site="s1", title="Mains lost"))
    await produce(TOPIC_ALERTS, alert(tenant, "B", "major", site="s2"))
    await produce(TOPIC_ALERTS, alert(tenant, "C", "minor"))  # tenant-wide
    await produce(TOPIC_ALERTS, alert(tenant, "D", "warning", site="s1"))
    await produce(TOPIC_ALERTS, alert(other, "X", "critical", site="s1"))

    async def four() -> dict | None:
        status, body = await _list(base_url, token(tenant))
        return body if status == 200 and len(body["incidents"]) == 4 else None

    body = await eventually(four, 20)
    by_id = {i["incident_id"]: i for i in body["incidents"]}
    assert set(by_id) == {"A", "B", "C", "D"}, "another tenant's never listed"
    a = by_id["A"]
    assert a["status"] == "open" and a["severity"] == "critical" and a["site_id"] == "s1"
    assert a["title"] == "Mains lost" and a["opened_at"] == "2026-11-25T10:00:00Z"
    assert a["suppressed"] is None and a["last_event_id"]
    for field in ("acknowledged_by", "assignee", "snoozed_until", "escalation_level"):
        assert field in a

    for action, incident in (("acknowledge", "A"), ("resolve", "D")):
        body_ = {"incident_id": incident, "action": action, "user_id": "alice"}
        await produce(TOPIC_ACTIONS, envelope(tenant, body_))

    async def moved() -> dict | None:
        _, listed = await _list(base_url, token(tenant))
        ids = {i["incident_id"]: i for i in listed["incidents"]}
        a_now = ids.get("A", {})
        done = (
            a_now.get("status") == "acknowledged"
            and a_now.get("last_event_id") != a["last_event_id"]
        )
        return ids if "D" not in ids and done else None

    open_now = await eventually(moved, 20)
    assert open_now["A"]["acknowledged_by"] == "alice"
    assert parse_id(open_now["A"]["last_event_id"]) > parse_id(a["last_event_id"])
    _, resolved = await _list(base_url, token(tenant), status="resolved")
    assert [i["incident_id"] for i in resolved["incidents"]] == ["D"]
    _, everything = await _list(base_url, token(tenant), status="all")
    assert {i["incident_id"] for i in everything["incidents"]} == {"A", "B", "C", "D"}
    _, only_s2 = await _list(base_url, token(tenant), site_id="s2")
    assert [i["incident_id"] for i in only_s2["incidents"]] == ["B"]

    # a site-restricted user lists only its sites (and the tenant-wide ones)
    _, restricted = await _list(base_url, token(tenant, sites=["s1"]))
    assert {i["incident_id"] for i in restricted["incidents"]} == {"A", "C"}
    _, limited = await _list(base_url, token(tenant), limit="1")
    assert len(limited["incidents"]) == 1


async def test_bad_queries_name_the_field(base_url, token):
    tenant = new_tenant()
    for query, field in (
        ({"status": "sleeping"}, "status"),
        ({"site_id": "a:b"}, "site_id"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
    ):
        status, body = await _list(base_url, token(tenant), **query)
        assert status == 400 and body["error"].startswith(field), body
    status, body = await _list(base_url, "garbage")
    assert status == 401
    status, body = await _list(base_url, token(tenant))
    assert status == 200 and body == {"incidents": []}
