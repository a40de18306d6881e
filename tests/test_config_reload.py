"""suppression.yaml and escalation.yaml: validated with file, line and field, and reloaded
on change like thresholds.yaml (an invalid edit refused, what is in force stays)."""

from __future__ import annotations

import asyncio

import pytest

from notify_core.config_yaml import ConfigInvalid
from notify_core.suppression.config import parse_suppression
from notify_core.suppression.policy import Notice, State, mutes
from notify_core.wire.events import TOPIC_ALERTS
from tests.conftest import eventually
from tests.helpers import NodeClient, alert, new_tenant
from towerco_notify.config_files import check_dir

GOOD = """\
windows:
  - name: nightly
    tenant: acme
    sites: [s1, s2]
    days: [mon, tue]
    from: "22:00"
    to: "02:00"
    timezone: Africa/Lagos
  - name: repaint
    tenant: acme
    sites: [s3]
    starts: 2026-12-05T08:00:00Z
    ends: 2026-12-05T17:00:00Z
inhibit:
  site_down: false
"""


def test_windows_and_inhibition_from_the_file():
    sup = parse_suppression(GOOD)
    assert [w.id for w in sup.windows] == ["nightly", "repaint"] and sup.site_down is False
    repaint = sup.windows[1]
    noon = repaint.starts_at + 3600
    state = State({("acme", "s3"): "down"}, sup.windows, (), sup.site_down)
    assert mutes(Notice("acme", "I", "s3", "major"), state, noon).id == "repaint"
    assert mutes(Notice("acme", "I", "s3", "major"), state, repaint.ends_at + 1) is None, (
        "site-down inhibition switched off"
    )


def test_every_error_names_file_line_window_and_field():
    bad = """\
windows:
  - name: w1
    tenant: acme
    sites: []
    from: "22:00"
  - name: w2
    tenant: acme
    sites: [s1]
    starts: 2026-12-05T08:00:00Z
    ends: 2026-12-05T07:00:00Z
    timezone: Mars/Olympus
oops: 1
"""
    with pytest.raises(ConfigInvalid) as info:
        parse_suppression(bad, "config/suppression.yaml")
    text = str(info.value)
    assert "config/suppression.yaml:12: window -: oops: unknown key" in text
    assert "config/suppression.yaml:4: window w1: sites:" in text
    assert "window w2: timezone: unknown time zone (got 'Mars/Olympus')" in text


def test_check_config_validates_all_three(tmp_path):
    (tmp_path / "thresholds.yaml").write_text("kpis: {}\n")
    (tmp_path / "suppression.yaml").write_text(GOOD)
    ok, report = check_dir(tmp_path)
    assert ok and any("2 windows" in line for line in report["ok"])
    (tmp_path / "suppression.yaml").write_text("windows: [{name: x}]\n")
    ok, report = check_dir(tmp_path)
    assert not ok and all("suppression.yaml" in e for e in report["errors"])


async def test_a_policy_added_by_editing_escalation_yaml_pages(
    daemon, config_dir, base_url, produce, token
):
    path = config_dir / "escalation.yaml"
    original = path.read_text()
    tenant = new_tenant()
    oncall = await NodeClient.start(base_url, token(tenant, "oc", ["oncall"]), ["websocket"])
    try:
        await oncall.connected()
        added = (
            original
            + """\
  - name: added-live
    match: {severities: [major], sites: [new-site]}
    levels:
      - wait: 500ms
        targets: [{oncall: true}]
"""
        )
        path.write_text(added)
        await eventually(
            lambda: any(p.name == "added-live" for p in daemon.escalation.policies()), 15
        )
        await produce(TOPIC_ALERTS, alert(tenant, "NEW-1", "major", site="new-site"))
        page = await oncall.wait_for(lambda m: m.get("name") == "escalation", 10)
        assert page["data"]["policy"] == "added-live"
        path.write_text(added + "  - name: broken\n    levels: []\n")  # an invalid edit
        await eventually(lambda: daemon.rules.last_error is not None, 15)
        assert "escalation.yaml" in daemon.rules.last_error
        assert any(p.name == "added-live" for p in daemon.escalation.policies()), "old ones stay"

        async def reloads() -> list[str]:
            records, _ = await daemon.audit.copy.read("-", None, 1000, "config_reload")
            return [r["result"] for r in records if r["source"] == "config"]

        async def both() -> bool:
            results = await reloads()
            return "ok" in results and "refused" in results

        await eventually(both, 10)  # each reload, good or refused, is in the audit trail
    finally:
        path.write_text(original)
        await eventually(lambda: daemon.rules.last_error is None, 15)
        await oncall.close()
        await asyncio.sleep(0)
