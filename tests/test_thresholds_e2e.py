"""Thresholds through the real pipeline: tansu + Faust + Node clients on the site rooms."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from notify_core.wire.events import TOPIC_KPIS
from pipeline.kpi_alerts import incident_id_for
from tests.conftest import TEST_THRESHOLDS, daemon_settings, eventually
from tests.helpers import NodeClient, envelope, new_tenant
from towerco_notify.runtime import Runtime


def ts(second: int) -> str:
    return f"2026-11-25T10:{second // 60:02d}:{second % 60:02d}Z"


def breaches(client: NodeClient) -> list[dict]:
    return [b for e in client.events("kpi_update") for b in e.get("threshold_breach", [])]


async def test_crossing_and_clearing_breach_once_on_the_site_room_only(base_url, produce, token):
    tenant = new_tenant()
    s1 = await NodeClient.start(base_url, token(tenant), ["websocket"])
    s2 = await NodeClient.start(base_url, token(tenant), ["polling"])
    try:
        await s1.connected()
        await s2.connected()
        await s1.emit("subscribe_kpis", {"site_ids": ["s1"]})
        await s2.emit("subscribe_kpis", {"site_ids": ["s2"]})
        series = [30, 46, 50, 52, 44, 41, 39, 30]  # warning at 45, clear below 40
        for i, value in enumerate(series):
            await produce(TOPIC_KPIS, envelope(tenant, {"temp_c": value, "other": 1}, "s1", ts(i)))
        await produce(TOPIC_KPIS, envelope(tenant, {"temp_c": 20}, "s2", ts(30)))
        await s1.wait_count(lambda m: m.get("name") == "kpi_update", len(series))
        await s2.wait_for(lambda m: m.get("name") == "kpi_update")
        found = breaches(s1)
        assert [(b["level"], b["previous_state"]) for b in found] == [
            ("warning", "ok"),
            ("ok", "firing:warning"),
        ]
        warn, clear = found
        assert warn["rule_id"] == "temp_c" and warn["value"] == 46 and warn["threshold"] == 45
        assert clear["value"] == 39 and clear["threshold"] == 40
        carrier = [e for e in s1.events("kpi_update") if e.get("threshold_breach")]
        assert [e["kpi_data"]["temp_c"] for e in carrier] == [46, 39]
        assert all(e["site_id"] == "s2" for e in s2.events("kpi_update"))
        assert breaches(s2) == []
        assert not s1.events("incident_alert")  # warning only: no incident
    finally:
        await s1.close()
        await s2.close()


async def test_critical_breach_raises_one_incident_and_clear_resolves_it(base_url, produce, token):
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant), ["websocket"])
    try:
        await client.connected()
        for i, value in enumerate([50, 56, 60, 58, 57, 30]):
            await produce(TOPIC_KPIS, envelope(tenant, {"temp_c": value}, "hot", ts(i)))
        update = await client.wait_for(lambda m: m.get("name") == "incident_update")
        alerts = client.events("incident_alert")
        assert len(alerts) == 1
        inc = alerts[0]
        expected_id = incident_id_for(tenant, "hot", "temp_c")
        assert inc["incident"]["incident_id"] == expected_id and inc["priority"] == "critical"
        assert inc["site_id"] == "hot" and inc["requires_acknowledgment"] is True
        assert inc["incident"]["rule_id"] == "temp_c" and "56" in inc["incident"]["title"]
        assert update["data"]["incident_id"] == expected_id
        assert update["data"]["status"] == "resolved" and update["data"]["by"] == "threshold-engine"
    finally:
        await client.close()


async def test_tenant_override_applies(base_url, produce, token):
    tenant = "tuned"  # the override in TEST_THRESHOLDS: warning 60
    client = await NodeClient.start(base_url, token(tenant, sites=None), ["websocket"])
    site = "s-" + uuid.uuid4().hex[:6]
    try:
        await client.connected()
        await client.emit("subscribe_kpis", {"site_ids": [site]})
        for i, value in enumerate([50, 61]):
            await produce(TOPIC_KPIS, envelope(tenant, {"temp_c": value}, site, ts(i)))
        await client.wait_count(lambda m: m.get("name") == "kpi_update", 2)
        found = breaches(client)
        assert [(b["level"], b["rule_id"], b["value"]) for b in found] == [
            ("warning", "tuned/temp_c", 61)
        ]
    finally:
        await client.close()


async def _history(base_url: str, tok: str) -> list[dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}/api/v1/notifications",
            params={"limit": "1000"},
            headers={"Authorization": f"Bearer {tok}"},
        ) as resp,
    ):
        return (await resp.json())["notifications"]


async def test_worker_restart_mid_episode_neither_repeats_nor_loses(
    broker, redis_url, config_dir, produce, token
):
    tenant = new_tenant()
    settings = daemon_settings(broker, redis_url, config_dir=config_dir)
    first = Runtime(settings, mode="run")
    await first.start()
    await first.wait_ready(60)
    base = f"http://127.0.0.1:{first.http_port}"

    async def levels() -> list[str]:
        events = await _history(base, token(tenant))
        return [b["level"] for e in events for b in e.get("threshold_breach", [])]

    try:
        for i, value in enumerate([30, 50, 57]):
            await produce(TOPIC_KPIS, envelope(tenant, {"temp_c": value}, "s1", ts(i)))
        await eventually(lambda: _levels_are(levels, ["warning", "critical"]), 20)
    finally:
        await first.stop()

    second = Runtime(settings.model_copy(update={"http_port": 0}), mode="run")
    await second.start()
    try:
        await second.wait_ready(60)
        base = f"http://127.0.0.1:{second.http_port}"
        for i, value in enumerate([58, 59, 56, 35], start=3):
            await produce(TOPIC_KPIS, envelope(tenant, {"temp_c": value}, "s1", ts(i)))

        async def seven_samples() -> bool:
            return (
                len([e for e in await _history(base, token(tenant)) if e["type"] == "kpi_update"])
                == 7
            )

        await eventually(seven_samples, 30)
        assert await levels() == ["warning", "critical", "ok"]
        events = await _history(base, token(tenant))
        assert [e["type"] for e in events].count("incident_alert") == 1
        assert [e["status"] for e in events if e["type"] == "incident_update"] == ["resolved"]
    finally:
        await second.stop()


async def _levels_are(levels, want: list[str]) -> bool:
    return await levels() == want


async def test_hot_reload_applies_good_rules_and_refuses_broken_ones(
    daemon, config_dir, base_url, produce, token
):
    path = config_dir / "thresholds.yaml"
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant), ["websocket"])
    generation = daemon.rules.generation
    try:
        await client.connected()
        await client.emit("subscribe_kpis", {"site_ids": ["a", "b", "c"]})
        path.write_text(TEST_THRESHOLDS + "  fuel_pct:\n    direction: below\n    warning: 20\n")
        path.write_text(
            TEST_THRESHOLDS.replace(
                "kpis:\n", "kpis:\n  fuel_pct: {direction: below, warning: 20}\n", 1
            )
        )
        await eventually(lambda: daemon.rules.generation > generation, 15)
        await produce(TOPIC_KPIS, envelope(tenant, {"fuel_pct": 12}, "a", ts(1)))
        line = await client.wait_for(
            lambda m: m.get("name") == "kpi_update" and m["data"]["site_id"] == "a"
        )
        assert line["data"]["threshold_breach"][0]["rule_id"] == "fuel_pct"

        good_generation = daemon.rules.generation
        path.write_text("kpis:\n  fuel_pct: {direction: below, warning: 20, critical: 30}\n")
        await eventually(lambda: daemon.rules.last_error is not None, 15)
        assert "fuel_pct" in daemon.rules.last_error and "line" not in daemon.rules.last_error
        assert daemon.rules.generation == good_generation  # refused, old rules in force
        await produce(TOPIC_KPIS, envelope(tenant, {"fuel_pct": 10}, "b", ts(2)))
        line = await client.wait_for(
            lambda m: m.get("name") == "kpi_update" and m["data"]["site_id"] == "b"
        )
        assert line["data"]["threshold_breach"][0]["rule_id"] == "fuel_pct"
        assert daemon.reload_config("test") is False  # the same refusal on request (SIGHUP)
    finally:
        path.write_text(TEST_THRESHOLDS)
        await eventually(lambda: daemon.rules.last_error is None, 15)
        await client.close()
        await asyncio.sleep(0)


async def test_thresholds_api_shows_effective_rules_for_the_callers_tenant(base_url, token):
    async with aiohttp.ClientSession() as http:

        async def get(tok: str) -> tuple[int, dict]:
            async with http.get(
                f"{base_url}/api/v1/thresholds", headers={"Authorization": f"Bearer {tok}"}
            ) as resp:
                return resp.status, await resp.json()

        status, body = await get(token("tuned", roles=["operator"]))
        assert status == 200 and body["tenant_id"] == "tuned"
        temp = body["rules"]["tenant"]["temp_c"]
        assert (temp["warning"], temp["critical"], temp["rule_id"]) == (60, 70, "tuned/temp_c")
        status, other = await get(token(new_tenant(), roles=["admin"]))
        assert status == 200 and other["rules"]["tenant"]["temp_c"]["warning"] == 45
        status, _ = await get(token("tuned", roles=["oncall"]))
        assert status == 403
        status, _ = await get("junk")
        assert status == 401
