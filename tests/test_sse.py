"""Server-Sent Events from a plain HTTP client against the session daemon (real broker and
Redis): live events with `id`/`event`/`data`, resume with `Last-Event-ID`, isolation, KPI
sites, Origin. (Chromium's own EventSource is in tests/test_browser.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from notify_core.wire.events import TOPIC_ALERTS, TOPIC_KPIS
from tests.helpers import alert, envelope, new_tenant


class Stream:
    """One open event stream; `events` are the parsed `(id, event, data)` of each message."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.comments = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self._changed = asyncio.Event()

    async def read(self, resp: aiohttp.ClientResponse) -> None:
        self.status, self.headers = resp.status, dict(resp.headers)
        self._changed.set()
        fields: dict[str, str] = {}
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line == "":
                if "data" in fields:
                    self.events.append(
                        {
                            "id": fields.get("id"),
                            "event": fields.get("event"),
                            "data": orjson.loads(fields["data"]),
                        }
                    )
                    self._changed.set()
                fields = {}
            elif line.startswith(":"):
                self.comments += 1
            else:
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value

    async def wait(self, pred: Any, timeout: float = 20.0) -> dict[str, Any]:
        async def _wait() -> dict[str, Any]:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e["event"] == event]


@contextlib.asynccontextmanager
async def stream(
    base_url: str, bearer: str | None = None, headers: dict[str, str] | None = None, **query: str
) -> AsyncIterator[Stream]:
    s = Stream()
    h = dict(headers or {})
    if bearer is not None:
        h["Authorization"] = f"Bearer {bearer}"
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        resp = await http.get(f"{base_url}/api/v1/notifications/stream", params=query, headers=h)
        task = asyncio.create_task(s.read(resp))
        try:
            await asyncio.wait_for(s._changed.wait(), 10)
            yield s
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task
            resp.close()


async def test_live_events_with_ids_and_types(base_url, produce, token):
    tenant = new_tenant()
    async with stream(base_url, token(tenant), kpi_sites="s1,s2") as s:
        assert s.status == 200 and s.headers["Content-Type"].startswith("text/event-stream")
        hello = await s.wait(lambda e: e["event"] == "connection_established")
        assert hello["data"]["transport"] == "sse" and hello["id"] == hello["data"]["id"]
        await produce(TOPIC_ALERTS, alert(tenant, "SSE-1", site="s1"))
        await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -66.0}, site="s2"))
        inc = await s.wait(lambda e: e["event"] == "incident_alert")
        assert inc["id"] == inc["data"]["id"] and inc["data"]["incident"]["incident_id"] == "SSE-1"
        kpi = await s.wait(lambda e: e["event"] == "kpi_update")
        assert kpi["data"]["site_id"] == "s2" and kpi["data"]["kpi_data"]["rssi_dbm"] == -66.0


async def test_last_event_id_resumes_exactly_after_it(base_url, produce, token):
    tenant = new_tenant()
    async with stream(base_url, token=token(tenant)) as s:  # ?token= as well as Bearer
        await s.wait(lambda e: e["event"] == "connection_established")
        for n in range(2):
            await produce(TOPIC_ALERTS, alert(tenant, f"A-{n}"))
        await s.wait(
            lambda e: (
                e["event"] == "incident_alert" and e["data"]["incident"]["incident_id"] == "A-1"
            )
        )
        last = next(e["id"] for e in s.events if e["event"] == "incident_alert")
    for n in range(2, 4):
        await produce(TOPIC_ALERTS, alert(tenant, f"A-{n}"))
    await asyncio.sleep(1.0)
    async with stream(base_url, token(tenant), headers={"Last-Event-ID": last}) as s:
        done = await s.wait(lambda e: e["event"] == "sync_complete")
        got = [d["incident"]["incident_id"] for d in s.of("incident_alert")]
        assert got == ["A-1", "A-2", "A-3"] and done["data"]["replayed"] == 3
        hello = s.events[0]
        assert hello["event"] == "connection_established" and hello["id"] is None, (
            "a resume's hello must not move the browser's Last-Event-ID"
        )


async def test_isolation_and_refusals(base_url, produce, token):
    tenant, other = new_tenant(), new_tenant()
    async with (
        stream(base_url, token(tenant, sites=["s1"]), kpi_sites="s1,s2") as mine,
        stream(base_url, token(other)) as theirs,
    ):
        await mine.wait(lambda e: e["event"] == "connection_established")
        await theirs.wait(lambda e: e["event"] == "connection_established")
        await produce(TOPIC_ALERTS, alert(tenant, "S2", site="s2"))
        await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -1.0}, site="s2"))
        await produce(TOPIC_ALERTS, alert(other, "OTHER"))
        await produce(TOPIC_ALERTS, alert(tenant, "S1", site="s1"))
        await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -2.0}, site="s1"))
        await mine.wait(lambda e: e["event"] == "kpi_update")
        await mine.wait(lambda e: e["event"] == "incident_alert")
        await theirs.wait(lambda e: e["event"] == "incident_alert")
        await asyncio.sleep(0.5)
        assert [d["incident"]["incident_id"] for d in mine.of("incident_alert")] == ["S1"]
        assert [d["site_id"] for d in mine.of("kpi_update")] == ["s1"]
        assert [d["incident"]["incident_id"] for d in theirs.of("incident_alert")] == ["OTHER"]
    async with aiohttp.ClientSession() as http:
        url = f"{base_url}/api/v1/notifications/stream"
        async with http.get(url, params={"token": "garbage"}) as r:
            assert r.status == 401 and (await r.json())["error"] == "authentication failed"
        async with http.get(
            url, params={"token": token(tenant)}, headers={"Origin": "https://evil.example"}
        ) as r:
            assert r.status == 403
