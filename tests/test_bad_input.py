"""Malformed input anywhere is rejected with a reason, counted, and loses nothing else."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from notify_core.wire.events import TOPIC_ALERTS, TOPIC_DEADLETTER, TOPIC_KPIS, TOPIC_SITES
from tests.helpers import NodeClient, alert, envelope, new_tenant


async def _metric(base_url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_malformed_kafka_messages_go_to_deadletter_and_good_ones_arrive(
    base_url, broker, produce, token
):
    tenant = new_tenant()
    marker = uuid.uuid4().hex
    client = await NodeClient.start(base_url, token(tenant), ["websocket"])
    consumer = AIOKafkaConsumer(
        TOPIC_DEADLETTER,
        bootstrap_servers=broker,
        auto_offset_reset="latest",
        group_id=f"dl-{marker}",
    )
    await consumer.start()
    try:
        await client.connected()
        await client.emit("subscribe_kpis", {"site_ids": ["s1"]})
        await asyncio.sleep(1.0)  # let the dead-letter consumer settle on the latest offset
        before = await _metric(base_url, "notify_dead_letters_total")
        batched_before = await _metric(base_url, "notify_pipeline_batch_messages_sum")
        key = tenant.encode()
        bad = [
            (TOPIC_ALERTS, b"{not json " + marker.encode()),
            (TOPIC_ALERTS, orjson.dumps(["a list", marker])),
            (
                TOPIC_ALERTS,
                orjson.dumps(
                    {"site_id": marker, "timestamp": "2026-11-25T10:00:00Z", "payload": {}}
                ),
            ),  # no tenant
            (TOPIC_ALERTS, orjson.dumps(alert(tenant, marker, severity="apocalyptic"))),
            (TOPIC_KPIS, orjson.dumps(envelope(tenant, {"rssi": [1], "m": marker}, site="s1"))),
            (TOPIC_KPIS, orjson.dumps(envelope(tenant, {"rssi": 1.0}))),  # no site
            (TOPIC_SITES, orjson.dumps(envelope(tenant, {"status": marker}, site="s1"))),
            (TOPIC_ALERTS, orjson.dumps({**alert(tenant, marker), "timestamp": "yesterday"})),
        ]
        good = 0
        for i, (topic, raw) in enumerate(bad):
            await produce(topic, raw, key=key)
            await produce(TOPIC_ALERTS, alert(tenant, f"GOOD-{i}", "minor"))
            good += 1
        await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -70.0}, site="s1"))

        alerts = await client.wait_count(lambda m: m.get("name") == "incident_alert", good)
        assert [a["data"]["incident"]["incident_id"] for a in alerts] == [
            f"GOOD-{i}" for i in range(good)
        ]
        await client.wait_for(lambda m: m.get("name") == "kpi_update")

        reasons: list[dict] = []

        async def collect() -> None:
            async for record in consumer:
                body = orjson.loads(record.value)
                if marker in body["raw"] or tenant in body["raw"]:
                    reasons.append(body)
                    if len(reasons) == len(bad):
                        return

        await asyncio.wait_for(collect(), 20)
        by_raw = {r["raw"]: r for r in reasons}
        assert by_raw[f"{{not json {marker}"]["reason"].startswith("not valid JSON")
        text = " | ".join(r["reason"] for r in reasons)
        assert "envelope must be a JSON object, got list" in text
        assert "tenant_id: Field required" in text
        assert "payload.severity" in text and "apocalyptic" in text
        assert "payload.rssi" in text
        assert "site_id: required on towerco.kpis.updates" in text
        assert "payload.status" in text
        assert "envelope: timestamp" in text
        assert all(r["topic"] in (TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES) for r in reasons)
        assert all(isinstance(r["offset"], int) for r in reasons)
        after = await _metric(base_url, "notify_dead_letters_total")
        assert after - before >= len(bad)
        # every one of them went through the batch path, and its size is exported
        batched = await _metric(base_url, "notify_pipeline_batch_messages_sum") - batched_before
        assert batched >= len(bad) + good + 1
    finally:
        await consumer.stop()
        await client.close()


async def test_bad_system_channel_messages_are_counted_and_skipped(
    base_url, daemon, redis_client, token
):
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant), ["polling"])
    try:
        await client.connected()
        before = await _metric(base_url, 'notify_dead_letters_total{source="redis"}')
        channel = daemon.settings.system_channel
        await redis_client.publish(channel, b"\xff\xfe not json")
        await redis_client.publish(channel, orjson.dumps({"tenant_id": tenant}))  # no title
        await redis_client.publish(
            channel, orjson.dumps({"tenant_id": tenant, "title": "x", "priority": "urgent!!"})
        )
        await redis_client.publish(
            channel,
            orjson.dumps(
                {
                    "tenant_id": tenant,
                    "title": "Planned work",
                    "message": "02:00-04:00",
                    "priority": "warning",
                    "timestamp": "2026-11-25T10:00:00Z",
                }
            ),
        )
        line = await client.wait_for(lambda m: m.get("name") == "system_notification")
        data = line["data"]
        assert data["title"] == "Planned work" and data["priority"] == "warning"
        assert data["tenant_id"] == tenant and data["id"]
        after = await _metric(base_url, 'notify_dead_letters_total{source="redis"}')
        assert after - before == 3
    finally:
        await client.close()


async def test_ops_endpoints(base_url):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{base_url}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200 and body["ready"] is True
            assert body["checks"] == {
                "http": True,
                "kafka": True,
                "redis": True,
                "redis_channel": True,
            }
        async with http.get(f"{base_url}/metrics") as resp:
            text = await resp.text()
    for name in (
        "notify_events_consumed_total",
        "notify_notifications_total",
        "notify_dead_letters_total",
        "notify_kafka_to_emit_seconds_bucket",
        "notify_connections",
    ):
        assert name in text, name


async def test_connections_metric_by_tenant_and_transport(base_url, token):
    tenant = new_tenant()
    ws = await NodeClient.start(base_url, token(tenant), ["websocket"])
    poll = await NodeClient.start(base_url, token(tenant), ["polling"])
    try:
        await ws.connected()
        await poll.connected()
        ws_count = await _metric(
            base_url, f'notify_connections{{tenant="{tenant}",transport="websocket"}}'
        )
        poll_count = await _metric(
            base_url, f'notify_connections{{tenant="{tenant}",transport="polling"}}'
        )
        assert (ws_count, poll_count) == (1.0, 1.0)
    finally:
        await ws.close()
        await poll.close()
