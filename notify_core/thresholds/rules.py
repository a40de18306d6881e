"""Threshold rules, the model: a rule's fields, a complete `Rule`, and the `RuleSet` that
resolves the effective one for (tenant, site, KPI).

Defaults, then per-tenant overrides, then per-site overrides; the most specific wins and
an override may change any field. Reading `thresholds.yaml` is `notify_core.thresholds.rules_file`;
the rules in force, swapped on reload, are a view of `notify_core.in_force`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

THRESHOLDS_FILE = "thresholds.yaml"
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`30s`, `2m`, `1.5h`, `500ms` or a number of seconds; negative is an error."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"must not be negative (got {value!r})")
    return seconds


class RuleFields(BaseModel):
    """Every field optional: what a default or an override sets."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    direction: Literal["above", "below"] | None = None
    warning: float | None = None
    critical: float | None = None
    clear: float | None = None
    for_: float | None = Field(default=None, alias="for")
    keep_firing_for: float | None = None
    stale_after: float | None = None
    unit: str | None = None
    description: str | None = None

    @field_validator("for_", "keep_firing_for", "stale_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @field_validator("warning", "critical", "clear", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
            raise ValueError(f"must be a number (got {value!r})")
        return value

    def set_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True, slots=True)
class Rule:
    """An effective, complete rule for one (tenant, site, KPI)."""

    rule_id: str
    kpi: str
    direction: Literal["above", "below"]
    warning: float | None
    critical: float | None
    clear: float
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    stale_after_s: float | None = None
    unit: str = ""
    description: str = ""

    def crosses(self, value: float, level: float | None) -> bool:
        if level is None:
            return False
        return value >= level if self.direction == "above" else value <= level

    def past_clear(self, value: float) -> bool:
        return value < self.clear if self.direction == "above" else value > self.clear

    def level_of(self, value: float) -> Literal["critical", "warning"] | None:
        if self.crosses(value, self.critical):
            return "critical"
        if self.crosses(value, self.warning):
            return "warning"
        return None

    def threshold(self, level: str) -> float | None:
        return self.critical if level == "critical" else self.warning

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "kpi": self.kpi,
            "direction": self.direction,
            "warning": self.warning,
            "critical": self.critical,
            "clear": self.clear,
            "for": self.for_s,
            "keep_firing_for": self.keep_firing_for_s,
            "stale_after": self.stale_after_s,
            "unit": self.unit,
            "description": self.description,
        }


def complete(
    kpi: str, rule_id: str, fields: dict[str, Any]
) -> tuple[Rule | None, list[tuple[str, str]]]:
    """Merged fields -> Rule, or the (field, message) problems that prevent it."""
    problems: list[tuple[str, str]] = []
    direction = fields.get("direction")
    warning, critical = fields.get("warning"), fields.get("critical")
    if direction is None:
        problems.append(("direction", "required: 'above' or 'below'"))
    if warning is None and critical is None:
        problems.append(("warning", "at least one of warning or critical is required"))
    if problems:
        return None, problems
    above = direction == "above"
    if warning is not None and critical is not None:
        if above and warning > critical:
            problems.append(
                (
                    "warning",
                    f"warning ({warning}) is above critical ({critical}) for an 'above' rule",
                )
            )
        if not above and warning < critical:
            problems.append(
                (
                    "warning",
                    f"warning ({warning}) is below critical ({critical}) for a 'below' rule",
                )
            )
    first = warning if warning is not None else critical
    assert first is not None
    clear = fields.get("clear", first)
    if above and clear > first:
        problems.append(
            (
                "clear",
                f"clear ({clear}) must be at or below the first alert level "
                f"({first}) for an 'above' rule",
            )
        )
    if not above and clear < first:
        problems.append(
            (
                "clear",
                f"clear ({clear}) must be at or above the first alert level "
                f"({first}) for a 'below' rule",
            )
        )
    if problems:
        return None, problems
    return Rule(
        rule_id=rule_id,
        kpi=kpi,
        direction="above" if above else "below",
        warning=warning,
        critical=critical,
        clear=clear,
        for_s=fields.get("for_", 0.0),
        keep_firing_for_s=fields.get("keep_firing_for", 0.0),
        stale_after_s=fields.get("stale_after"),
        unit=fields.get("unit", ""),
        description=fields.get("description", ""),
    ), []


@dataclass
class RuleSet:
    """Validated rules; `effective()` resolves defaults -> tenant -> site."""

    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    tenants: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    sites: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    source: str = ""
    _cache: dict[tuple[str, str | None, str], Rule | None] = field(default_factory=dict)

    def effective(self, tenant: str, site: str | None, kpi: str) -> Rule | None:
        key = (tenant, site, kpi)
        if key in self._cache:
            return self._cache[key]
        merged: dict[str, Any] = {}
        rule_id = None
        for scope_id, layer in (
            (kpi, self.defaults.get(kpi)),
            (f"{tenant}/{kpi}", self.tenants.get(tenant, {}).get(kpi)),
            (f"{tenant}/{site}/{kpi}", self.sites.get((tenant, site or ""), {}).get(kpi)),
        ):
            if layer:
                merged.update(layer)
                rule_id = scope_id
        rule = complete(kpi, rule_id, merged)[0] if rule_id else None
        if len(self._cache) < 100_000:
            self._cache[key] = rule
        return rule

    def kpis_for(self, tenant: str) -> set[str]:
        names = set(self.defaults) | set(self.tenants.get(tenant, {}))
        for (t, _), kpis in self.sites.items():
            if t == tenant:
                names |= set(kpis)
        return names

    def describe(self, tenant: str) -> dict[str, Any]:
        """Effective rules of one tenant: tenant-wide, then each overridden site."""
        out: dict[str, Any] = {"tenant": {}, "sites": {}}
        for kpi in sorted(set(self.defaults) | set(self.tenants.get(tenant, {}))):
            rule = self.effective(tenant, None, kpi)
            if rule:
                out["tenant"][kpi] = rule.as_dict()
        for (t, site), kpis in sorted(self.sites.items()):
            if t != tenant:
                continue
            out["sites"][site] = {}
            for kpi in sorted(self.kpis_for(tenant)):
                rule = self.effective(tenant, site, kpi)
                if rule and (kpi in kpis):
                    out["sites"][site][kpi] = rule.as_dict()
        return out
