"""Floods from the attacker's side: connections past the per-user and per-tenant limits
(counted across two server processes sharing Redis), an HTTP flood with one token, and
repeated refused handshakes from one address. Each with its positive twin."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from notify_core.history.store import MemoryHistory
from notify_core.obs.audit import MemoryAuditCopy
from notify_core.obs.readiness import Readiness
from sio_server.admission.auth import Authenticator
from sio_server.admission.limits import AddressGuard, ConnectionLimits, HttpRateLimiter
from sio_server.app import SocketServer
from sio_server.http_routes import HttpFeatures
from tests import redis_cluster
from tests.helpers import TEST_SECRET, NodeClient, WsClient, new_tenant
from tests.test_plain_ws import ws_url


async def _outcome(client: NodeClient) -> dict:
    return await client.wait_for(lambda m: m["kind"] in ("connect", "connect_error"))


async def test_connection_limits_hold_across_server_processes(redis_url, token):
    redis = redis_cluster.client(redis_url)
    prefix = f"test-limits-{uuid.uuid4().hex[:6]}:"
    servers = [
        SocketServer(
            Authenticator(TEST_SECRET),
            MemoryHistory(),
            Readiness(),
            "127.0.0.1",
            0,
            [],
            limits=ConnectionLimits(redis, prefix, per_user=2, per_tenant=3),
        )
        for _ in range(2)
    ]
    for s in servers:
        await s.start()
    a, b = (f"http://127.0.0.1:{s.port}" for s in servers)
    tenant = new_tenant()
    clients: list = []
    try:
        for url in (a, b):  # alice's two, one on each process
            c = await NodeClient.start(url, token(tenant, "alice"), ["websocket"])
            clients.append(c)
            assert (await _outcome(c))["kind"] == "connect"
        third = await NodeClient.start(a, token(tenant, "alice"), ["polling"])
        clients.append(third)
        assert await _outcome(third) == {
            "kind": "connect_error",
            "client": 0,
            "message": "too many connections",
        }
        ws = await WsClient.start(ws_url(b, tenant, "alice", token(tenant, "alice")))
        closed = await ws.wait_for(lambda m: m["kind"] == "close")
        assert closed["code"] == 1008 and closed["reason"] == "too many connections"
        await ws.close()
        bob = await NodeClient.start(b, token(tenant, "bob"), ["websocket"])  # the tenant's 3rd
        clients.append(bob)
        assert (await _outcome(bob))["kind"] == "connect"
        carol = await NodeClient.start(a, token(tenant, "carol"), ["websocket"])  # a 4th
        clients.append(carol)
        assert (await _outcome(carol))["message"] == "too many connections"
        other = await NodeClient.start(a, token(new_tenant(), "alice"), ["websocket"])
        clients.append(other)
        assert (await _outcome(other))["kind"] == "connect", "another tenant is not affected"
        await clients[0].close()  # one of alice's leaves: she may connect again
        await asyncio.sleep(0.3)
        again = await NodeClient.start(b, token(tenant, "alice"), ["websocket"])
        clients.append(again)
        assert (await _outcome(again))["kind"] == "connect"
    finally:
        for c in clients:
            await c.close()
        for s in servers:
            await s.stop()
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)
        await redis.aclose()


async def test_http_flood_with_one_token_gets_429_with_retry_after(token):
    server = SocketServer(
        Authenticator(TEST_SECRET),
        MemoryHistory(),
        Readiness(),
        "127.0.0.1",
        0,
        [],
        http=HttpFeatures(http_rate=HttpRateLimiter(5.0, 10.0)),
    )
    await server.start()
    url = f"http://127.0.0.1:{server.port}/api/v1/notifications"
    tenant = new_tenant()
    flooder = {"Authorization": f"Bearer {token(tenant, 'flood')}"}
    try:
        async with aiohttp.ClientSession() as http:
            statuses, retry = [], None
            for _ in range(30):
                async with http.get(url, headers=flooder) as r:
                    statuses.append(r.status)
                    if r.status == 429:
                        retry = r.headers.get("Retry-After")
            assert statuses[:10] == [200] * 10 and 429 in statuses
            assert retry is not None and int(retry) >= 1
            # another token is its own bucket; the flooder recovers after waiting
            other = {"Authorization": f"Bearer {token(tenant, 'calm')}"}
            async with http.get(url, headers=other) as r:
                assert r.status == 200
            await asyncio.sleep(int(retry))
            async with http.get(url, headers=flooder) as r:
                assert r.status == 200
    finally:
        await server.stop()


async def test_an_address_refused_too_often_is_blocked(token):
    copy = MemoryAuditCopy()

    class Audit:  # the trail's readable copy, without Kafka (tested with it elsewhere)
        def __init__(self) -> None:
            self.copy = copy

        async def record_quietly(self, record: dict) -> None:
            await copy.keep(record)

    server = SocketServer(
        Authenticator(TEST_SECRET),
        MemoryHistory(),
        Readiness(),
        "127.0.0.1",
        0,
        [],
        guard=AddressGuard(per_minute=5, block_s=2.0),
        audit=Audit(),  # type: ignore[arg-type]
    )
    await server.start()
    url = f"http://127.0.0.1:{server.port}"
    tenant = new_tenant()
    try:
        good = await NodeClient.start(url, token(tenant), ["websocket"])
        assert (await _outcome(good))["kind"] == "connect"  # the twin: before the attack
        await good.close()
        for _ in range(6):  # the attack: guessing tokens
            bad = await NodeClient.start(url, "guess." + uuid.uuid4().hex, ["websocket"])
            assert (await _outcome(bad))["message"] == "authentication failed"
            await bad.close()
        blocked = await NodeClient.start(url, token(tenant), ["websocket"])
        assert (await _outcome(blocked))["message"] == "authentication failed"
        await blocked.close()
        await asyncio.sleep(2.2)  # the block ends
        later = await NodeClient.start(url, token(tenant), ["websocket"])
        assert (await _outcome(later))["kind"] == "connect"
        await later.close()
        records, _ = await copy.read("-", None, 100, None)
        actions = [r["action"] for r in records]
        assert actions.count("auth_refused") == 6 and actions.count("address_blocked") == 1
        assert all(r["tenant_id"] is None for r in records)
    finally:
        await server.stop()
