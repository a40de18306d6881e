"""Who is on call, through the session daemon: `/api/v1/oncall` (who, shifts, iCal,
overrides) and escalation levels naming `schedule:` / `site_oncall:`, resolved when the
level fires (tansu + Faust + Redis + the official socket.io-client).

The schedules are the session's `oncall.yaml` (tests/conftest.py ONCALL): tenant
`oc-acme` has `field` (amina, brian: 1d shifts from 08:00 Nairobi) and `empty` (nobody
until 2099); tenant `oc-other` has its own `field`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import icalendar

from notify_core.wire.events import TOPIC_ALERTS
from tests.helpers import NodeClient, alert

TENANT, OTHER = "oc-acme", "oc-other"


async def _http(base_url: str, tok: str | None, method: str, path: str, body: Any = None):
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{base_url}{path}", json=body, headers=headers) as r,
    ):
        text = await r.text()
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, text


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _who(base_url: str, tok: str, schedule: str = "field") -> list[str]:
    status, body = await _http(base_url, tok, "GET", f"/api/v1/oncall?schedule={schedule}")
    assert status == 200, body
    return body["oncall"][0]["users"]


async def test_who_is_on_call_and_the_shifts_follow_the_schedule(base_url, token):
    tok = token(TENANT, "amina", ["operator"])
    status, body = await _http(base_url, tok, "GET", "/api/v1/oncall?at=2026-01-01T06:00:00Z")
    assert status == 200
    by_name = {entry["schedule"]: entry for entry in body["oncall"]}
    assert set(by_name) == {"field", "empty"}
    # 08:00 in Nairobi is 05:00Z: amina's first shift, brian's the next day
    assert by_name["field"] == {
        "schedule": "field",
        "users": ["amina"],
        "until": "2026-01-02T05:00:00Z",
    }
    assert by_name["empty"]["users"] == []
    path = "/api/v1/oncall?schedule=field&at=2026-01-02T05:00:00Z"
    assert (await _http(base_url, tok, "GET", path))[1]["oncall"][0]["users"] == ["brian"]
    status, body = await _http(
        base_url,
        tok,
        "GET",
        "/api/v1/oncall/shifts?schedule=field&from=2026-01-01T00:00:00Z&to=2026-01-03T05:00:00Z",
    )
    assert status == 200
    assert body["shifts"] == [
        {
            "user_id": "amina",
            "start": "2026-01-01T05:00:00Z",
            "end": "2026-01-02T05:00:00Z",
            "source": "rota",
        },
        {
            "user_id": "brian",
            "start": "2026-01-02T05:00:00Z",
            "end": "2026-01-03T05:00:00Z",
            "source": "rota",
        },
    ]
    # bad input names the field
    status, body = await _http(base_url, tok, "GET", "/api/v1/oncall?at=yesterday")
    assert status == 400 and body["error"].startswith("at:")
    path = "/api/v1/oncall/shifts?schedule=field&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"
    status, body = await _http(base_url, tok, "GET", path)
    assert status == 400 and body["error"].startswith("to:")


async def test_another_tenants_schedules_are_unknown(base_url, token):
    mine = token(OTHER, "mallory", ["admin"])
    status, body = await _http(base_url, mine, "GET", "/api/v1/oncall")
    assert status == 200 and [e["users"] for e in body["oncall"]] == [["mallory"]]  # own: yes
    status, body = await _http(base_url, mine, "GET", "/api/v1/oncall?schedule=empty")
    assert status == 400 and "schedule" in body["error"]
    status, _ = await _http(base_url, None, "GET", "/api/v1/oncall")
    assert status == 401


async def test_the_ical_feed_reads_with_a_real_parser(base_url, token):
    tok = token(TENANT, "amina", ["operator"])
    status, text = await _http(base_url, None, "GET", f"/api/v1/oncall/field.ics?token={tok}")
    assert status == 200
    cal = icalendar.Calendar.from_ical(text)
    events = [c for c in cal.walk("VEVENT")]
    assert 59 <= len(events) <= 61  # 60 days of 1d shifts
    now = datetime.now(UTC)
    first = events[0]
    assert first.decoded("DTSTART") <= now + timedelta(minutes=1) < first.decoded("DTEND")
    assert {str(e["SUMMARY"]).rsplit(" ", 1)[1] for e in events} == {"amina", "brian"}
    whole = events[1:-1]  # the first and the last are clipped to [now, now + 60 days)
    assert all(e.decoded("DTEND") - e.decoded("DTSTART") == timedelta(days=1) for e in whole)
    # the same shift keeps its UID from one fetch to the next; user_id keeps one user's
    _, again = await _http(base_url, tok, "GET", "/api/v1/oncall/field.ics?user_id=brian")
    theirs = icalendar.Calendar.from_ical(again).walk("VEVENT")
    assert theirs and all(str(e["SUMMARY"]).endswith(" brian") for e in theirs)
    assert {str(e["UID"]) for e in theirs} <= {str(e["UID"]) for e in events}
    # the attacker: no token, another tenant's token
    assert (await _http(base_url, None, "GET", "/api/v1/oncall/field.ics?token=forged"))[0] == 401
    other = token(OTHER, "mallory", ["admin"])
    assert (await _http(base_url, other, "GET", "/api/v1/oncall/empty.ics"))[0] == 404


async def test_overrides_swap_add_are_guarded_and_audited(base_url, token):
    admin = token(TENANT, "boss", ["admin"])
    now = datetime.now(UTC)
    on_call = await _who(base_url, admin)
    assert len(on_call) == 1
    holder = on_call[0]
    bystander = "brian" if holder == "amina" else "amina"
    span = {
        "starts_at": _iso(now - timedelta(minutes=1)),
        "ends_at": _iso(now + timedelta(hours=1)),
    }
    # a non-admin may not move someone else's shift ...
    status, body = await _http(
        base_url,
        token(TENANT, bystander, ["operator"]),
        "POST",
        "/api/v1/oncall/overrides",
        {"schedule": "field", "user_id": bystander, "replaces": holder, **span},
    )
    assert status == 403
    # ... but the holder may give theirs away
    status, swap = await _http(
        base_url,
        token(TENANT, holder, ["operator"]),
        "POST",
        "/api/v1/oncall/overrides",
        {"schedule": "field", "user_id": "carol", "replaces": holder, **span},
    )
    assert status == 201 and swap["replaces"] == holder and swap["user_id"] == "carol"
    status, extra = await _http(
        base_url,
        admin,
        "POST",
        "/api/v1/oncall/overrides",
        {"schedule": "field", "user_id": "dave", **span},
    )
    assert status == 201
    try:
        assert await _who(base_url, admin) == ["carol", "dave"]
        status, listed = await _http(
            base_url, admin, "GET", "/api/v1/oncall/overrides?schedule=field"
        )
        assert {o["id"] for o in listed["overrides"]} >= {swap["id"], extra["id"]}
        # another tenant's admin neither sees nor deletes them
        other = token(OTHER, "mallory", ["admin"])
        _, theirs = await _http(base_url, other, "GET", "/api/v1/oncall/overrides")
        assert swap["id"] not in {o["id"] for o in theirs["overrides"]}
        status, _ = await _http(base_url, other, "DELETE", f"/api/v1/oncall/overrides/{swap['id']}")
        assert status == 404
        # bad input names the field
        bad = {"schedule": "field", "user_id": "x", "starts_at": span["ends_at"]}
        status, body = await _http(
            base_url,
            admin,
            "POST",
            "/api/v1/oncall/overrides",
            {**bad, "ends_at": span["starts_at"]},
        )
        assert status == 400 and body["error"].startswith("ends_at")
        status, body = await _http(
            base_url,
            admin,
            "POST",
            "/api/v1/oncall/overrides",
            {**span, "schedule": "nope", "user_id": "x"},
        )
        assert status == 400 and body["error"].startswith("schedule")
    finally:
        for made in (swap, extra):
            await _http(base_url, admin, "DELETE", f"/api/v1/oncall/overrides/{made['id']}")
    assert await _who(base_url, admin) == [holder]
    _, audit = await _http(base_url, admin, "GET", "/api/v1/audit")
    done = [(r["action"], r["target"]) for r in audit["records"] if "override" in r["action"]]
    assert ("override_create", swap["id"]) in done and ("override_delete", swap["id"]) in done
    assert ("override_create", extra["id"]) in done


def _escalations(client: NodeClient, incident: str) -> list[dict]:
    return [e for e in client.events("escalation") if e["incident_id"] == incident]


async def test_a_level_pages_who_is_on_call_when_it_fires(base_url, produce, token):
    admin = token(TENANT, "boss", ["admin"])
    holder = (await _who(base_url, admin))[0]
    other = "brian" if holder == "amina" else "amina"
    clients = {
        user: await NodeClient.start(base_url, token(TENANT, user, ["operator"]), ["websocket"])
        for user in (holder, other)
    }
    try:
        for client in clients.values():
            await client.connected()
        first = f"OC-{uuid.uuid4().hex[:8]}"
        await produce(TOPIC_ALERTS, alert(TENANT, first, "critical", site="oc-site"))
        page = await clients[holder].wait_for(
            lambda m: m.get("name") == "escalation" and m["data"]["incident_id"] == first, 15
        )
        assert page["data"]["targets"] == [{"schedule": "field", "users": [holder]}]
        # an override changes who the next page reaches
        now = datetime.now(UTC)
        status, swap = await _http(
            base_url,
            admin,
            "POST",
            "/api/v1/oncall/overrides",
            {
                "schedule": "field",
                "user_id": other,
                "replaces": holder,
                "starts_at": _iso(now - timedelta(minutes=1)),
                "ends_at": _iso(now + timedelta(hours=1)),
            },
        )
        assert status == 201
        try:
            second = f"OC-{uuid.uuid4().hex[:8]}"
            await produce(TOPIC_ALERTS, alert(TENANT, second, "critical", site="oc-site"))
            page = await clients[other].wait_for(
                lambda m: m.get("name") == "escalation" and m["data"]["incident_id"] == second, 15
            )
            assert page["data"]["targets"] == [{"schedule": "field", "users": [other]}]
        finally:
            await _http(base_url, admin, "DELETE", f"/api/v1/oncall/overrides/{swap['id']}")
        await asyncio.sleep(0.5)
        # each was paged for exactly the incident it was on call for
        assert [e["incident_id"] for e in clients[holder].events("escalation")] == [first]
        assert [e["incident_id"] for e in clients[other].events("escalation")] == [second]
        status, body = await _http(base_url, admin, "GET", f"/api/v1/incidents/{first}/timeline")
        notified = [e for e in body["timeline"] if e["kind"] == "notified"]
        assert notified[0]["targets"] == [{"schedule": "field", "users": [holder]}]
    finally:
        for client in clients.values():
            await client.close()


async def test_site_oncall_pages_the_covering_schedule_and_nobody_is_loud(base_url, produce, token):
    admin_tok = token(TENANT, "boss", ["admin"])
    holder = (await _who(base_url, admin_tok))[0]
    admin = await NodeClient.start(base_url, admin_tok, ["websocket"])
    paged = await NodeClient.start(base_url, token(TENANT, holder, ["operator"]), ["polling"])
    try:
        await admin.connected()
        await paged.connected()
        covered = f"OC-{uuid.uuid4().hex[:8]}"
        await produce(TOPIC_ALERTS, alert(TENANT, covered, "critical", site="oc-site-covered"))
        page = await paged.wait_for(
            lambda m: m.get("name") == "escalation" and m["data"]["incident_id"] == covered, 15
        )
        assert page["data"]["targets"] == [
            {"schedule": "field", "users": [holder], "site_oncall": True}
        ]
        lonely = f"OC-{uuid.uuid4().hex[:8]}"
        await produce(TOPIC_ALERTS, alert(TENANT, lonely, "critical", site="oc-nobody"))
        notice = await admin.wait_for(
            lambda m: (
                m.get("name") == "system_notification" and m["data"].get("incident_id") == lonely
            ),
            15,
        )
        assert notice["data"]["title"] == "Nobody on call"
        _, body = await _http(base_url, admin_tok, "GET", f"/api/v1/incidents/{lonely}/timeline")
        kinds = [e["kind"] for e in body["timeline"]]
        assert "nobody_on_call" in kinds and "notified" in kinds
        entry = next(e for e in body["timeline"] if e["kind"] == "nobody_on_call")
        assert entry["schedule"] == "empty" and entry["message"] == "nobody on call"
        # the notice went to the admins only
        assert not [
            e for e in paged.events("system_notification") if e.get("incident_id") == lonely
        ]
    finally:
        await admin.close()
        await paged.close()


async def test_the_handover_report_covers_the_current_shift(base_url, produce, token):
    """`field` covers site oc-site-covered: its incidents are in the report, oc-site's not."""
    from tests.helpers import envelope

    tok = token(TENANT, "amina", ["operator"])
    holder = await _who(base_url, tok)
    covered, elsewhere = f"HO-{uuid.uuid4().hex[:6]}", f"HO-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    payload = {"title": "Handover check", "severity": "minor"}
    await produce(
        TOPIC_ALERTS,
        {
            **envelope(TENANT, {**payload, "incident_id": covered}, "oc-site-covered"),
            "timestamp": now,
        },
    )
    await produce(
        TOPIC_ALERTS,
        {**envelope(TENANT, {**payload, "incident_id": elsewhere}, "oc-site"), "timestamp": now},
    )
    body: dict[str, Any] = {}
    for _ in range(100):
        status, body = await _http(base_url, tok, "GET", "/api/v1/reports/handover?schedule=field")
        assert status == 200
        if covered in body["opened"]:
            break
        await asyncio.sleep(0.1)
    assert body["schedule"] == "field" and body["shift"]["users"] == holder
    begun = datetime.fromisoformat(body["shift"]["from"].replace("Z", "+00:00"))
    ends = datetime.fromisoformat(body["shift"]["to"].replace("Z", "+00:00"))
    assert begun <= datetime.now(UTC) < ends and ends - begun == timedelta(days=1)
    assert covered in body["opened"] and elsewhere not in body["opened"]
    assert covered in {r["incident_id"] for r in body["open"]}
    assert set(body["ending_next"]) == {"maintenance", "silences"}
    status, body = await _http(base_url, tok, "GET", "/api/v1/reports/handover?schedule=nope")
    assert status == 400 and body["error"].startswith("schedule")
    status, _ = await _http(
        base_url, token(TENANT, "v", []), "GET", "/api/v1/reports/handover?schedule=field"
    )
    assert status == 403
