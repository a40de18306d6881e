"""The operator config directory, in one place: which files it holds, how each is loaded
and summed up, where it is (`NOTIFY_CONFIG_DIR`, `./config`, or the examples shipped in
the package). `check-config`, the daemon's start and every reload read it through
`load_config` / `check_dir`, so adding a config file is one row of `FILES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from escalation.config import ESCALATION_FILE, load_policies
from escalation.oncall.schedule import ONCALL_FILE, Schedules, load_schedules
from escalation.policy import Policy
from notify_core.config_yaml import ConfigInvalid, ConfigProblem
from notify_core.heartbeats.config import HEARTBEATS_FILE, Heartbeats, load_heartbeats
from notify_core.integrations.config import INTEGRATIONS_FILE, Integrations, load_integrations
from notify_core.sites_config import SITES_FILE, Inventory, load_sites
from notify_core.suppression.config import SUPPRESSION_FILE, Suppression, load_suppression
from notify_core.thresholds.rules import THRESHOLDS_FILE, RuleSet
from notify_core.thresholds.rules_file import load_rules

DEFAULT_CONFIG_DIR = Path("config")


@dataclass(frozen=True)
class ConfigSet:
    """Every file of the directory, validated; a missing file is its empty value."""

    rules: RuleSet
    policies: list[Policy] = field(default_factory=list)
    suppression: Suppression = field(default_factory=Suppression)
    integrations: Integrations = field(default_factory=Integrations)
    schedules: Schedules = field(default_factory=Schedules)
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    sites: Inventory = field(default_factory=Inventory)


@dataclass(frozen=True)
class ConfigFile:
    name: str
    attr: str  # the ConfigSet field it fills
    load: Callable[[Path], Any]
    summary: Callable[[Any], str]
    missing: str | None = None  # a missing file is an error for check-config, saying this


def _rules_summary(rules: RuleSet) -> str:
    n = (
        len(rules.defaults)
        + sum(map(len, rules.tenants.values()))
        + sum(map(len, rules.sites.values()))
    )
    return f"{n} rules, {len(rules.tenants)} tenant and {len(rules.sites)} site overrides"


def _suppression_summary(s: Suppression) -> str:
    return f"{len(s.windows)} windows, site-down inhibition {'on' if s.site_down else 'off'}"


FILES = (
    ConfigFile(
        THRESHOLDS_FILE,
        "rules",
        load_rules,
        _rules_summary,
        missing="missing (every KPI would pass through unevaluated)",
    ),
    ConfigFile(ESCALATION_FILE, "policies", load_policies, lambda p: f"{len(p)} policies"),
    ConfigFile(SUPPRESSION_FILE, "suppression", load_suppression, _suppression_summary),
    ConfigFile(
        INTEGRATIONS_FILE, "integrations", load_integrations, lambda i: f"{len(i)} integrations"
    ),
    ConfigFile(ONCALL_FILE, "schedules", load_schedules, lambda s: f"{len(s)} schedules"),
    ConfigFile(HEARTBEATS_FILE, "heartbeats", load_heartbeats, lambda h: f"{len(h)} heartbeats"),
    ConfigFile(SITES_FILE, "sites", load_sites, lambda s: f"{len(s)} sites"),
)
WATCHED = tuple(f.name for f in FILES)


def load_config(config_dir: Path) -> ConfigSet:
    """Every file, validated (a missing one is empty); raises ConfigInvalid naming every
    problem of every file. Nothing is swapped by the caller until this returned."""
    problems: list[ConfigProblem] = []
    loaded = ConfigSet(rules=RuleSet(source=str(config_dir / THRESHOLDS_FILE)))
    for spec in FILES:
        path = config_dir / spec.name
        if not path.exists():
            continue
        try:
            loaded = replace(loaded, **{spec.attr: spec.load(path)})
        except ConfigInvalid as exc:
            problems += exc.problems
    if problems:
        raise ConfigInvalid(problems)
    return loaded


def check_dir(config_dir: Path) -> tuple[bool, dict[str, list[str]]]:
    """Validate every known file; returns (ok, {"ok": [...], "errors": [...]})."""
    report: dict[str, list[str]] = {"ok": [], "errors": []}
    if not config_dir.is_dir():
        report["errors"].append(f"{config_dir}: not a directory")
        return False, report
    for spec in FILES:
        path = config_dir / spec.name
        if not path.exists():
            if spec.missing:
                report["errors"].append(f"{path}: {spec.missing}")
            continue
        try:
            report["ok"].append(f"{path}: OK ({spec.summary(spec.load(path))})")
        except ConfigInvalid as exc:
            report["errors"].extend(str(p) for p in exc.problems)
    return not report["errors"], report


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
