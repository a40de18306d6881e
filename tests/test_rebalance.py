"""KPI alert state through rebalances: partitions move to a second pipeline worker mid-
episode and back, and every site's incident is raised and resolved exactly once per breach
episode (real broker, real Redis, two `pipeline` processes in one consumer group)."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from pathlib import Path

import aiohttp

from notify_core.wire.events import TOPIC_KPIS
from pipeline.kpi_alerts import incident_id_for
from tests.conftest import TEST_THRESHOLDS
from tests.helpers import envelope, history_of, new_tenant
from tests.test_processes import cluster_env, spawn, stop, wait_ready
from towerco_notify.embedded_broker import free_port

SITES = [f"site{n:02d}" for n in range(16)]
LAG_LINE = re.compile(
    r'^notify_kafka_consumer_lag\{partition="(\d+)",topic="towerco\.kpis\.updates"\}', re.M
)


async def kpi_partitions(port: int) -> set[int]:
    """The KPI partitions a worker holds now, as its lag gauge reports them."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        return {int(p) for p in LAG_LINE.findall(await r.text())}


async def until(check, timeout: float = 60, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {check.__name__}")
        await asyncio.sleep(interval)


async def test_partitions_moving_mid_episode_neither_repeat_nor_lose_an_alert(
    broker, redis_url, produce, token, tmp_path: Path
):
    (tmp_path / "thresholds.yaml").write_text(TEST_THRESHOLDS)
    env = cluster_env(broker, redis_url, "rebal", NOTIFY_CONFIG_DIR=str(tmp_path))
    a_port, b_port, s_port = free_port(), free_port(), free_port()
    tenant = new_tenant()
    worker_a = await spawn("pipeline", "--http-port", str(a_port), env=env)
    server = await spawn("server", "--http-port", str(s_port), env=env)
    worker_b = None
    second = 0

    async def samples(value: float) -> None:
        nonlocal second
        second += 1
        stamp = f"2026-11-25T11:{second // 60:02d}:{second % 60:02d}Z"
        for site in SITES:  # keyed by site, as producers do: the sites spread over partitions
            message = envelope(tenant, {"temp_c": value}, site, stamp)
            await produce(TOPIC_KPIS, message, key=f"{tenant}/{site}".encode())

    async def story() -> dict[str, list[str]]:
        """Per site, what its incident went through: raised / resolved, in history order."""
        events = await history_of(f"http://127.0.0.1:{s_port}", token(tenant))
        ids = {incident_id_for(tenant, site, "temp_c"): site for site in SITES}
        told: dict[str, list[str]] = defaultdict(list)
        for e in sorted(events, key=lambda e: tuple(map(int, e["id"].split("-")))):
            if e["type"] == "incident_alert" and e["incident"]["incident_id"] in ids:
                told[ids[e["incident"]["incident_id"]]].append("raised")
            elif e["type"] == "incident_update" and e.get("incident_id") in ids:
                if e["status"] == "resolved":
                    told[ids[e["incident_id"]]].append("resolved")
        return told

    def settled(expected: list[str]):  # type: ignore[no-untyped-def]
        async def check() -> bool:
            told = await story()
            return all(told.get(site) == expected for site in SITES)

        check.__name__ = f"every site {expected}"
        return check

    try:
        await wait_ready(a_port, worker_a)
        await wait_ready(s_port, server)
        await until(lambda: kpi_partitions(a_port))
        await samples(60)  # critical: one incident per site
        await until(settled(["raised"]))

        worker_b = await spawn("pipeline", "--http-port", str(b_port), env=env)
        await wait_ready(b_port, worker_b, 90)
        moved = await until(lambda: kpi_partitions(b_port))
        assert moved and len(await kpi_partitions(a_port) | moved) == 4
        await samples(20)  # cleared, by whichever worker holds the site now
        await until(settled(["raised", "resolved"]))

        await stop(worker_b)  # its partitions come back to the first worker
        worker_b = None

        async def all_back() -> bool:
            return len(await kpi_partitions(a_port)) == 4

        await until(all_back, 90)
        await wait_ready(a_port, worker_a, 90)
        await samples(60)  # a new episode: raised again, on every site
        await until(settled(["raised", "resolved", "raised"]))
        await samples(20)
        await until(settled(["raised", "resolved", "raised", "resolved"]))
        await asyncio.sleep(1.5)  # nothing more comes: no repeat after the fact
        told = await story()
        assert all(told[s] == ["raised", "resolved", "raised", "resolved"] for s in SITES), told
    finally:
        if worker_b is not None:
            await stop(worker_b)
        await stop(worker_a)
        await stop(server)
