"""thresholds.yaml validation: every error at once, naming file, line, rule and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from notify_core.config_yaml import ConfigInvalid
from notify_core.thresholds.rules_file import load_rules, parse_rules

ROOT = Path(__file__).resolve().parent.parent

BROKEN = """\
version: 1
kpis:
  temp:
    direction: above
    warning: 60
    critical: 55
  loss:
    direction: above
    warning: 2
    clear: 3
  rssi:
    direction: sideways
    warning: -90
  volts:
    direction: below
    warning: 48
    for: -5s
    colour: red
  avail:
    direction: below
    critical: 95
    stale_after: soon
overrides:
  - tenant: acme
    kpis:
      temp: {warning: 40, critical: 30}
  - tenant: acme
    kpis:
      loss: {warning: 1}
  - tenant: "bad:tenant"
    kpis: {}
"""


def test_all_errors_reported_with_file_line_rule_field():
    with pytest.raises(ConfigInvalid) as info:
        parse_rules(BROKEN, "config/thresholds.yaml")
    text = [str(p) for p in info.value.problems]
    expect = [
        "config/thresholds.yaml:5: rule temp: warning: warning (60.0) is above critical (55.0)",
        "config/thresholds.yaml:10: rule loss: clear: clear (3.0) must be at or below",
        "config/thresholds.yaml:12: rule rssi: direction: Input should be 'above' or 'below'",
        "config/thresholds.yaml:17: rule volts: for: must not be negative (got '-5s')",
        "config/thresholds.yaml:18: rule volts: colour: unknown field",
        "config/thresholds.yaml:22: rule avail: stale_after: not a duration: 'soon'",
        "config/thresholds.yaml:26: rule acme/temp: warning: warning (40.0) is above critical",
        "config/thresholds.yaml:27: rule acme: tenant/site: duplicate override (first at line 24)",
        "config/thresholds.yaml:30: rule overrides[2]: tenant: must be a tenant id",
    ]
    for needle in expect:
        assert any(needle in line for line in text), f"missing: {needle}\n" + "\n".join(text)


def test_duplicate_keys_are_errors_not_silently_last_wins():
    with pytest.raises(ConfigInvalid) as info:
        parse_rules(
            "kpis:\n  temp: {direction: above, warning: 1}\n"
            "  temp: {direction: above, warning: 2}\n",
            "t.yaml",
        )
    assert "t.yaml:3: rule kpis/temp: temp: duplicate key" in str(info.value)


def test_invalid_yaml_names_the_line():
    with pytest.raises(ConfigInvalid) as info:
        parse_rules("kpis:\n  temp: [unclosed\n", "t.yaml")
    assert "t.yaml:" in str(info.value) and "invalid YAML" in str(info.value)


def test_shipped_example_is_valid():
    rules = load_rules(ROOT / "config" / "thresholds.yaml")
    assert rules.effective("acme", "x", "temperature_c").critical == 60  # type: ignore[union-attr]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "towerco_notify.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_check_config_cli(tmp_path):
    ok = cli("check-config", str(ROOT / "config"))
    assert ok.returncode == 0, ok.stderr
    assert "thresholds.yaml: OK" in ok.stdout
    (tmp_path / "thresholds.yaml").write_text(BROKEN)
    bad = cli("check-config", str(tmp_path))
    assert bad.returncode == 1
    assert bad.stderr.count("thresholds.yaml:") >= 9
    assert "9 error" in bad.stderr or "errors" in bad.stderr


def test_check_config_missing_dir_is_an_error(tmp_path):
    res = cli("check-config", str(tmp_path / "nope"))
    assert res.returncode == 1 and "nope" in res.stderr


def test_explain_cli():
    res = cli(
        "explain",
        "--config-dir",
        str(ROOT / "config"),
        "--tenant",
        "acme",
        "--site",
        "acme-site-0001",
        "--kpi",
        "temperature_c",
        "--value",
        "57",
    )
    assert res.returncode == 0, res.stderr
    assert "rule acme/temperature_c" in res.stdout
    assert "warning" in res.stdout and "57" in res.stdout
    none = cli(
        "explain",
        "--config-dir",
        str(ROOT / "config"),
        "--tenant",
        "acme",
        "--kpi",
        "unknown_kpi",
        "--value",
        "1",
    )
    assert none.returncode == 0 and "no rule" in none.stdout
