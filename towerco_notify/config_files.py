"""Offline validation of everything in the config directory (`check-config`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from escalation.config import ESCALATION_FILE, load_policies
from notify_core.config_yaml import ConfigInvalid
from notify_core.rules import THRESHOLDS_FILE
from notify_core.rules_file import load_rules
from notify_core.suppression_config import SUPPRESSION_FILE, load_suppression

DEFAULT_CONFIG_DIR = Path("config")


def shipped_config_dir() -> Path:
    """The commented example configuration that ships inside the package (the checkout's
    `config/`, installed as `towerco_notify.example_config`)."""
    return Path(str(resources.files("towerco_notify") / "example_config"))


def effective_config_dir(configured: Path, explicit: bool) -> Path:
    """The directory to read: what the operator named (`NOTIFY_CONFIG_DIR` / `--config-dir`)
    always; otherwise `./config` when it exists, else the shipped examples, so an installed
    daemon started in an empty directory runs on the documented defaults."""
    if explicit or configured != DEFAULT_CONFIG_DIR or configured.is_dir():
        return configured
    return shipped_config_dir()


def check_dir(config_dir: Path) -> tuple[bool, dict[str, list[str]]]:
    """Validate every known file; returns (ok, {"ok": [...], "errors": [...]})."""
    report: dict[str, list[str]] = {"ok": [], "errors": []}
    if not config_dir.is_dir():
        report["errors"].append(f"{config_dir}: not a directory")
        return False, report
    path = config_dir / THRESHOLDS_FILE
    if not path.exists():
        report["errors"].append(f"{path}: missing (every KPI would pass through unevaluated)")
    else:
        try:
            rules = load_rules(path)
            n = (
                len(rules.defaults)
                + sum(map(len, rules.tenants.values()))
                + sum(map(len, rules.sites.values()))
            )
            report["ok"].append(
                f"{path}: OK ({n} rules, {len(rules.tenants)} tenant and "
                f"{len(rules.sites)} site overrides)"
            )
        except ConfigInvalid as exc:
            report["errors"].extend(str(p) for p in exc.problems)
    esc = config_dir / ESCALATION_FILE
    if esc.exists():
        try:
            policies = load_policies(esc)
            report["ok"].append(f"{esc}: OK ({len(policies)} policies)")
        except ConfigInvalid as exc:
            report["errors"].extend(str(p) for p in exc.problems)
    sup = config_dir / SUPPRESSION_FILE
    if sup.exists():
        try:
            suppression = load_suppression(sup)
            state = "on" if suppression.site_down else "off"
            report["ok"].append(
                f"{sup}: OK ({len(suppression.windows)} windows, site-down inhibition {state})"
            )
        except ConfigInvalid as exc:
            report["errors"].extend(str(p) for p in exc.problems)
    return not report["errors"], report
