"""Quiet during maintenance: the pure suppression rule (windows with time zones, midnight
and DST; silences; site-down inhibition) with the clock passed in, and end to end through
the real broker and Redis: alerts are delivered with `suppressed`, pages are held back, and
when the reason ends the chain starts from level 1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from notify_core.events import TOPIC_ALERTS, TOPIC_SITES
from notify_core.suppression import Notice, Silence, State, Window, mutes
from tests.helpers import NodeClient, alert, envelope, new_tenant


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


NIGHT = Window(
    "w1", "t", frozenset({"s1"}), start=time(22, 0), end=time(2, 0), timezone="Europe/Berlin"
)


def test_a_nightly_window_crosses_midnight_in_its_time_zone():
    assert NIGHT.active_until(ts("2026-06-10T23:30:00+02:00")) == ts("2026-06-11T02:00:00+02:00")
    assert NIGHT.active_until(ts("2026-06-11T01:30:00+02:00")) == ts("2026-06-11T02:00:00+02:00")
    assert NIGHT.active_until(ts("2026-06-11T03:00:00+02:00")) is None
    assert NIGHT.active_until(ts("2026-06-10T21:59:59+02:00")) is None


def test_a_window_over_a_dst_change_keeps_wall_clock_times():
    works = Window(
        "w2", "t", frozenset({"s1"}), start=time(1, 0), end=time(4, 0), timezone="Europe/Berlin"
    )
    # 2026-03-29: clocks go 02:00 -> 03:00 in Berlin; 01:00 CET to 04:00 CEST is 2 hours
    start = ts("2026-03-29T01:00:00+01:00")
    until = works.active_until(start + 60)
    assert until == ts("2026-03-29T04:00:00+02:00") and until - start == 2 * 3600
    weekly = works._replace(days=("sat",))  # 2026-03-29 is a Sunday
    assert weekly.active_until(start + 60) is None


@given(st.floats(ts("2026-01-01T00:00:00+00:00"), ts("2027-01-01T00:00:00+00:00")))
def test_a_window_covers_now_only_until_its_end(now):
    until = NIGHT.active_until(now)
    if until is not None:
        assert now < until <= now + 4 * 3600 + 1
        local = datetime.fromtimestamp(now, UTC).astimezone(
            __import__("zoneinfo").ZoneInfo("Europe/Berlin")
        )
        assert local.time() >= time(22, 0) or local.time() < time(2, 0)


def test_reasons_in_order_and_inhibition_spares_critical():
    n = Notice("t", "I-1", "s1", "major")
    silence = Silence("x1", "t", {"severity": "major"}, 0, 10_000)
    assert mutes(n, State({}), 100) is None
    assert mutes(n, State({("t", "s1"): "maintenance"}), 100).by == "maintenance"
    assert mutes(n, State({}, silences=(silence,)), 100).id == "x1"
    assert mutes(n, State({}, silences=(silence,)), 20_000) is None, "a silence ends"
    assert mutes(n._replace(tenant_id="u"), State({}, silences=(silence,)), 100) is None
    down = State({("t", "s1"): "down"})
    assert mutes(n, down, 100).by == "inhibition"
    assert mutes(n._replace(severity="critical"), down, 100) is None, "critical still pages"
    threshold = n._replace(severity="critical", source="threshold")
    assert mutes(threshold, down, 100).by == "inhibition"
    one_time = Window("w3", "t", frozenset({"s1"}), starts_at=50, ends_at=500)
    assert mutes(n, State({}, windows=(one_time,)), 100).until == 500
    assert mutes(n, State({}, windows=(one_time,)), 600) is None


async def _http(base_url, token, method, path, body=None):
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{base_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as r,
    ):
        return r.status, await r.json()


async def test_suppressed_alerts_are_delivered_quietly_with_the_reason(base_url, produce, token):
    tenant = new_tenant()
    op = token(tenant, "op", ["operator"])
    client = await NodeClient.start(base_url, op, ["websocket"])
    try:
        await client.connected()
        status, window = await _http(
            base_url,
            op,
            "POST",
            "/api/v1/maintenance",
            {
                "site_ids": ["m1"],
                "ends_at": datetime.now(UTC).timestamp() + 600,
                "reason": "rectifier swap",
            },
        )
        assert status == 201 and window["id"]
        status, silence = await _http(
            base_url,
            op,
            "POST",
            "/api/v1/silences",
            {
                "matchers": {"severity": "warning"},
                "ends_at": datetime.now(UTC).timestamp() + 600,
                "comment": "noisy",
            },
        )
        assert status == 201
        await produce(TOPIC_SITES, envelope(tenant, {"status": "down"}, site="d1"))
        await asyncio.sleep(1.5)  # every process sees them within a second
        for incident, severity, site in (
            ("A-maint", "critical", "m1"),
            ("A-silenced", "warning", "x1"),
            ("A-inhibited", "major", "d1"),
            ("A-pages", "critical", "d1"),
            ("A-plain", "major", "x1"),
        ):
            await produce(TOPIC_ALERTS, alert(tenant, incident, severity, site=site))
        got = await client.wait_count(lambda m: m.get("name") == "incident_alert", 5)
        by_id = {e["data"]["incident"]["incident_id"]: e["data"]["suppressed"] for e in got}
        assert by_id["A-maint"]["by"] == "maintenance" and by_id["A-maint"]["id"] == window["id"]
        assert by_id["A-maint"]["until"]
        assert by_id["A-silenced"] == {
            "by": "silence",
            "id": silence["id"],
            "until": silence["ends_at"],
        }
        assert by_id["A-inhibited"]["by"] == "inhibition"
        assert by_id["A-pages"] is None and by_id["A-plain"] is None, "the twins are not quiet"
        status, listed = await _http(base_url, op, "GET", "/api/v1/maintenance")
        assert [w["id"] for w in listed["windows"]] == [window["id"]]
        status, listed = await _http(base_url, op, "GET", "/api/v1/silences")
        assert [s["id"] for s in listed["silences"]] == [silence["id"]]
        # refused: no role, another site for a restricted user, a window in the past
        assert (
            await _http(
                base_url,
                token(tenant, "v", []),
                "POST",
                "/api/v1/silences",
                {"matchers": {"kpi": "x"}, "ends_at": 9e9},
            )
        )[0] == 403
        assert (
            await _http(
                base_url,
                token(tenant, "r", sites=["s1"]),
                "POST",
                "/api/v1/maintenance",
                {"site_ids": ["s2"], "ends_at": 9e9},
            )
        )[0] == 403
        assert (
            await _http(
                base_url, op, "POST", "/api/v1/maintenance", {"site_ids": ["s2"], "ends_at": 10}
            )
        )[0] == 400
        assert (
            await _http(
                base_url, token(new_tenant()), "DELETE", f"/api/v1/silences/{silence['id']}"
            )
        )[0] == 404
    finally:
        await client.close()


async def test_no_page_in_maintenance_and_level_1_when_it_ends(base_url, produce, token):
    """The shipped test policy `fast` pages on-call 2 s after a critical at esc-site."""
    tenant = new_tenant()
    op = token(tenant, "oc", ["oncall", "operator"])
    client = await NodeClient.start(base_url, op, ["websocket"])
    try:
        await client.connected()
        status, window = await _http(
            base_url,
            op,
            "POST",
            "/api/v1/maintenance",
            {"site_ids": ["esc-site"], "ends_at": datetime.now(UTC).timestamp() + 600},
        )
        assert status == 201
        await asyncio.sleep(1.5)
        await produce(TOPIC_ALERTS, alert(tenant, "MW-1", "critical", site="esc-site"))
        first = await client.wait_for(lambda m: m.get("name") == "incident_alert")
        assert first["data"]["suppressed"]["by"] == "maintenance"
        await asyncio.sleep(3.5)
        assert client.events("escalation") == [], "no level fires while in maintenance"
        status, _ = await _http(base_url, op, "DELETE", f"/api/v1/maintenance/{window['id']}")
        assert status == 200
        unmuted = await client.wait_for(
            lambda m: m.get("name") == "incident_update" and "suppressed" in m["data"], 15
        )
        assert unmuted["data"]["suppressed"] is None and unmuted["data"]["status"] == "open"
        page = await client.wait_for(lambda m: m.get("name") == "escalation", 10)
        assert page["data"]["level"] == 1 and page["data"]["incident_id"] == "MW-1"
    finally:
        await client.close()


async def test_a_storm_at_one_site_is_one_page_listing_every_incident(base_url, produce, token):
    """The test policy `storm` groups by site with group_wait 1s: ten criticals at once are
    one chain; its page lists them all; acknowledging every one of them stops the chain."""
    tenant = new_tenant()
    op = token(tenant, "oc", ["oncall", "operator"])
    client = await NodeClient.start(base_url, op, ["websocket"])
    try:
        await client.connected()
        ids = [f"ST-{n}" for n in range(10)]
        for ident in ids:
            await produce(TOPIC_ALERTS, alert(tenant, ident, "critical", site="storm-site"))
        page = await client.wait_for(lambda m: m.get("name") == "escalation", 15)
        assert page["data"]["level"] == 1 and sorted(page["data"]["incidents"]) == sorted(ids)
        await asyncio.sleep(0.5)
        assert len(client.events("escalation")) == 1, "one page for the storm, not ten"
        for ident in ids:
            status, _ = await _http(base_url, op, "POST", f"/api/v1/incidents/{ident}/acknowledge")
            assert status == 202
        await client.wait_count(lambda m: m.get("name") == "incident_update", 10)
        await asyncio.sleep(3.0)  # level 2 was due 2 s after level 1
        assert len(client.events("escalation")) == 1, "acknowledging every incident stopped it"
    finally:
        await client.close()
