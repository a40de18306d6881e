"""A page on another origin opening connections with the user's token: refused on every
transport (Socket.IO polling and WebSocket, plain WebSocket, SSE), while the daemon's own
origin and non-browser clients (no Origin) connect; the HTTP API answers CORS preflights
for the listed origins only."""

from __future__ import annotations

import aiohttp
import pytest

from notify_core.history.store import MemoryHistory
from notify_core.obs.readiness import Readiness
from sio_server.admission.auth import Authenticator
from sio_server.app import SocketServer
from tests.helpers import TEST_SECRET, NodeClient, WsClient, new_tenant
from tests.test_plain_ws import ws_url

EVIL = "https://evil.example"


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_socketio_refuses_a_foreign_origin(base_url, token, transport):
    tenant = new_tenant()
    evil = await NodeClient.start(base_url, token(tenant), [transport], headers={"Origin": EVIL})
    own = await NodeClient.start(base_url, token(tenant), [transport], headers={"Origin": base_url})
    bare = await NodeClient.start(base_url, token(tenant), [transport])
    try:
        refused = await evil.wait_for(lambda m: m["kind"] in ("connect", "connect_error"))
        assert refused["kind"] == "connect_error"
        await own.connected()  # the positive twins: its own origin, and no origin at all
        await bare.connected()
    finally:
        for c in (evil, own, bare):
            await c.close()


async def test_plain_websocket_and_sse_refuse_a_foreign_origin(base_url, token):
    tenant = new_tenant()
    ws = await WsClient.start(ws_url(base_url, tenant, "u1", token(tenant)), {"Origin": EVIL})
    try:
        got = await ws.wait_for(lambda m: m["kind"] in ("refused", "open", "close"))
        assert got == {"kind": "refused", "status": 403}
    finally:
        await ws.close()
    async with aiohttp.ClientSession() as http:
        url = f"{base_url}/api/v1/notifications/stream"
        params = {"token": token(tenant)}
        async with http.get(url, params=params, headers={"Origin": EVIL}) as r:
            assert r.status == 403
        async with http.get(url, params=params, headers={"Origin": base_url}) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")


async def test_cors_preflights_only_for_listed_origins(token):
    listed = "https://noc.example"
    server = SocketServer(
        Authenticator(TEST_SECRET), MemoryHistory(), Readiness(), "127.0.0.1", 0, [listed]
    )
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    try:
        async with aiohttp.ClientSession() as http:
            path = f"{base}/api/v1/notifications"
            async with http.options(path, headers={"Origin": EVIL, **preflight}) as r:
                assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
            async with http.options(path, headers={"Origin": listed, **preflight}) as r:
                assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == listed
                assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
            auth = {"Authorization": f"Bearer {token(new_tenant())}"}
            async with http.get(path, headers={"Origin": listed, **auth}) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == listed
            async with http.get(path, headers={"Origin": EVIL, **auth}) as r:
                assert "Access-Control-Allow-Origin" not in r.headers
        # Socket.IO follows the same list: the listed origin connects, the daemon's own
        # origin is no longer enough
        ok = await NodeClient.start(
            base, token(new_tenant()), ["polling"], headers={"Origin": listed}
        )
        own = await NodeClient.start(
            base, token(new_tenant()), ["polling"], headers={"Origin": base}
        )
        try:
            await ok.connected()
            refused = await own.wait_for(lambda m: m["kind"] in ("connect", "connect_error"))
            assert refused["kind"] == "connect_error"
        finally:
            await ok.close()
            await own.close()
    finally:
        await server.stop()
