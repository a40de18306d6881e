"""Presence and viewers across two server processes sharing Redis: who of the tenant is
online (`GET /api/v1/presence`, the `presence` event, debounced) and who looks at an
incident (`view_incident` → `incident_viewers`), with a positive twin for every absence."""

from __future__ import annotations

import uuid

import aiohttp

from notify_core.history.store import MemoryHistory
from notify_core.obs.readiness import Readiness
from notify_core.state.incidents import IncidentState, MemoryIncidentStore
from sio_server.admission.auth import Authenticator
from sio_server.app import SocketServer
from tests import redis_cluster
from tests.helpers import TEST_SECRET, NodeClient, new_tenant


async def _presence(url: str, token: str) -> list[dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/v1/presence", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200
        return (await r.json())["users"]


async def test_presence_and_viewers_across_two_processes(redis_url, token):
    redis = redis_cluster.client(redis_url)
    prefix = f"test-presence-{uuid.uuid4().hex[:6]}:"
    tenant = new_tenant()
    incidents = MemoryIncidentStore()
    await incidents.put(tenant, "P-1", IncidentState("s1", "critical", "open"))
    await incidents.put(tenant, "P-2", IncidentState("s2", "critical", "open"))

    async def sink(*_: object) -> None:
        return None

    servers = [
        SocketServer(
            Authenticator(TEST_SECRET),
            MemoryHistory(),
            Readiness(),
            "127.0.0.1",
            0,
            [],
            incidents=incidents,
            action_sink=sink,
            shared=(redis, prefix),
        )
        for _ in range(2)
    ]
    for s in servers:
        await s.start()
    a, b = (f"http://127.0.0.1:{s.port}" for s in servers)
    alice = await NodeClient.start(a, token(tenant, "alice", ["operator", "oncall"]), ["websocket"])
    bob = await NodeClient.start(b, token(tenant, "bob", sites=["s1"]), ["polling"])
    stranger = await NodeClient.start(b, token(new_tenant(), "eve"), ["websocket"])
    try:
        for c in (alice, bob, stranger):
            await c.connected()
        # alice, on process a, hears of bob on process b
        seen = await alice.wait_for(
            lambda m: (
                m.get("name") == "presence"
                and {u["user_id"] for u in m["data"]["users"]} == {"alice", "bob"}
            ),
            10,
        )
        users = {u["user_id"]: u for u in seen["data"]["users"]}
        assert (
            users["alice"]["roles"] == ["oncall", "operator"] and users["bob"]["connections"] == 1
        )
        listed = await _presence(b, token(tenant, "x"))
        assert {u["user_id"] for u in listed} == {"alice", "bob"}
        assert await _presence(b, token(new_tenant(), "x")) == [], "another tenant: none"
        # viewers: both look at P-1; bob may not look at P-2 (another site)
        assert (await alice.emit("view_incident", {"incident_id": "P-1"}))["ok"] is True
        assert (await bob.emit("view_incident", {"incident_id": "P-1"}))["ok"] is True
        denied = await bob.emit("view_incident", {"incident_id": "P-2"})
        assert denied == {"ok": False, "error": "no such incident"}
        both = await alice.wait_for(
            lambda m: (
                m.get("name") == "incident_viewers" and m["data"]["users"] == ["alice", "bob"]
            ),
            10,
        )
        assert both["data"]["incident_id"] == "P-1"
        assert (await bob.emit("unview_incident", {"incident_id": "P-1"}))["ok"] is True
        await alice.wait_for(
            lambda m: m.get("name") == "incident_viewers" and m["data"]["users"] == ["alice"], 10
        )
        await bob.close()  # bob leaves: alice hears it
        await alice.wait_for(
            lambda m: (
                m.get("name") == "presence"
                and [u["user_id"] for u in m["data"]["users"]] == ["alice"]
            ),
            10,
        )
        assert not stranger.events("presence") or all(
            {u["user_id"] for u in e["users"]} <= {"eve"} for e in stranger.events("presence")
        )
    finally:
        for c in (alice, bob, stranger):
            await c.close()
        for s in servers:
            await s.stop()
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)
        await redis.aclose()


async def test_a_sigkilled_servers_users_leave_presence_within_the_lease(broker, redis_url, token):
    """Two `server` processes; the one holding amy's connection is SIGKILLed: within the
    lease (3 s here, 30 s by default) bob's screen hears she is gone, and the API agrees."""
    import asyncio

    from tests.test_processes import cluster_env, spawn, stop, wait_ready
    from towerco_notify.embedded_broker import free_port

    env = cluster_env(broker, redis_url, "presence", NOTIFY_PRESENCE_LEASE_S="3")
    ports = [free_port(), free_port()]
    procs = [await spawn("server", "--http-port", str(p), env=env) for p in ports]
    tenant = new_tenant()
    a, b = (f"http://127.0.0.1:{p}" for p in ports)
    amy = bob = None
    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_ready(port, proc)
        amy = await NodeClient.start(a, token(tenant, "amy"), ["websocket"])
        bob = await NodeClient.start(b, token(tenant, "bob"), ["websocket"])
        await amy.connected()
        await bob.connected()
        both = await bob.wait_for(
            lambda m: (
                m.get("name") == "presence"
                and {u["user_id"] for u in m["data"]["users"]} == {"amy", "bob"}
            ),
            15,
        )
        assert both  # the positive twin: amy is seen from the other process
        seen = len(bob.lines)  # bob's first presence (before amy's share reached b) is old
        procs[0].kill()  # SIGKILL: no goodbye is written
        await procs[0].wait()
        gone = await bob.wait_for(
            lambda m: (
                m.get("name") == "presence"
                and [u["user_id"] for u in m["data"]["users"]] == ["bob"]
            ),
            15,
            since=seen,
        )
        assert gone["data"]["users"][0]["connections"] == 1
        assert [u["user_id"] for u in await _presence(b, token(tenant, "bob"))] == ["bob"]
        await asyncio.sleep(0)
    finally:
        for client in (amy, bob):
            if client is not None:
                await client.close()
        for proc in procs:
            if proc.returncode is None:
                await stop(proc)
