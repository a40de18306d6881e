"""Recovery on reconnect with real Node clients, both transports.

A Socket.IO server and the publish path run in process (no Kafka needed to test the
gate itself); events are published while clients are away and while they resume.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from notify_core.history.store import MemoryHistory
from notify_core.obs.readiness import Readiness
from notify_core.state.snapshots import MemorySnapshots
from notify_core.wire.ids import parse_id
from pipeline.publisher import Publisher
from sio_server.admission.auth import Authenticator
from sio_server.app import SocketServer
from tests.helpers import NOT_STORED, TEST_SECRET, NodeClient, new_tenant

TRANSPORTS = [pytest.param(["websocket"], id="websocket"), pytest.param(["polling"], id="polling")]
_seq = itertools.count()


class Stack:
    def __init__(self, maxlen: int = 5000) -> None:
        self.history = MemoryHistory(maxlen)
        self.snapshots = MemorySnapshots()
        self.server = SocketServer(
            Authenticator(TEST_SECRET),
            self.history,
            Readiness(),
            "127.0.0.1",
            0,
            [],
            snapshots=self.snapshots,
        )
        self.publisher = Publisher(self.history, self.server.emit, snapshots=self.snapshots)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def alert(self, tenant: str, n: int, site: str | None = None) -> str:
        event: dict[str, Any] = {
            "id": None,
            "type": "incident_alert",
            "tenant_id": tenant,
            "timestamp": "2026-11-25T10:00:00Z",
            "priority": "critical",
            "incident": {"incident_id": f"I-{n}"},
            "requires_acknowledgment": True,
        }
        if site:
            event["site_id"] = site
        event_id = await self.publisher.publish(event, f"k{next(_seq)}")
        assert event_id
        return event_id


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    s = Stack()
    await s.server.start()
    yield s
    await s.server.stop()


def _incidents(client: NodeClient) -> list[str]:
    return [e["incident"]["incident_id"] for e in client.events("incident_alert")]


def _order(client: NodeClient) -> list[tuple[int, int]]:
    return [parse_id(e["id"]) for e in client.events() if e["type"] not in NOT_STORED]


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_missed_events_then_sync_complete_then_live_in_order(stack, token, transports):
    tenant = new_tenant()
    first = await NodeClient.start(stack.url, token(tenant), transports)
    await first.connected()
    last_id = await stack.alert(tenant, 0)
    await first.wait_for(lambda m: m.get("name") == "incident_alert")
    await first.close()

    for n in range(1, 201):
        await stack.alert(tenant, n)

    async def live() -> None:  # keeps publishing while the client resumes
        for n in range(201, 261):
            await stack.alert(tenant, n)
            await asyncio.sleep(0.002)

    again = await NodeClient.start(
        stack.url, auth={"token": token(tenant), "last_id": last_id}, transports=transports
    )
    producer = asyncio.create_task(live())
    try:
        await again.connected()
        await producer
        await again.wait_count(lambda m: m.get("name") == "incident_alert", 260, 30)
        await asyncio.sleep(0.3)
        names = [
            line["name"]
            for line in again.lines
            if line["kind"] == "event" and line["name"] not in ("presence", "incident_viewers")
        ]
        assert names[0] == "connection_established"
        assert _incidents(again) == [f"I-{n}" for n in range(1, 261)], "exactly once, in order"
        ids = _order(again)  # sync_complete carries the position it recovered up to
        assert all(a <= b for a, b in itertools.pairwise(ids)), "never an older id after"
        alert_ids = [parse_id(e["id"]) for e in again.events("incident_alert")]
        assert all(a < b for a, b in itertools.pairwise(alert_ids)), "ids strictly increase"
        done = again.events("sync_complete")
        assert len(done) == 1 and done[0]["recovered"] is True
        cut = names.index("sync_complete")
        replayed = [n for n in names[1:cut]]
        assert len(replayed) == done[0]["replayed"] >= 200
        assert all(n == "incident_alert" for n in replayed)
    finally:
        await again.close()


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_history_that_no_longer_reaches_back_says_so(token, transports):
    stack = Stack(maxlen=20)
    await stack.server.start()
    tenant = new_tenant()
    try:
        old = await stack.alert(tenant, 0)
        for n in range(1, 60):
            await stack.alert(tenant, n)
        client = await NodeClient.start(
            stack.url, auth={"token": token(tenant), "last_id": old}, transports=transports
        )
        try:
            await client.connected()
            done = (await client.wait_for(lambda m: m.get("name") == "sync_complete"))["data"]
            assert done["recovered"] is False and "no longer reaches back" in done["reason"]
            assert _incidents(client) == [f"I-{n}" for n in range(40, 60)]  # what is left
            await stack.alert(tenant, 60)  # and live still works
            await client.wait_for(
                lambda m: (
                    m.get("name") == "incident_alert"
                    and m["data"]["incident"]["incident_id"] == "I-60"
                )
            )
        finally:
            await client.close()
    finally:
        await stack.server.stop()


async def test_resume_before_the_first_event_needs_the_epoch(stack, token):
    """A client told the history's epoch resumes from before its first event; one that
    names an id older than the history's beginning and no epoch cannot prove it missed
    nothing (the history may have been reset after it left)."""
    tenant = new_tenant()
    await stack.alert(tenant, 0)
    watcher = await NodeClient.start(stack.url, token(tenant), ["websocket"])
    try:
        hello = await watcher.wait_for(lambda m: m.get("name") == "connection_established")
        epoch = hello["data"]["epoch"]
        assert isinstance(epoch, str) and epoch
    finally:
        await watcher.close()
    for n in range(1, 4):
        await stack.alert(tenant, n)
    first = (await stack.history.read_after(tenant, None, 1))[0]["id"]
    before = f"{parse_id(first)[0] - 1}-0"
    for auth, recovered in (({"epoch": epoch}, True), ({}, False)):
        client = await NodeClient.start(
            stack.url,
            auth={"token": token(tenant), "last_id": before, **auth},
            transports=["websocket"],
        )
        try:
            await client.connected()
            done = (await client.wait_for(lambda m: m.get("name") == "sync_complete"))["data"]
            assert done["recovered"] is recovered and done["epoch"] == epoch
            assert done["replayed"] == 4, "what the history holds is replayed either way"
            if not recovered:
                assert done["reason"] == "history began after last_id"
        finally:
            await client.close()


@pytest.mark.parametrize("bad", ["garbage", "12", "", "1-2-3"])
async def test_garbage_last_id_is_a_clear_error_and_the_connection_stays(stack, token, bad):
    tenant = new_tenant()
    client = await NodeClient.start(
        stack.url, auth={"token": token(tenant), "last_id": bad}, transports=["polling"]
    )
    try:
        await client.connected()
        done = (await client.wait_for(lambda m: m.get("name") == "sync_complete"))["data"]
        assert done["recovered"] is False and done["reason"].startswith("invalid last_id")
        await stack.alert(tenant, 1)
        await client.wait_for(lambda m: m.get("name") == "incident_alert")
        beat = await client.emit("heartbeat", {})
        assert beat["ok"] is True
    finally:
        await client.close()


async def test_site_restricted_recovery_skips_other_sites(stack, token):
    tenant = new_tenant()
    await stack.alert(tenant, 0, site="s1")
    start = await stack.history.last_id(tenant)
    await stack.alert(tenant, 1, site="s2")
    await stack.alert(tenant, 2, site="s1")
    await stack.alert(tenant, 3)
    client = await NodeClient.start(
        stack.url,
        auth={"token": token(tenant, sites=["s1"]), "last_id": start},
        transports=["websocket"],
    )
    try:
        await client.connected()
        await client.wait_for(lambda m: m.get("name") == "sync_complete")
        assert _incidents(client) == ["I-2", "I-3"]
    finally:
        await client.close()


async def test_kpi_snapshot_on_subscribe_instead_of_every_sample(stack, token):
    tenant = new_tenant()
    for value in (1, 2, 3):
        await stack.publisher.publish(
            {
                "id": None,
                "type": "kpi_update",
                "tenant_id": tenant,
                "site_id": "s1",
                "timestamp": "2026-11-25T10:00:00Z",
                "kpi_data": {"rssi": -70 - value},
            },
            f"k{next(_seq)}",
        )
    await stack.publisher.publish(
        {
            "id": None,
            "type": "kpi_update",
            "tenant_id": tenant,
            "site_id": "s1",
            "timestamp": "2026-11-25T10:00:01Z",
            "kpi_data": {"temp": 31.5},
        },
        f"k{next(_seq)}",
    )
    client = await NodeClient.start(
        stack.url, auth={"token": token(tenant), "last_id": "1-0"}, transports=["websocket"]
    )
    try:
        await client.connected()
        done = (await client.wait_for(lambda m: m.get("name") == "sync_complete"))["data"]
        assert done["replayed"] == 0 and client.events("kpi_update") == []
        ack = await client.emit("subscribe_kpis", {"site_ids": ["s1", "s9"]})
        snap = ack["snapshot"]
        assert set(snap) == {"s1"}
        assert snap["s1"]["kpi_data"] == {"rssi": -73, "temp": 31.5}
        assert snap["s1"]["id"] == await stack.history.last_id(tenant)
    finally:
        await client.close()


async def test_sync_on_demand_and_delivery_confirmation(stack, token):
    tenant = new_tenant()
    client = await NodeClient.start(stack.url, token(tenant, "alice"), ["websocket"])
    try:
        await client.connected()
        first = await stack.alert(tenant, 1)
        line = await client.wait_for(lambda m: m.get("name") == "incident_alert")
        assert line["data"]["requires_acknowledgment"] is True
        ack = await client.emit("received", {"id": line["data"]["id"]})
        assert ack == {"ok": True, "id": first, "confirmed": True}
        status = stack.server.deliveries.status(tenant, first)
        assert set(status) == {"alice"} and "confirmed_at" in status["alice"]
        bogus = await client.emit("received", {"id": "nope"})
        assert bogus["ok"] is False
        await stack.alert(tenant, 2)
        await client.wait_count(lambda m: m.get("name") == "incident_alert", 2)
        result = await client.emit("sync", {"last_id": first})
        assert result == {"ok": True, "recovered": True, "replayed": 1}
        assert _incidents(client) == ["I-1", "I-2", "I-2"]  # I-2 again: asked for it
    finally:
        await client.close()


async def test_http_polling_returns_the_socket_sequence(stack, token):
    tenant, other = new_tenant(), new_tenant()
    client = await NodeClient.start(stack.url, token(tenant), ["polling"])
    try:
        await client.connected()
        for n in range(30):
            await stack.alert(tenant, n)
        await client.wait_count(lambda m: m.get("name") == "incident_alert", 30)
        socket_ids = [e["id"] for e in client.events("incident_alert")]
        polled: list[str] = []
        since = "0-0"  # from the beginning (no cursor at all asks for the newest page)
        async with aiohttp.ClientSession() as http:
            while True:
                params = {"limit": "7", "since": since}
                async with http.get(
                    f"{stack.url}/api/v1/notifications",
                    params=params,
                    headers={"Authorization": f"Bearer {token(tenant)}"},
                ) as r:
                    body = await r.json()
                if not body["notifications"]:
                    break
                polled += [n["id"] for n in body["notifications"]]
                since = body["next"]
            async with http.get(
                f"{stack.url}/api/v1/notifications",
                headers={"Authorization": f"Bearer {token(other)}"},
            ) as r:
                assert (await r.json())["notifications"] == []
        assert polled == socket_ids
    finally:
        await client.close()
