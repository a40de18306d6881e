"""Working together at NOC scale: the incident list API, a wall screen's load, presence.

    ./.venv/bin/python bench/teamwork.py [--incidents 50000] [--screen 5000] [--joins 1000]

One `run` daemon (embedded broker, Redis at --redis-url for the stores):
1. `GET /api/v1/incidents` with 50 000 open incidents in one tenant: p50/p99 of the whole
   list (limit=50000) and of the default page (1 000);
2. the dashboard in Chromium with 5 000 open incidents: from navigation to the list drawn
   and counted (load-to-interactive), median of 3;
3. 1 000 connections of 1 000 users joining at once: time until another user's screen hears
   a `presence` listing all of them, and how many `presence` events it got (debounced).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.settings import load_settings  # noqa: E402
from notify_core.state.incidents import IncidentState  # noqa: E402
from sio_server.admission.auth import mint_token  # noqa: E402
from tests.helpers import TEST_SECRET, NodeClient  # noqa: E402
from towerco_notify.runtime import Runtime  # noqa: E402


async def fill(rt: Runtime, tenant: str, n: int) -> None:
    for i in range(n):
        sev = ("critical", "major", "minor", "warning")[i % 4]
        await rt.stores.incidents.put(
            tenant, f"I-{i:05d}",
            IncidentState(f"site-{i % 500:03d}", sev, "open", title=f"Alarm {i}", opened_at_ms=i),
        )  # fmt: skip
        if rt.stores.writes is not None and i % 2000 == 0:
            await rt.stores.writes.flush()
    if rt.stores.writes is not None:
        await rt.stores.writes.flush()


async def list_api(base: str, token: str, limit: int, runs: int = 20) -> tuple[float, float, int]:
    took = []
    n = 0
    async with aiohttp.ClientSession() as http:
        for _ in range(runs):
            t = time.perf_counter()
            async with http.get(
                f"{base}/api/v1/incidents?limit={limit}",
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                n = len((await r.json())["incidents"])
            took.append((time.perf_counter() - t) * 1000)
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.99) - 1], n


async def screen(base: str, token: str, want: int) -> float:
    from tests.test_browser import Browser

    browser = await Browser.start()
    try:
        t = time.perf_counter()
        await browser.do("open", url=f"{base}/#token={token}")
        await browser.do("wait", selector="#incident-count", text=str(want), timeout=60000)
        await browser.do("wait", selector="#incidents li")
        return (time.perf_counter() - t) * 1000
    finally:
        await browser.close()


async def presence(base: str, tenant: str, joins: int) -> tuple[float, int]:
    watcher = await NodeClient.start(
        base, mint_token(TEST_SECRET, tenant, "watcher", ["operator"]), ["websocket"]
    )
    await watcher.connected()
    await asyncio.sleep(1.5)
    tokens = [mint_token(TEST_SECRET, tenant, f"op-{i}", ["operator"]) for i in range(joins)]
    t = time.perf_counter()
    crowd = await NodeClient.start(base, None, ["websocket"], count=joins, tokens=tokens)
    try:
        await watcher.wait_for(
            lambda m: m.get("name") == "presence" and m["data"]["count"] == joins + 1, 120
        )
    except TimeoutError:
        seen = [e["count"] for e in watcher.events("presence")]
        ok = len([m for m in crowd.lines if m.get("kind") == "connect"])
        bad = [m for m in crowd.lines if m.get("kind") == "connect_error"][:3]
        gone = [m for m in watcher.lines if m.get("kind") == "disconnect"]
        raise SystemExit(
            f"presence never listed all: seen {seen[-5:]}, {ok} connected, {bad}, {gone}"
        ) from None
    took = (time.perf_counter() - t) * 1000
    await asyncio.sleep(2.0)
    events = len(watcher.events("presence"))
    await crowd.close()
    await watcher.close()
    return took, events


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=50_000)
    ap.add_argument("--screen", type=int, default=5_000)
    ap.add_argument("--joins", type=int, default=1_000)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = ap.parse_args()
    settings = load_settings(
        redis_url=args.redis_url, redis_prefix=f"bench-team-{uuid.uuid4().hex[:6]}:",
        jwt_secret=TEST_SECRET, http_port=0, max_connections_per_user=5000,
        max_connections_per_tenant=100_000, auth_failures_per_min=1_000_000, http_rate_per_s=10_000,
        http_burst=10_000,
    )  # fmt: skip
    rt = Runtime(settings, mode="run")
    await rt.start()
    await rt.wait_ready(90)
    base = f"http://127.0.0.1:{rt.http_port}"
    try:
        big, wall, crowd = (f"bench-{k}-{uuid.uuid4().hex[:4]}" for k in ("big", "wall", "crowd"))
        await fill(rt, big, args.incidents)
        tok = mint_token(TEST_SECRET, big, "noc", ["operator"])
        for limit in (args.incidents, 1000):
            p50, p99, n = await list_api(base, tok, limit)
            print(f"GET /api/v1/incidents ({args.incidents} open), limit={limit}: "
                  f"{n} listed, p50 {p50:.0f} ms, p99 {p99:.0f} ms")  # fmt: skip
        await fill(rt, wall, args.screen)
        wall_tok = mint_token(TEST_SECRET, wall, "wall", ["operator"])
        loads = [await screen(base, wall_tok, args.screen) for _ in range(3)]
        each = ", ".join(f"{x:.0f}" for x in loads)
        print(f"dashboard with {args.screen} open incidents: load-to-interactive "
              f"median {statistics.median(loads):.0f} ms ({each})")  # fmt: skip
        took, events = await presence(base, crowd, args.joins)
        print(f"{args.joins} users joining at once: the others' screen lists them all after "
              f"{took:.0f} ms, in {events} presence events (debounced)")  # fmt: skip
    finally:
        await rt.stop()


if __name__ == "__main__":
    asyncio.run(main())
