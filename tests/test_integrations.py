"""Integrations in: Alertmanager's webhook and the generic shape, from the translation
(pure) to a real Alertmanager paging through the daemon; keys from the attacker's side,
each with its positive twin; bad bodies produce nothing; a broker away is a 503 that
Alertmanager's own retry turns into a delivered alert once it is back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from notify_core.config_yaml import ConfigInvalid
from notify_core.integrations.config import Integration, parse_integrations
from notify_core.integrations.ingest import (
    IngestError,
    changes,
    from_alertmanager,
    from_generic,
    severity_of,
)
from notify_core.state.incidents import IncidentState
from notify_core.wire.events import TOPIC_ALERTS, IncidentPayload
from tests.alertmanager import Alertmanager
from tests.conftest import INTEGRATION_KEY, eventually

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
PROM = Integration(name="prom", tenant="acme", kind="alertmanager", key_env="X")
GENERIC = Integration(name="nms", tenant="acme", kind="generic", key_env="X")


def am_body(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "towerco", "alerts": list(alerts)}


def am_alert(fp: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "MainsLost", **labels},
        "annotations": {"summary": f"Mains lost {fp}", "description": "on battery"},
        "startsAt": "2026-12-07T05:59:00.123Z",
        "endsAt": "2026-12-07T06:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fp,
    }


# -- the translation (pure) ----------------------------------------------------------
def test_alertmanager_alerts_become_incident_records() -> None:
    items = from_alertmanager(
        PROM,
        am_body(
            am_alert("a1b2", severity="critical", site_id="s-17", team="radio"),
            am_alert("c3d4", status="resolved"),
        ),
        NOW,
    )
    fired, resolved = items
    assert fired.topic == TOPIC_ALERTS and fired.key == b"acme/am:a1b2"
    env = fired.envelope
    assert env["tenant_id"] == "acme" and env["site_id"] == "s-17"
    assert env["timestamp"] == "2026-12-07T05:59:00.123Z"  # the alert's time, not ours
    payload = IncidentPayload.model_validate(env["payload"])  # what the pipeline accepts
    assert payload.incident_id == "am:a1b2" and payload.severity == "critical"
    assert payload.title == "Mains lost a1b2" and payload.description == "on battery"
    assert env["payload"]["labels"]["team"] == "radio"  # labels ride along
    assert resolved.topic == "towerco.incidents.actions"
    assert resolved.envelope["payload"] == {
        "incident_id": "am:c3d4",
        "action": "resolve",
        "user_id": "integration:prom",
    }
    assert resolved.envelope["timestamp"] == "2026-12-07T06:10:00.000Z"
    # the same alert sent again is the same record (the history's dedupe keeps it once)
    again = from_alertmanager(
        PROM, am_body(am_alert("a1b2", severity="critical", site_id="s-17", team="radio")), NOW
    )
    assert orjson.dumps(again[0].envelope) == orjson.dumps(fired.envelope)


def test_title_falls_back_to_the_alert_name() -> None:
    alert = am_alert("e5")
    alert["annotations"] = {}
    (item,) = from_alertmanager(PROM, am_body(alert), NOW)
    assert item.envelope["payload"]["title"] == "MainsLost"
    assert "site_id" not in item.envelope  # no site label: a tenant-wide incident


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("critical", "critical"),
        ("MAJOR", "major"),
        ("high", "major"),
        ("medium", "minor"),
        ("low", "warning"),
        ("error", "major"),
        ("info", "info"),
        ("page-me", None),
        (None, "warning"),
    ],
)
def test_severity_words(word: str | None, expected: str | None) -> None:
    assert severity_of(word, "warning") == expected


def test_an_unknown_severity_label_takes_the_integration_default() -> None:
    spec = PROM.model_copy(update={"default_severity": "minor"})
    (item,) = from_alertmanager(spec, am_body(am_alert("f6", severity="sev9")), NOW)
    assert item.envelope["payload"]["severity"] == "minor"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (am_body(am_alert("a1", site_id="bad site!")), "alerts.0.labels.site_id"),
        ({"version": "3", "alerts": []}, "version"),
        (am_body({**am_alert("a1"), "fingerprint": "x:y"}), "alerts.0.fingerprint"),
        (am_body({**am_alert("a1"), "startsAt": "yesterday"}), "alerts.0.startsAt"),
        ([1, 2], "message"),
    ],
)
def test_a_bad_alertmanager_body_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(IngestError) as err:
        from_alertmanager(PROM, body, NOW)
    assert str(err.value).startswith(field), str(err.value)


def test_generic_shape_single_and_list() -> None:
    (one,) = from_generic(GENERIC, {"incident_id": "n-1", "title": "Fan failure"}, NOW)
    assert one.envelope["payload"]["severity"] == "major"  # the integration's default
    assert one.envelope["timestamp"] == "2026-12-07T06:00:00.000Z"
    many = from_generic(
        GENERIC,
        [
            {"incident_id": "n-2", "title": "Door open", "severity": "HIGH", "site_id": "s-1"},
            {"incident_id": "n-1", "title": "Fan failure", "status": "resolved"},
        ],
        NOW,
    )
    assert many[0].envelope["payload"]["severity"] == "major"
    assert many[0].envelope["site_id"] == "s-1"
    assert many[1].envelope["payload"]["action"] == "resolve"
    with pytest.raises(IngestError, match=r"^1\.severity: .*'sev9'"):
        from_generic(
            GENERIC,
            [
                {"incident_id": "n", "title": "t"},
                {"incident_id": "n", "title": "t", "severity": "sev9"},
            ],
            NOW,
        )
    with pytest.raises(IngestError, match=r"^title"):
        from_generic(GENERIC, {"incident_id": "n-3"}, NOW)


def test_what_changes_an_incident() -> None:
    (fire,) = from_alertmanager(PROM, am_body(am_alert("a1", severity="major")), NOW)
    (done,) = from_alertmanager(PROM, am_body(am_alert("a1", status="resolved")), NOW)
    at = int(NOW.timestamp() * 1000)
    open_major = IncidentState("s", "major", "open")
    assert changes(fire, None, at)  # new
    assert not changes(fire, open_major, at)  # a repeat
    assert not changes(fire, IncidentState("s", "major", "acknowledged"), at)
    assert changes(fire, IncidentState("s", "critical", "open"), at)  # severity changed
    resolved_later = IncidentState("s", "major", "resolved", resolved_at_ms=at + 1)
    resolved_before = IncidentState("s", "major", "resolved", resolved_at_ms=at - 1)
    assert not changes(fire, resolved_later, at)  # older than its resolution
    assert changes(fire, resolved_before, at)  # fires again
    assert changes(done, open_major, at)
    assert not changes(done, None, at) and not changes(done, resolved_before, at)


# -- the file ------------------------------------------------------------------------
def test_integrations_file_errors_name_file_line_integration_and_field(monkeypatch) -> None:
    monkeypatch.setenv("GOOD_KEY", "s3cret")
    monkeypatch.delenv("UNSET_KEY", raising=False)
    text = """\
version: 1
integrations:
  - {name: ok, tenant: acme, kind: alertmanager, key_env: GOOD_KEY}
  - name: nokey
    tenant: acme
    kind: generic
    key_env: UNSET_KEY
  - {name: ok, tenant: acme, kind: generic, key_env: GOOD_KEY}
  - {name: both, tenant: acme, kind: generic, key_env: GOOD_KEY, key_file: /k}
  - {name: odd, tenant: acme, kind: zabbix, key_env: GOOD_KEY}
"""
    with pytest.raises(ConfigInvalid) as err:
        parse_integrations(text, "integrations.yaml")
    lines = str(err.value).splitlines()
    assert lines[0] == (
        "integrations.yaml:7: integration nokey: key_env: environment variable"
        " 'UNSET_KEY' is unset or empty"
    )
    assert lines[1] == "integrations.yaml:8: integration ok: name: duplicate name"
    assert lines[2].startswith("integrations.yaml:9: integration both: ")
    assert "exactly one of key_env, key_file" in lines[2]
    assert lines[3].startswith("integrations.yaml:10: integration odd: kind: ")
    assert "'zabbix'" in lines[3]
    good = parse_integrations(text.split("  - name: nokey")[0], "integrations.yaml")
    assert good["ok"].key() == "s3cret"


# -- through the daemon ----------------------------------------------------------------
async def post(url: str, body: Any, key: str | None = None, bearer: str | None = None) -> Any:
    params = {"key": key} if key is not None else {}
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=data, params=params, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


async def incident(base_url: str, tok: str, incident_id: str) -> dict[str, Any] | None:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{base_url}/api/v1/incidents",
            params={"status": "all"},
            headers={"Authorization": f"Bearer {tok}"},
        ) as resp:
            rows = (await resp.json())["incidents"]
    return next((r for r in rows if r["incident_id"] == incident_id), None)


async def test_generic_integration_keys_bodies_and_repeats(base_url, token, daemon) -> None:
    url = f"{base_url}/api/v1/integrations/nms/alerts"
    tok = token("integ-gen", "op", ["operator", "admin"])
    alert = {"incident_id": "gen-1", "title": "Rectifier alarm", "severity": "critical"}
    # the attack: no key, a wrong key, another name, a key of the right length
    assert (await post(url, alert))[0] == 401
    assert (await post(url, alert, key="wrong"))[0] == 401
    assert (await post(url, alert, bearer="k3y-" + "0" * 32))[0] == 401
    assert (await post(f"{base_url}/api/v1/integrations/nope/alerts", alert, INTEGRATION_KEY))[
        0
    ] == 401
    # a bad body: the field named, nothing of it produced (its good item neither)
    bad = [{"incident_id": "gen-2", "title": "ok"}, {"incident_id": "gen-3", "title": ""}]
    status, body = await post(url, bad, INTEGRATION_KEY)
    assert status == 400 and body["error"].startswith("1.title"), body
    assert (await post(url, b"{not json", INTEGRATION_KEY))[0] == 400
    assert (await post(url, b"[" + b" " * (1024 * 1024) + b"]", INTEGRATION_KEY))[0] == 413
    # the positive twin: the key as a header, and as ?key=
    status, body = await post(url, alert, bearer=INTEGRATION_KEY)
    assert status == 200 and body == {"ok": True, "received": 1, "produced": 1}
    row = await eventually(lambda: incident(base_url, tok, "gen-1"), timeout=15)
    assert row["severity"] == "critical" and row["title"] == "Rectifier alarm"
    assert row["status"] == "open"
    # the same alert again changes nothing
    status, body = await post(url, alert, INTEGRATION_KEY)
    assert status == 200 and body["produced"] == 0
    resolve = {**alert, "status": "resolved"}
    assert (await post(url, resolve, INTEGRATION_KEY))[1]["produced"] == 1

    async def resolved() -> bool:
        row = await incident(base_url, tok, "gen-1")
        return row is not None and row["status"] == "resolved"

    await eventually(resolved, timeout=15)
    assert (await post(url, resolve, INTEGRATION_KEY))[1]["produced"] == 0
    assert await incident(base_url, tok, "gen-2") is None  # the refused body's good item
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as resp:
        text = await resp.text()
    for result in ("ok", "unchanged", "refused", "invalid", "too_large"):
        assert f'notify_ingest_total{{integration="nms",result="{result}"}}' in text, result
    assert 'notify_ingest_total{integration="unknown",result="refused"}' in text
    # the refused keys are in the integration tenant's audit, with the caller's address
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{base_url}/api/v1/audit",
            params={"action": "auth_refused", "limit": "50"},
            headers={"Authorization": f"Bearer {tok}"},
        ) as resp:
            records = (await resp.json())["records"]
    refused = [r for r in records if r["actor"] == "integration:nms"]
    assert len(refused) >= 3 and refused[0]["remote_addr"] == "127.0.0.1"


async def test_real_alertmanager_opens_escalates_and_resolves(base_url, token, daemon) -> None:
    am = Alertmanager(f"{base_url}/api/v1/integrations/prom/alerts", INTEGRATION_KEY)
    await am.start()
    tok = token("integ-am", "op", ["operator"])
    try:
        labels = {"alertname": "MainsLost", "severity": "critical", "site_id": "am-site"}
        await am.fire(labels, {"summary": "Mains lost at Nakuru hub", "description": "on DC"})
        incident_id = "am:" + await am.fingerprint(labels)
        row = await eventually(lambda: incident(base_url, tok, incident_id), timeout=20)
        assert row["severity"] == "critical" and row["site_id"] == "am-site"
        assert row["title"] == "Mains lost at Nakuru hub"

        async def timeline() -> list[str]:
            async with aiohttp.ClientSession() as http:
                async with http.get(
                    f"{base_url}/api/v1/incidents/{incident_id}/timeline",
                    headers={"Authorization": f"Bearer {tok}"},
                ) as resp:
                    return [e["kind"] for e in (await resp.json())["timeline"]]

        await eventually(lambda: _has(timeline(), "notified"), timeout=15)  # escalated
        # a second, unrelated alert of another site: its own incident
        other = {"alertname": "DoorOpen", "severity": "warning", "site_id": "am-other"}
        await am.fire(other, {})
        other_id = "am:" + await am.fingerprint(other)
        other_row = await eventually(lambda: incident(base_url, tok, other_id), timeout=20)
        assert other_row["title"] == "DoorOpen" and other_row["severity"] == "warning"
        await am.resolve(labels)

        async def resolved() -> dict[str, Any] | None:
            found = await incident(base_url, tok, incident_id)
            return found if found and found["status"] == "resolved" else None

        await eventually(resolved, timeout=20)
        assert (await incident(base_url, tok, other_id))["status"] == "open"  # untouched
    finally:
        await am.stop()


def _unavailable() -> float:
    from prometheus_client import REGISTRY

    sample = REGISTRY.get_sample_value(
        "notify_ingest_total", {"integration": "prom", "result": "unavailable"}
    )
    return sample or 0.0


async def _has(kinds: Any, kind: str) -> bool:
    return kind in await kinds


async def test_broker_away_is_503_and_alertmanagers_retry_delivers(redis_url, tmp_path) -> None:
    """A `server` process on a broker of its own: while the broker answers nothing (paused)
    the endpoint answers 503 (nothing claimed), Alertmanager's own retry delivers the alert
    once the broker is back."""
    from pipeline.kafka.topics import ensure_topics
    from tests.conftest import daemon_settings
    from towerco_notify.embedded_broker import EmbeddedBroker
    from towerco_notify.runtime import Runtime

    broker = EmbeddedBroker()
    await broker.start()
    await ensure_topics(broker.bootstrap, (TOPIC_ALERTS, "towerco.incidents.actions"), 1)
    (tmp_path / "key").write_text(INTEGRATION_KEY)
    (tmp_path / "integrations.yaml").write_text(
        f"integrations:\n  - {{name: prom, tenant: integ-away, kind: alertmanager,"
        f" key_file: {tmp_path / 'key'}}}\n"
    )
    settings = daemon_settings(
        broker.bootstrap, redis_url, config_dir=Path(tmp_path), ingest_timeout_s=2.0
    )
    server = Runtime(settings, mode="server")
    am: Alertmanager | None = None
    try:
        await server.start()
        url = f"http://127.0.0.1:{server.http_port}/api/v1/integrations/prom/alerts"
        first = am_body(am_alert("bb01", severity="major", site_id="s-1"))
        assert (await post(url, first, INTEGRATION_KEY))[0] == 200  # the positive twin
        # paused, not restarted: tansu's memory storage would come back without its topics
        broker.pause()
        status, body = await post(url, am_body(am_alert("bb02")), INTEGRATION_KEY)
        assert status == 503 and "retry" in body["error"]
        am = Alertmanager(url, INTEGRATION_KEY)
        await am.start()
        labels = {"alertname": "Away", "severity": "critical", "site_id": "s-2"}
        refused_before = _unavailable()
        await am.fire(labels, {"summary": "sent while the broker was away"})
        # Alertmanager's own attempts meet the 503 while the broker is away
        await eventually(lambda: _unavailable() >= refused_before + 1, timeout=20)
        broker.resume()
        fingerprint = await am.fingerprint(labels)
        consumer = AIOKafkaConsumer(
            TOPIC_ALERTS, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            seen: list[str] = []

            async def delivered() -> bool:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        seen.append(orjson.loads(record.value)["payload"]["incident_id"])
                return f"am:{fingerprint}" in seen

            await eventually(delivered, timeout=40)
            assert "am:bb01" in seen and seen.count(f"am:{fingerprint}") >= 1
        finally:
            await consumer.stop()
    finally:
        if am is not None:
            await am.stop()
        await server.stop()
        await broker.stop()
