"""Nothing lost in a Sentinel failover (`NOTIFY_REDIS_MIN_REPLICAS`).

A master, a replica and three Sentinels; the daemon on the `redis+sentinel://` URL. The
replica is cut off, 12 critical incidents arrive through the broker, the master is
SIGKILLed and the lagging replica promoted. With the setting at 0 the daemon had answered
them from the master alone and they are gone from the history and the incident list (the
loss this guards against, shown so that the other half cannot pass vacuously); with it at
1 nothing was committed until a replica confirmed, the batch was written again on the new
master, and every incident, its history event and its escalation are there.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from notify_core.wire.events import TOPIC_ALERTS
from tests.conftest import daemon_settings, eventually
from tests.helpers import alert, history_of, new_tenant
from tests.redis_sentinel import SentinelSet
from towerco_notify.runtime import Runtime

INCIDENTS = 12


async def _incidents(base_url: str, tok: str) -> set[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}/api/v1/incidents",
            params={"status": "all", "limit": "1000"},
            headers={"Authorization": f"Bearer {tok}"},
        ) as resp,
    ):
        if resp.status != 200:
            return set()
        return {row["incident_id"] for row in (await resp.json())["incidents"]}


async def _stored(base_url: str, tok: str) -> set[str]:
    try:
        events = await history_of(base_url, tok)
    except Exception:
        return set()
    return {e["incident"]["incident_id"] for e in events if e["type"] == "incident_alert"}


async def _run(min_replicas: int, broker: str, produce: Any, token: Any) -> dict[str, Any]:
    sentinels = SentinelSet()
    await sentinels.start()
    settings = daemon_settings(
        broker,
        sentinels.url,
        redis_min_replicas=min_replicas,
        redis_replica_timeout_ms=300,
    )
    daemon = Runtime(settings, mode="run")
    tenant = new_tenant()
    tok = token(tenant, "op", ["operator"])
    try:
        await daemon.start()
        await daemon.wait_ready(60)
        base = f"http://127.0.0.1:{daemon.http_port}"
        await produce(TOPIC_ALERTS, alert(tenant, "before", "critical"))
        await eventually(lambda: _has(_stored(base, tok), "before"), timeout=20)
        await sentinels.cut_replica()
        wanted = {f"F-{n}" for n in range(INCIDENTS)}
        for n in range(INCIDENTS):
            await produce(TOPIC_ALERTS, alert(tenant, f"F-{n}", "critical"))
        if min_replicas:
            # the first batch is on the master, unconfirmed: written again and again,
            # nothing after it committed, and readiness says why
            await eventually(lambda: _any(_incidents(base, tok), wanted), timeout=20)
            checks = await eventually(lambda: _unready(base), timeout=20)
            assert checks["redis_replicas"] is False and checks["redis"] is True
        else:
            # the master has them all, and the daemon answered for them
            await eventually(lambda: _covers(_incidents(base, tok), wanted), timeout=20)
        await sentinels.fail_over()
        if min_replicas:
            await sentinels.until_replicas(sentinels.replica_port, 1)

            async def settled() -> bool:
                return wanted <= await _stored(base, tok) and wanted <= await _incidents(base, tok)

            await eventually(settled, timeout=40)
        else:
            # the daemon serves from the new master: wait until it answers there
            await eventually(lambda: _has(_stored(base, tok), "before"), timeout=30)
        timeline = await _timeline(base, tok, "F-0")
        return {
            "stored": await _stored(base, tok) & wanted,
            "incidents": await _incidents(base, tok) & wanted,
            "timeline": timeline,
        }
    finally:
        await daemon.stop()
        sentinels.stop()


async def _timeline(base_url: str, tok: str, incident: str) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}/api/v1/incidents/{incident}/timeline",
            headers={"Authorization": f"Bearer {tok}"},
        ) as resp,
    ):
        return [e["kind"] for e in (await resp.json()).get("timeline", [])]


async def _has(found: Any, incident: str) -> bool:
    return incident in await found


async def _any(found: Any, wanted: set[str]) -> bool:
    return bool(wanted & await found)


async def _unready(base_url: str) -> dict[str, bool] | None:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/readyz") as resp:
        body = await resp.json()
    return None if resp.status == 200 else body["checks"]


async def _covers(found: Any, wanted: set[str]) -> bool:
    return wanted <= await found


@pytest.mark.timeout(240)
async def test_sentinel_failover_loses_nothing_with_min_replicas(broker, produce, token) -> None:
    lost = await _run(0, broker, produce, token)
    assert lost["stored"] == set() and lost["incidents"] == set(), (
        "with NOTIFY_REDIS_MIN_REPLICAS=0 the cut-off replica cannot have them"
    )
    kept = await _run(1, broker, produce, token)
    wanted = {f"F-{n}" for n in range(INCIDENTS)}
    assert kept["stored"] == wanted
    assert kept["incidents"] == wanted
    assert "raised" in kept["timeline"] and "escalation_started" in kept["timeline"]
