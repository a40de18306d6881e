"""Heartbeats: a source that goes quiet opens an incident, its next ping resolves it.

The decision is pure (notify_core/heartbeats/policy.py, property-tested); the rest runs through
the session daemon (tansu + Faust + Redis + the official socket.io-client), whose
heartbeats.yaml (tests/conftest.py HEARTBEATS) has, for tenant `hb-acme`, `nms` (http,
2 s) and `site-kpis` (KPI samples of site hb-site, 2 s).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify_core.config_yaml import ConfigInvalid
from notify_core.heartbeats.config import Heartbeat, parse_heartbeats
from notify_core.heartbeats.policy import Beat, decide, state
from notify_core.wire.events import TOPIC_KPIS
from tests.conftest import HEARTBEAT_KEY, eventually
from tests.helpers import NodeClient, envelope

HB = Heartbeat(name="x", tenant="t", kind="kpi", timeout=60)
ms = st.integers(0, 10**9)


@given(last=st.one_of(st.none(), ms), opened=st.one_of(st.none(), ms), now=ms)
def test_the_decision_is_a_plain_function_of_pings_and_now(last, opened, now):
    beat = Beat(last, opened)
    change = decide(HB, beat, now)
    if last is None:
        assert change is None and state(HB, beat, now) == "inactive"  # never pinged: quiet
    elif opened is None:
        assert (change == "open") == (now - last > 60_000)
        assert (state(HB, beat, now) == "unhealthy") == (change == "open")
    else:
        assert change == ("resolve" if last > opened else None)


def test_heartbeat_file_errors_name_file_line_heartbeat_and_field(monkeypatch):
    monkeypatch.delenv("NO_SUCH_HB_KEY", raising=False)
    text = """\
version: 1
heartbeats:
  - {name: a, tenant: t, kind: http, timeout: 5m}
  - {name: b, tenant: t, kind: kpi, timeout: 0.5s}
  - {name: c, tenant: t, kind: http, timeout: 5m, key_env: NO_SUCH_HB_KEY}
  - {name: d, tenant: t, kind: kpi, timeout: 5m, key_env: X}
"""
    with pytest.raises(ConfigInvalid) as err:
        parse_heartbeats(text, "heartbeats.yaml")
    message = str(err.value)
    assert "heartbeats.yaml:3: heartbeat a: -: kind http: name exactly one of key_env" in message
    assert "heartbeats.yaml:4: heartbeat b: timeout: at least 1s" in message
    assert "heartbeats.yaml:5: heartbeat c: key_env: environment variable" in message
    assert "heartbeat d: -: kind kpi takes no key" in message
    monkeypatch.setenv("NO_SUCH_HB_KEY", "k")
    good = text.splitlines()[4].replace("  - ", "heartbeats:\n  - ", 1)
    assert ("t", "c") in parse_heartbeats(good)


async def _ping(base_url: str, tenant: str, name: str, key: str | None) -> int:
    query = f"?key={key}" if key is not None else ""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base_url}/api/v1/heartbeats/{tenant}/{name}{query}") as resp,
    ):
        return resp.status


async def _states(base_url: str, tok: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/api/v1/heartbeats", headers={"Authorization": f"Bearer {tok}"}) as r,
    ):
        assert r.status == 200
        return {h["name"]: h for h in (await r.json())["heartbeats"]}


async def test_a_quiet_http_source_opens_an_incident_and_its_ping_resolves_it(base_url, token):
    tok = token("hb-acme", "op", ["operator"])
    client = await NodeClient.start(base_url, tok, ["websocket"])
    try:
        await client.connected()
        assert (await _states(base_url, tok))["nms"]["state"] in ("inactive", "healthy")
        assert await _ping(base_url, "hb-acme", "nms", HEARTBEAT_KEY) == 200
        assert (await _states(base_url, tok))["nms"]["state"] == "healthy"
        # quiet for longer than its 2 s: incident heartbeat:nms through the normal path
        opened = await client.wait_for(
            lambda m: (
                m.get("name") == "incident_alert"
                and m["data"]["incident"]["incident_id"] == "heartbeat:nms"
            ),
            15,
        )
        assert opened["data"]["priority"] == "critical"
        assert "No heartbeat from nms" in opened["data"]["incident"]["title"]
        assert (await _states(base_url, tok))["nms"]["state"] == "unhealthy"
        assert await _ping(base_url, "hb-acme", "nms", HEARTBEAT_KEY) == 200
        resolved = await client.wait_for(
            lambda m: (
                m.get("name") == "incident_update"
                and m["data"]["incident_id"] == "heartbeat:nms"
                and m["data"]["status"] == "resolved"
            ),
            15,
        )
        assert resolved["data"]["by"] == "heartbeat"
        await asyncio.sleep(0.5)
        alerts = [e for e in client.events("incident_alert") if "heartbeat:nms" in str(e)]
        assert len(alerts) == 1  # opened once
    finally:
        await client.close()


async def test_a_kpi_heartbeat_counts_samples_of_its_site(base_url, token, produce):
    tok = token("hb-acme", "op", ["operator"])
    client = await NodeClient.start(base_url, tok, ["polling"])
    try:
        await client.connected()
        await produce(TOPIC_KPIS, envelope("hb-acme", {"temp_c": 30.0}, site="hb-site"))

        async def healthy() -> bool:
            return (await _states(base_url, tok))["site-kpis"]["state"] == "healthy"

        await eventually(healthy, timeout=10)
        opened = await client.wait_for(
            lambda m: (
                m.get("name") == "incident_alert"
                and m["data"]["incident"]["incident_id"] == "heartbeat:site-kpis"
            ),
            15,
        )
        assert opened["data"]["priority"] == "major" and opened["data"]["site_id"] == "hb-site"
        await produce(TOPIC_KPIS, envelope("hb-acme", {"temp_c": 31.0}, site="hb-site"))
        resolved = await client.wait_for(
            lambda m: (
                m.get("name") == "incident_update"
                and m["data"]["incident_id"] == "heartbeat:site-kpis"
                and m["data"]["status"] == "resolved"
            ),
            15,
        )
        assert resolved["data"]["by"] == "heartbeat"
    finally:
        await client.close()


async def test_pings_without_the_right_key_are_refused_alike_and_audited(base_url, token):
    assert await _ping(base_url, "hb-other", "nms", HEARTBEAT_KEY) == 401  # A's key on B
    assert await _ping(base_url, "hb-acme", "nms", "wrong") == 401
    assert await _ping(base_url, "hb-acme", "nms", None) == 401
    assert await _ping(base_url, "hb-acme", "nobody", HEARTBEAT_KEY) == 401  # unknown: same
    assert await _ping(base_url, "hb-acme", "site-kpis", HEARTBEAT_KEY) == 401  # kpi: no key
    assert await _ping(base_url, "hb-acme", "nms", HEARTBEAT_KEY) == 200  # the positive twin
    admin = token("hb-other", "boss", ["admin"])
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/api/v1/audit", headers={"Authorization": f"Bearer {admin}"}) as r,
    ):
        records = (await r.json())["records"]
    refused = [x for x in records if x["action"] == "auth_refused"]
    assert any(x["actor"] == "heartbeat:nms" for x in refused)
    # another tenant's heartbeats are not listed
    other = await _states(base_url, token("hb-other", "op", ["operator"]))
    assert set(other) == {"nms"} and other["nms"]["state"] == "inactive"


async def test_two_watches_on_one_redis_open_and_resolve_once(redis_client):
    """Several serving processes watch; each transition is produced once (claims in Redis),
    and a watch started later (a restart) carries on from the stored state."""
    import uuid

    from notify_core.heartbeats.config import Heartbeats
    from notify_core.heartbeats.policy import HeartbeatStore
    from notify_core.heartbeats.watch import HeartbeatWatch

    prefix = f"hbw-{uuid.uuid4().hex[:6]}:"
    hb = Heartbeat(name="nms", tenant="t", kind="http", timeout=60, key_env="X")
    configured = Heartbeats({("t", "nms"): hb})
    now = [1_000_000.0]
    produced: list[tuple[str, bytes, bytes]] = []

    async def sink(records: list[tuple[str, bytes, bytes]]) -> None:
        produced.extend(records)

    async def no_kpi(tenant: str, site: str | None) -> int | None:
        return None

    def watch() -> HeartbeatWatch:
        store = HeartbeatStore(redis_client, prefix)
        return HeartbeatWatch(lambda: configured, store, no_kpi, sink, clock=lambda: now[0])

    one, two = watch(), watch()
    await HeartbeatStore(redis_client, prefix).ping("t", "nms", int(now[0] * 1000))
    now[0] += 30
    await one.tick()
    await two.tick()
    assert produced == []  # healthy: nothing
    now[0] += 60  # quiet past its minute
    await one.tick()
    await two.tick()
    assert [topic for topic, _, _ in produced] == ["towerco.incidents.alerts"]  # once
    restarted = watch()  # a process started during the silence: nothing new
    await restarted.tick()
    assert len(produced) == 1
    await HeartbeatStore(redis_client, prefix).ping("t", "nms", int(now[0] * 1000) + 1)
    await two.tick()
    await restarted.tick()
    await one.tick()
    assert [topic for topic, _, _ in produced] == [
        "towerco.incidents.alerts",
        "towerco.incidents.actions",
    ]


async def test_a_heartbeat_incident_at_a_site_in_maintenance_is_quiet(base_url, token, produce):
    """The heartbeat's incident takes the normal path: suppression applies to it."""
    tok = token("hb-acme", "op", ["operator"])
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/api/v1/maintenance",
            json={"site_ids": ["hb-maint-site"], "ends_at": time.time() + 600},
            headers={"Authorization": f"Bearer {tok}"},
        ) as r:
            assert r.status == 201
    client = await NodeClient.start(base_url, tok, ["websocket"])
    try:
        await client.connected()
        await produce(TOPIC_KPIS, envelope("hb-acme", {"temp_c": 30.0}, site="hb-maint-site"))
        opened = await client.wait_for(
            lambda m: (
                m.get("name") == "incident_alert"
                and m["data"]["incident"]["incident_id"] == "heartbeat:quiet-in-maintenance"
            ),
            15,
        )
        assert opened["data"]["suppressed"]["by"] == "maintenance"
    finally:
        await client.close()
