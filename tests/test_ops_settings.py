"""Settings a platform team relies on: Kafka durability defaults and their flags, and JSON
logs with tenant and incident ids as fields."""

from __future__ import annotations

import json
import logging

import pytest

from notify_core.settings import SettingsError, load_settings
from pipeline.kafka.tuning import faust_settings
from towerco_notify.cli import JsonLogFormatter


def test_kafka_durability_defaults_and_overrides(monkeypatch):
    s = load_settings()
    assert s.kafka_acks == "all" and s.producer_acks == "all" and s.topic_replication == 1
    assert faust_settings(s)["producer_acks"] == -1
    monkeypatch.setenv("NOTIFY_KAFKA_ACKS", "1")
    monkeypatch.setenv("NOTIFY_TOPIC_REPLICATION", "3")
    s = load_settings()
    assert s.producer_acks == 1 and faust_settings(s)["topic_replication_factor"] == 3
    monkeypatch.setenv("NOTIFY_KAFKA_ACKS", "most")
    with pytest.raises(SettingsError, match="NOTIFY_KAFKA_ACKS / --kafka-acks = 'most'"):
        load_settings()


def test_json_log_lines_carry_tenant_and_incident():
    record = logging.LogRecord(
        "pipeline", logging.WARNING, __file__, 1, "dead-letter %s", ("x",), None
    )
    record.tenant_id, record.incident_id = "acme", "INC-1"
    line = json.loads(JsonLogFormatter().format(record))
    assert line["message"] == "dead-letter x" and line["level"] == "WARNING"
    assert line["tenant_id"] == "acme" and line["incident_id"] == "INC-1"
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    assert "tenant_id" not in json.loads(JsonLogFormatter().format(plain))


async def test_an_escalation_problem_is_logged_with_its_tenant_and_incident_as_fields(caplog):
    """A due job whose deployment has no engine (APScheduler ran it in the wrong process):
    the JSON line names the tenant and the incident as fields, not only in its text."""
    from escalation import jobs

    with caplog.at_level(logging.ERROR, logger="escalation.jobs"):
        await jobs.fire("acme", "INC-7", "no-such-deployment")
    (record,) = [r for r in caplog.records if r.name == "escalation.jobs"]
    line = json.loads(JsonLogFormatter().format(record))
    assert line["tenant_id"] == "acme" and line["incident_id"] == "INC-7"
    assert "acme/INC-7" in line["message"] and "site_id" not in line
