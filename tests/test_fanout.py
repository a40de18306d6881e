"""The direct emit path (`sio_server.socketio.fanout`): same order and completeness as engine.io's
own path on both transports and across upgrades, and a client that stops reading is
cut off without holding up the others."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client import REGISTRY

from notify_core.history.store import MemoryHistory
from notify_core.obs.readiness import Readiness
from notify_core.wire.ids import format_id
from notify_core.wire.rooms import rooms_for
from sio_server.admission.auth import Authenticator, mint_token
from sio_server.app import SocketServer
from sio_server.options import TransportOptions
from tests.helpers import TEST_SECRET, NodeClient, new_tenant


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def alert_event(tenant: str, n: int, pad: int = 0) -> dict[str, Any]:
    return {
        "id": format_id((1_700_000_000_000 + n, 0)),
        "type": "incident_alert",
        "tenant_id": tenant,
        "timestamp": "2026-11-25T10:00:00Z",
        "priority": "critical",
        "requires_acknowledgment": True,
        "incident": {"incident_id": f"I-{n}", "title": "Mains power lost" + " " * pad},
    }


async def serve(origins: list[str] | None = None, **tuning: Any) -> SocketServer:
    """A server on its own; `tuning`: fields of its TransportOptions."""
    server = SocketServer(
        Authenticator(TEST_SECRET),
        MemoryHistory(),
        Readiness(),
        "127.0.0.1",
        0,
        origins or [],
        TransportOptions(**tuning),
    )
    await server.start()
    return server


@pytest.fixture
async def stop_after() -> AsyncIterator[list[Any]]:
    owned: list[Any] = []
    yield owned
    for thing in reversed(owned):
        with contextlib.suppress(Exception):
            await (thing.close() if isinstance(thing, NodeClient) else thing.stop())


def ids_of(client: NodeClient, index: int) -> list[str]:
    return [e["id"] for e in client.events("incident_alert", client=index)]


@pytest.mark.parametrize("direct_writes", [True, False])
async def test_order_and_completeness_across_transports_and_upgrades(direct_writes, stop_after):
    server = await serve(direct_writes=direct_writes)
    stop_after.append(server)
    tenant = new_tenant()
    token = mint_token(TEST_SECRET, tenant, "u1", ["operator"])
    url = f"http://127.0.0.1:{server.port}"
    direct_before = sample("notify_deliveries_total", path="direct")

    total = 400
    emitted = asyncio.Event()

    async def emit_steadily() -> None:
        for n in range(total):
            event = alert_event(tenant, n)
            await server.emit(event, rooms_for(event))
            await asyncio.sleep(0.004)
        emitted.set()

    producer = asyncio.create_task(emit_steadily())
    # connections arrive while events flow: websocket only, polling only, and polling that
    # upgrades to websocket mid-stream (the hand-over between engine.io's queue and ours)
    clients = {
        "websocket": await NodeClient.start(url, token, transports=["websocket"], count=3),
        "polling": await NodeClient.start(url, token, transports=["polling"], count=3),
        "upgrade": await NodeClient.start(url, token, count=3),
    }
    stop_after.extend(clients.values())
    await asyncio.wait_for(producer, 30)
    last = alert_event(tenant, total - 1)["id"]
    for kind, client in clients.items():
        for i in range(3):
            await client.wait_for(
                lambda m, i=i: (
                    m.get("client") == i and m["kind"] == "event" and m["data"].get("id") == last
                )
            )
            got = ids_of(client, i)
            first = int(got[0].split("-")[0]) - 1_700_000_000_000
            expected = [alert_event(tenant, n)["id"] for n in range(first, total)]
            assert got == expected, f"{kind} client {i}: missing, repeated or out of order"
            assert len(got) > total // 4, f"{kind} client {i} connected too late to tell"
    direct = sample("notify_deliveries_total", path="direct") - direct_before
    if direct_writes:
        assert direct > 0, "websocket clients should have been served by the direct path"
    else:
        assert direct == 0


async def test_a_client_that_stops_reading_is_cut_off_and_others_get_everything(stop_after):
    server = await serve(client_buffer_bytes=64 * 1024)
    stop_after.append(server)
    tenant = new_tenant()
    token = mint_token(TEST_SECRET, tenant, "u1", ["operator"])
    url = f"http://127.0.0.1:{server.port}"
    reader = await NodeClient.start(url, token, transports=["websocket"])
    stop_after.append(reader)
    await reader.connected()

    # the stalled client: a real engine.io/socket.io handshake, then it never reads again
    http = aiohttp.ClientSession()
    stop_after.append(http)
    ws = await http.ws_connect(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket")
    assert (await ws.receive_str(timeout=5)).startswith("0")  # engine.io OPEN
    await ws.send_str("40" + orjson.dumps({"token": token}).decode())
    assert (await ws.receive_str(timeout=5)).startswith("40")  # socket.io CONNECT ack
    await asyncio.sleep(0.3)
    assert len(server.handlers.principals) == 2
    cut_before = sample("notify_slow_client_disconnects_total", reason="websocket")

    sent = 0
    while sample("notify_slow_client_disconnects_total", reason="websocket") == cut_before:
        for _ in range(100):
            event = alert_event(tenant, sent, pad=4000)
            await server.emit(event, rooms_for(event))
            sent += 1
        await asyncio.sleep(0.01)  # let the healthy reader drain
        assert sent < 20_000, "the stalled client was never cut off"

    last = alert_event(tenant, sent - 1)["id"]
    await reader.wait_for(lambda m: m["kind"] == "event" and m["data"].get("id") == last, 30)
    assert ids_of(reader, 0) == [alert_event(tenant, n)["id"] for n in range(sent)]
    # the stalled connection is gone on the server, and closed on its side once read
    await asyncio.sleep(0.2)
    assert len(server.handlers.principals) == 1
    closed = False
    for _ in range(sent + 10):
        msg = await ws.receive(timeout=10)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            closed = True
            break
    assert closed


async def test_a_reconnect_storm_is_served_without_exhausting_redis(base_url, token):
    # 300 dashboards reconnecting at once (a server restart): each connection reads the
    # history head from Redis; a pool that raises when busy used to drop some of them
    tenant = new_tenant()
    clients = await NodeClient.start(base_url, token(tenant), ["websocket"], count=300)
    try:
        established = await clients.wait_count(
            lambda m: m["kind"] == "event" and m["name"] == "connection_established", 300, 60
        )
        assert len({m["client"] for m in established}) == 300
    finally:
        await clients.close()
