"""ADR-010's producers speak their own words: every message they send is delivered, with
the canonical priority, and what is really wrong is still a dead letter naming the value.

Unit level (the decoder and the event constructors), then end to end: ADR-010-style
messages produced into the real broker and the Redis channel reach a Node socket.io-client.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from notify_core.wire import events
from notify_core.wire.events import TOPIC_ALERTS, TOPIC_KPIS
from pipeline.envelope import BadInput, decode, decode_kpi
from pipeline.handlers import system_notice_event
from tests import redis_cluster
from tests.helpers import NodeClient, envelope, new_tenant

TS = "2026-11-25T10:00:00Z"


def _incident(severity: object = ..., **extra: object) -> bytes:
    payload: dict[str, object] = {"incident_id": "I-1", "title": "Mains lost", **extra}
    if severity is not ...:
        payload["severity"] = severity
    return orjson.dumps({"tenant_id": "t", "site_id": "s", "timestamp": TS, "payload": payload})


@pytest.mark.parametrize(
    ("word", "canonical"),
    [
        ("high", "major"),
        ("HIGH", "major"),
        ("medium", "minor"),
        ("Low", "warning"),
        ("critical", "critical"),
        ("Info", "info"),
        (..., "minor"),  # ADR-010's bridge defaults a missing severity to medium
        (None, "minor"),
    ],
)
def test_severity_words_and_default(word, canonical) -> None:
    d = decode(TOPIC_ALERTS, _incident(word))
    event = events.incident_alert(d.envelope, d.payload, d.envelope.payload)  # type: ignore[arg-type]
    assert event["priority"] == canonical
    assert event["requires_acknowledgment"] is (canonical in ("critical", "major"))
    produced = d.envelope.payload
    assert event["incident"] == {**produced, "site_id": "s"}, "the payload as produced"


@pytest.mark.parametrize("word", ["urgent", "", 3, ["high"]])
def test_other_severities_are_still_dead_letters_naming_the_value(word) -> None:
    with pytest.raises(BadInput) as info:
        decode(TOPIC_ALERTS, _incident(word))
    assert "payload.severity" in info.value.reason
    assert repr(word if not isinstance(word, str) else word.lower()) in info.value.reason


@pytest.mark.parametrize(
    ("word", "canonical"),
    [
        ("info", "info"),
        ("WARNING", "warning"),
        ("error", "error"),
        ("critical", "critical"),
        (None, "info"),
        (..., "info"),
        ("normal", "info"),
        ("high", "error"),
    ],
)
def test_system_notice_priorities(word, canonical) -> None:
    notice: dict[str, object] = {"tenant_id": "t", "title": "Maintenance tonight"}
    if word is not ...:
        notice["priority"] = word
    assert system_notice_event(orjson.dumps(notice))["priority"] == canonical


def test_unknown_notice_priority_is_refused_with_its_value() -> None:
    with pytest.raises(BadInput, match=r"priority: .*\(got 'apocalyptic'\)"):
        system_notice_event(
            orjson.dumps({"tenant_id": "t", "title": "x", "priority": "apocalyptic"})
        )


def test_kpi_flags_and_labels_ride_along_and_only_numbers_count() -> None:
    raw = orjson.dumps(
        envelope("t", {"rssi_dbm": -71.5, "threshold_breach": True, "vendor": "Huawei"}, site="s")
    )
    msg = decode_kpi(raw)
    assert msg.payload == {"rssi_dbm": -71.5, "threshold_breach": True, "vendor": "Huawei"}
    slow = decode(TOPIC_KPIS, raw)
    assert dict(slow.payload.values) == msg.payload  # type: ignore[attr-defined]
    event = events.kpi_update(msg, msg.payload)
    assert event["kpi_data"] == {"rssi_dbm": -71.5, "threshold_breach": True, "vendor": "Huawei"}
    quiet = events.kpi_update(msg, {"rssi_dbm": -71.5})
    assert quiet["kpi_data"]["threshold_breach"] is False
    firing = events.kpi_update(msg, {"rssi_dbm": -71.5, "threshold_breach": False}, None, True)
    assert firing["kpi_data"]["threshold_breach"] is True
    assert "threshold_breach" not in quiet, "the top-level list stays as it was"


async def test_adr010_producers_through_the_broker_and_redis(
    daemon, base_url, produce, token, redis_url
) -> None:
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant), ["websocket"])
    redis = redis_cluster.client(redis_url)
    try:
        await client.connected()
        await client.emit("subscribe_kpis", {"site_ids": ["s1"]})
        words = {"high": "major", "medium": "minor", "low": "warning", None: "minor"}
        for n, word in enumerate(words):
            payload: dict[str, object] = {"incident_id": f"ADR-{n}", "title": "Door open"}
            if word is not None:
                payload["severity"] = word
            await produce(TOPIC_ALERTS, envelope(tenant, payload))
        await produce(
            TOPIC_ALERTS, envelope(tenant, {"incident_id": "BAD", "title": "x", "severity": "meh"})
        )
        await produce(
            TOPIC_ALERTS,
            envelope(tenant, {"incident_id": "AFTER", "title": "x", "severity": "high"}),
        )
        # ADR-010's KPI producer; the temp_c rule (warning 45) fires at 50: the flag says so
        sample = {"temp_c": 50, "threshold_breach": False, "vendor": "Ericsson"}
        await produce(TOPIC_KPIS, envelope(tenant, sample, site="s1"))
        channel = daemon.settings.system_channel
        await redis.publish(channel, orjson.dumps({"tenant_id": tenant, "title": "Hello"}))
        await redis.publish(
            channel, orjson.dumps({"tenant_id": tenant, "title": "Oops", "priority": "error"})
        )

        alerts = await client.wait_count(lambda m: m.get("name") == "incident_alert", 5)
        got = {a["data"]["incident"]["incident_id"]: a["data"]["priority"] for a in alerts}
        assert got == {
            "ADR-0": "major",
            "ADR-1": "minor",
            "ADR-2": "warning",
            "ADR-3": "minor",
            "AFTER": "major",
        }
        assert alerts[0]["data"]["incident"]["severity"] == "high", "as produced"
        kpi = (await client.wait_for(lambda m: m.get("name") == "kpi_update"))["data"]
        assert kpi["kpi_data"] == {**sample, "threshold_breach": True}
        assert kpi["threshold_breach"][0]["kpi"] == "temp_c"
        notices = await client.wait_count(lambda m: m.get("name") == "system_notification", 2)
        assert [n["data"]["priority"] for n in notices] == ["info", "error"]
        await asyncio.sleep(0.3)
        assert "BAD" not in got
    finally:
        await client.close()
        await redis.aclose()
