"""The drop-in JS client (sio_server/static/notify-client.js) with the real socket.io-client:
resumes after a dropped connection with nothing missed and nothing twice."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

from notify_core.wire.events import TOPIC_ALERTS
from tests.helpers import NODE_DIR, NodeClient, alert, new_tenant, node_bin


async def test_client_module_resumes_after_a_drop(base_url, produce, token):
    tenant = new_tenant()
    proc = await asyncio.create_subprocess_exec(
        node_bin(),
        str(NODE_DIR / "client_module.mjs"),
        json.dumps({"url": base_url, "token": token(tenant), "transports": ["websocket"]}),
        cwd=str(NODE_DIR),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=sys.stderr,
    )
    client = NodeClient(proc)  # same line protocol: reuse the reader
    try:
        await client.wait_for(lambda m: m.get("kind") == "state" and m["state"] == "live")
        for i in range(3):
            await produce(TOPIC_ALERTS, alert(tenant, f"C-{i}", "critical"))
        await client.wait_count(lambda m: m.get("name") == "incident_alert", 3)
        assert proc.stdin is not None
        proc.stdin.write(b'{"cmd": "drop"}\n')
        await proc.stdin.drain()
        await client.wait_for(lambda m: m.get("kind") == "state" and m["state"] == "reconnecting")
        for i in range(3, 8):
            await produce(TOPIC_ALERTS, alert(tenant, f"C-{i}", "critical"))
        await client.wait_count(lambda m: m.get("name") == "incident_alert", 8, 30)
        await client.wait_for(lambda m: m.get("name") == "sync_complete", 30)
        await asyncio.sleep(0.5)
        names = [e["incident"]["incident_id"] for e in client.events("incident_alert")]
        assert names == [f"C-{i}" for i in range(8)], "each once, in order"
        states = [m["state"] for m in client.lines if m.get("kind") == "state"]
        assert states[-1] == "live" and "reconnecting" in states
        assert client.events("sync_complete")[-1]["recovered"] is True
    finally:
        await client.close()


async def test_client_module_reloads_after_recovered_false(
    base_url, produce, token, daemon, redis_client
):
    """It resumes with its epoch; a history lost meanwhile is `recovered: false`, and the
    module tells the app to reload; a resume that can be proved stays `recovered: true`."""
    tenant = new_tenant()
    await produce(TOPIC_ALERTS, alert(tenant, "E-0", "critical"))
    await asyncio.sleep(0.5)
    client = await _module(base_url, token(tenant))
    try:
        await client.wait_for(lambda m: m.get("kind") == "state" and m["state"] == "live")
        await produce(TOPIC_ALERTS, alert(tenant, "E-1", "critical"))
        await client.wait_for(lambda m: m.get("name") == "incident_alert")
        await client.command({"cmd": "pause"})
        paused = await client.wait_for(lambda m: m.get("kind") == "paused")
        epoch = client.events("connection_established")[0]["epoch"]
        assert paused["epoch"] == epoch and paused["last_id"]
        await produce(TOPIC_ALERTS, alert(tenant, "E-2", "critical"))
        await asyncio.sleep(1.0)
        await client.command({"cmd": "resume"})  # the twin: nothing lost, recovered
        done = await client.wait_count(lambda m: m.get("name") == "sync_complete", 1, 30)
        assert done[-1]["data"]["recovered"] is True and not client.events("reload")
        await client.command({"cmd": "pause"})
        await client.wait_count(lambda m: m.get("kind") == "paused", 2)
        await redis_client.delete(f"{daemon.settings.redis_prefix}history:{{{tenant}}}")
        await produce(TOPIC_ALERTS, alert(tenant, "E-3", "critical"))
        await asyncio.sleep(1.0)
        await client.command({"cmd": "resume"})
        await client.wait_for(lambda m: m.get("name") == "reload", 30)
        done = client.events("sync_complete")[-1]
        assert done["recovered"] is False and done["epoch"] != epoch
        names = [e["incident"]["incident_id"] for e in client.events("incident_alert")]
        assert names == ["E-1", "E-2", "E-3"]
    finally:
        await client.close()


async def _module(base_url: str, token: str) -> NodeClient:
    proc = await asyncio.create_subprocess_exec(
        node_bin(),
        str(NODE_DIR / "client_module.mjs"),
        json.dumps({"url": base_url, "token": token, "transports": ["websocket"]}),
        cwd=str(NODE_DIR),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=sys.stderr,
    )
    return NodeClient(proc)  # same line protocol: reuse the reader


async def test_client_module_is_served_without_a_cdn(base_url):
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/static/notify-client.js") as resp,
    ):
        assert resp.status == 200 and "createNotifyClient" in await resp.text()
