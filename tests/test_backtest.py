"""Threshold backtest: the pure replay's exact counts, the CLI on a file and on the real
broker, and no side effect on the running daemon."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from notify_core.thresholds.rules_file import parse_rules
from notify_core.wire.events import TOPIC_KPIS, KpiMessage
from pipeline.backtest import Backtest
from pipeline.envelope import decode_kpi
from tests.conftest import TEST_THRESHOLDS, eventually
from tests.helpers import cli_env, envelope, new_tenant, python_bin

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

BASE = """\
kpis:
  temp_c: {direction: above, warning: 45, critical: 55, clear: 40}
"""


def msgs(values: list[float], site: str = "s1", every_s: int = 10, kpi: str = "temp_c") -> list:
    return [
        sample(
            {
                "tenant_id": "acme",
                "site_id": site,
                "timestamp": (T0 + timedelta(seconds=every_s * i)).isoformat(),
                "payload": {kpi: v, "door_open": False, "label": "x"},
            }
        )
        for i, v in enumerate(values)
    ]


def sample(envelope_: dict[str, Any]) -> KpiMessage:
    return decode_kpi(orjson.dumps(envelope_))


def replay(old: str, new: str, *series: list) -> dict[str, Any]:
    bt = Backtest(parse_rules(old), parse_rules(new))
    for ms in series:
        bt.feed(ms)
    return bt.report(bt.finish())


def row(report: dict[str, Any], site: str = "s1") -> dict[str, Any]:
    (found,) = [r for r in report["rules"] if r["site_id"] == site]
    return found


def test_for_duration_drops_the_one_sample_spike_and_keeps_the_sustained_breach():
    # one sample at 50 (a spike), back to 30, then 50 for 4 samples (30 s), then 30
    values = [30, 50, 30, 30, 50, 50, 50, 50, 30, 30]
    new = BASE.replace("clear: 40}", "clear: 40, for: 20s}")
    report = replay(BASE, new, msgs(values))
    r = row(report)
    assert report["samples"] == len(values)
    assert r["old"]["alerts"] == {"warning": 2, "critical": 0}
    assert r["new"]["alerts"] == {"warning": 1, "critical": 0}
    assert r["old"]["flaps"] == 1 and r["new"]["flaps"] == 0
    # old: 10 s (spike) + 40 s (t=40..80); new: fires at t=60 (20 s pending), clears at 80
    assert r["old"]["time_in_alert_s"] == 50.0
    assert r["new"]["time_in_alert_s"] == 20.0
    assert r["new"]["first_alert"] == "2026-11-30T08:01:00Z"


def test_keep_firing_for_folds_a_flapping_series_into_one_alert():
    values = [50, 38, 50, 38, 50, 38, 38, 38, 38, 38]
    new = BASE.replace("clear: 40}", "clear: 40, keep_firing_for: 30s}")
    r = row(replay(BASE, new, msgs(values)))
    assert r["old"]["alerts"]["warning"] == 3 and r["old"]["flaps"] == 2
    assert r["new"]["alerts"]["warning"] == 1 and r["new"]["flaps"] == 0
    assert r["new"]["time_in_alert_s"] == 80.0  # fired at 0, clear held 30 s from t=50


def test_hysteresis_band_keeps_an_alert_firing_instead_of_reraising():
    values = [50, 43, 47, 43, 47, 30]  # oscillates around 45 inside a clear at 40
    no_band = BASE.replace("clear: 40}", "clear: 45}")
    r = row(replay(no_band, BASE, msgs(values)))
    assert r["old"]["alerts"]["warning"] == 3 and r["old"]["flaps"] == 2
    assert r["new"]["alerts"]["warning"] == 1 and r["new"]["flaps"] == 0


def test_a_site_override_changes_only_that_site_and_escalation_counts_critical():
    values = [30, 50, 58, 50, 30]
    new = (
        BASE
        + "overrides:\n  - tenant: acme\n    site: s2\n    kpis:\n      temp_c: {critical: 49}\n"
    )
    report = replay(BASE, new, msgs(values, "s1"), msgs(values, "s2"))
    assert [r["site_id"] for r in report["rules"]] == ["s2"]  # s1 is unchanged: not listed
    r = row(report, "s2")
    assert r["old"]["alerts"] == {"warning": 1, "critical": 1}  # 50 warns, 58 escalates
    assert r["new"]["alerts"] == {"warning": 0, "critical": 1}  # 50 is already critical
    assert r["new"]["rule_id"] == "acme/s2/temp_c" and r["old"]["rule_id"] == "temp_c"
    totals = {t["rule_id"]: t for t in report["totals"]}
    assert totals["temp_c"]["old"] == 4 and totals["temp_c"]["new"] == 2
    assert totals["acme/s2/temp_c"]["new"] == 1


def test_no_data_gaps_count_in_event_time_and_a_new_rule_appears():
    values = [30, 30, 30]
    stale = BASE.replace("clear: 40}", "clear: 40, stale_after: 5m}")
    gap = msgs(values, every_s=600)  # 10 min between samples: two gaps
    r = row(replay(BASE, stale, gap))
    assert r["old"]["no_data"] == 0 and r["new"]["no_data"] == 2
    added = BASE + "  hum_pct: {direction: above, warning: 80}\n"
    r2 = row(replay(BASE, added, msgs([70, 85, 90], kpi="hum_pct")))
    assert r2["old"]["rule_id"] is None and r2["new"]["alerts"]["warning"] == 1


# -- the command line ------------------------------------------------------------------


def raw(m: KpiMessage) -> bytes:
    return m.model_dump_json().encode()


def write_config(path: Path, thresholds: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "thresholds.yaml").write_text(thresholds)
    return path


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python_bin(), "-m", "towerco_notify.cli", "backtest", "--quiet", *args],
        capture_output=True,
        text=True,
        env=cli_env(**env),
        timeout=120,
    )


def test_cli_on_a_file_writes_json_and_a_plot_and_counts_bad_lines(tmp_path: Path):
    old = write_config(tmp_path / "old", BASE)
    new = write_config(tmp_path / "new", BASE.replace("clear: 40}", "clear: 40, for: 20s}"))
    lines = [raw(m) for m in msgs([30, 50, 30, 30, 50, 50, 50, 50, 30])]
    data = tmp_path / "kpis.jsonl"
    data.write_bytes(b"\n".join([*lines[:3], b"{not json", *lines[3:]]) + b"\n")
    out, png = tmp_path / "out.json", tmp_path / "out.png"
    done = run_cli(
        "--against", str(old), "--config", str(new), "--input", str(data),
        "--json", str(out), "--plot", str(png),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = orjson.loads(out.read_bytes())
    assert report["samples"] == 9 and report["skipped"] == 1
    (r,) = report["rules"]
    assert (r["old"]["alerts"]["warning"], r["new"]["alerts"]["warning"]) == (2, 1)
    assert f"{data}:4: skipped: not valid JSON" in done.stderr
    assert "acme/s1/temp_c" in done.stdout and "1 differ" in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a time window in event time: only the first three samples (the spike)
    done = run_cli(
        "--against", str(old), "--config", str(new), "--input", str(data), "--json", "-",
        "--from", "2026-11-30T08:00:00Z", "--to", "2026-11-30T08:00:20Z",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    windowed = orjson.loads(done.stdout)
    assert windowed["samples"] == 3
    assert windowed["rules"][0]["old"]["alerts"]["warning"] == 1


def test_cli_refuses_a_bad_proposed_config_naming_file_rule_and_field(tmp_path: Path):
    old = write_config(tmp_path / "old", BASE)
    new = write_config(tmp_path / "new", BASE.replace("warning: 45", "warning: hot"))
    data = tmp_path / "kpis.jsonl"
    data.write_bytes(raw(msgs([30])[0]) + b"\n")
    done = run_cli("--against", str(old), "--config", str(new), "--input", str(data))
    assert done.returncode == 1
    assert f"{new / 'thresholds.yaml'}:2" in done.stderr
    assert "temp_c" in done.stderr and "warning" in done.stderr and "'hot'" in done.stderr
    ok = run_cli("--against", str(old), "--config", str(old), "--input", str(data))
    assert ok.returncode == 0 and "0 differ" in ok.stdout


async def test_backtest_of_the_real_topic_leaves_the_live_daemon_untouched(
    tmp_path: Path, broker, daemon, base_url, produce, token, config_dir
):
    tenant = new_tenant()
    values = [30, 50, 30, 30, 50, 50, 50, 50, 30, 30]
    for i, v in enumerate(values):
        ts = (T0 + timedelta(seconds=10 * i)).isoformat().replace("+00:00", "Z")
        await produce(TOPIC_KPIS, envelope(tenant, {"temp_c": v}, "bt-site", ts))
    headers = {"Authorization": f"Bearer {token(tenant)}"}

    async def history() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http:
            url = f"{base_url}/api/v1/notifications?limit=1000"
            async with http.get(url, headers=headers) as resp:
                return (await resp.json())["notifications"]

    async def consumed() -> list[dict[str, Any]] | None:
        found = await history()
        return found if sum(n["type"] == "kpi_update" for n in found) == len(values) else None

    # the positive twin: the daemon consumed the series and alerted live
    before = await eventually(consumed, timeout=20)
    slower = TEST_THRESHOLDS.replace("clear: 40", "clear: 40\n    for: 20s")
    new = write_config(tmp_path / "new", slower)
    done = run_cli(
        "--against", str(config_dir), "--config", str(new), "--kafka-bootstrap", broker,
        "--tenant", tenant, "--from", "2026-11-30T00:00:00Z", "--json", "-",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["samples"] == len(values)
    (r,) = report["rules"]
    assert (r["site_id"], r["kpi"]) == ("bt-site", "temp_c")
    assert r["old"]["alerts"]["warning"] == 2 and r["new"]["alerts"]["warning"] == 1
    live = [b for n in before for b in n.get("threshold_breach") or [] if b["level"] == "warning"]
    assert len(live) == r["old"]["alerts"]["warning"]  # the replay agrees with the live run
    after = await history()
    assert [n["id"] for n in after] == [n["id"] for n in before]  # nothing emitted or stored
