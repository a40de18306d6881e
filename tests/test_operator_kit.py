"""The operator kit: the Prometheus alerting rules pass promtool's check and their unit
tests, and every metric the rules and the Grafana dashboard name is one the daemon serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PROMTOOL = shutil.which("promtool")
METRIC = re.compile(r"\b(notify_[a-z_]+?)(?:_bucket|_sum|_count)?\b")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (.ci/run installs Debian's prometheus)"
)


@needs_promtool
def test_alert_rules_pass_promtool_check_and_their_unit_tests():
    rules = DEPLOY / "prometheus"
    check = subprocess.run(
        [PROMTOOL, "check", "rules", "notify-alerts.yml"], cwd=rules, capture_output=True,
        text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 10 rules found" in check.stdout
    test = subprocess.run(
        [PROMTOOL, "test", "rules", "notify-alerts.test.yml"], cwd=rules, capture_output=True,
        text=True,
    )  # fmt: skip
    assert test.returncode == 0, test.stdout + test.stderr


@needs_promtool
def test_a_wrong_rule_is_caught_by_the_unit_tests(tmp_path: Path):
    """The positive twin: the unit tests fail when a rule stops firing as documented."""
    rules = (DEPLOY / "prometheus" / "notify-alerts.yml").read_text()
    (tmp_path / "notify-alerts.yml").write_text(
        rules.replace("max(notify_escalation_leader) < 1", "max(notify_escalation_leader) < 0")
    )
    (tmp_path / "notify-alerts.test.yml").write_text(
        (DEPLOY / "prometheus" / "notify-alerts.test.yml").read_text()
    )
    test = subprocess.run(
        [PROMTOOL, "test", "rules", "notify-alerts.test.yml"], cwd=tmp_path, capture_output=True,
        text=True,
    )  # fmt: skip
    assert test.returncode != 0 and "NotifyEscalationLeaderMissing" in test.stdout + test.stderr


async def test_every_metric_the_kit_names_is_served(base_url):
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as resp:
        served = set(re.findall(r"^# TYPE (notify_[a-z_]+) ", await resp.text(), re.M))
    served |= {f"{name}_total" for name in served}  # counters' TYPE lines omit _total
    rules = (DEPLOY / "prometheus" / "notify-alerts.yml").read_text()
    dashboard = json.loads((DEPLOY / "grafana" / "towerco-notify.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = set(METRIC.findall(rules)) | {m for e in exprs for m in METRIC.findall(e)}
    assert len(named) >= 15
    assert named <= served, sorted(named - served)


def test_the_lag_counts_records_past_the_last_handled_and_forgets_revoked_partitions():
    from collections import namedtuple

    from prometheus_client import REGISTRY

    from pipeline.kafka.lag import ConsumerLag

    TP = namedtuple("TP", "topic partition")
    ends = {TP("lag-test", 0): 10, TP("lag-test", 1): 4}
    lag = ConsumerLag()
    lag.handled_batch([("lag-test", b"", None, 0, 2), ("lag-test", b"", None, 0, 3)])
    lag.handled("lag-test", 1, 3)
    lag.sample(ends, ends.get)

    def value(partition: int) -> float | None:
        labels = {"topic": "lag-test", "partition": str(partition)}
        return REGISTRY.get_sample_value("notify_kafka_consumer_lag", labels)

    assert value(0) == 6  # offsets 4..9 wait
    assert value(1) == 0  # caught up
    lag.sample([TP("lag-test", 1)], ends.get)  # partition 0 went to another worker
    assert value(0) is None and value(1) == 0


async def test_the_daemon_serves_the_lag_of_the_partitions_it_consumes(base_url, produce):
    from notify_core.wire.events import TOPIC_KPIS
    from tests.conftest import eventually
    from tests.helpers import envelope, new_tenant

    await produce(TOPIC_KPIS, envelope(new_tenant(), {"temp_c": 20}, "s1"))
    line = re.compile(
        r'^notify_kafka_consumer_lag\{partition="\d+",topic="towerco\.kpis\.updates"\} '
        r"([0-9.]+)$",
        re.M,
    )

    async def caught_up() -> bool:
        async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as resp:
            values = [float(v) for v in line.findall(await resp.text())]
        return bool(values) and max(values) == 0

    await eventually(caught_up, timeout=20, interval=0.5)
