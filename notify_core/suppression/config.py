"""Load and validate `suppression.yaml`: maintenance windows (one-time or recurring) and
inhibition rules; every error names file, line, window/rule and field, as the other
config files do (`notify_core.thresholds.rules.ConfigProblem`).

```yaml
windows:
  - name: nightly-works          # one id per window
    tenant: acme
    sites: [acme-site-0001]
    days: [mon, tue, wed]        # omit: every day
    from: "22:00"
    to: "02:00"                  # before `from`: crosses midnight
    timezone: Africa/Lagos
  - name: tower-repaint
    tenant: acme
    sites: [acme-site-0042]
    starts: 2026-12-05T08:00:00Z
    ends: 2026-12-05T17:00:00Z
inhibit:
  site_down: true   # a site `down` mutes its threshold alerts and non-critical incidents
  topology: {window: 5m}   # sites.yaml dependents of a `down` site: one page, not one each
```
"""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from notify_core.config_yaml import (
    ConfigInvalid,
    ConfigProblem,
    parse_yaml,
    read_text,
    validation_problems,
)
from notify_core.suppression.policy import DAYS, Window
from notify_core.thresholds.rules import parse_duration
from notify_core.wire.events import Ident

SUPPRESSION_FILE = "suppression.yaml"


class WindowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: Ident
    tenant: Ident
    sites: list[Ident] = Field(min_length=1)
    starts: datetime | None = None
    ends: datetime | None = None
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=list
    )
    from_: time | None = Field(default=None, alias="from")
    to: time | None = None
    timezone: str = "UTC"
    reason: str = ""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone (got {value!r})") from None
        return value

    @model_validator(mode="after")
    def _kind(self) -> WindowSpec:
        one_time = self.starts is not None or self.ends is not None
        recurring = self.from_ is not None or self.to is not None or bool(self.days)
        if one_time == recurring:
            raise ValueError("give either starts and ends, or from and to (with days)")
        if one_time and (self.starts is None or self.ends is None or self.ends <= self.starts):
            raise ValueError("starts and ends both, ends after starts")
        if recurring and (self.from_ is None or self.to is None or self.from_ == self.to):
            raise ValueError("from and to both, and not the same time")
        return self

    def window(self) -> Window:
        return Window(
            id=self.name,
            tenant_id=self.tenant,
            site_ids=frozenset(self.sites),
            starts_at=self.starts.timestamp() if self.starts else None,
            ends_at=self.ends.timestamp() if self.ends else None,
            days=tuple(d for d in DAYS if d in self.days),
            start=self.from_,
            end=self.to,
            timezone=self.timezone,
            reason=self.reason,
        )


class TopologySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: float = 300.0

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class InhibitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_down: bool = True
    topology: TopologySpec = Field(default_factory=TopologySpec)


class Suppression(NamedTuple):
    """What the file holds, validated."""

    windows: tuple[Window, ...] = ()
    site_down: bool = True
    topology_window: float = 300.0  # s: incidents opened this long before a parent went
    # down (or later) are its consequence


def _problem(file: str, line: int | None, what: str, field: str, message: str) -> ConfigProblem:
    return ConfigProblem(file, line, what, field, message, kind="window")


def load_suppression(path: Path) -> Suppression:
    return parse_suppression(read_text(path, "window"), str(path))


def parse_suppression(text: str, name: str = SUPPRESSION_FILE) -> Suppression:
    parsed = parse_yaml(text, name, "window", ("version", "windows", "inhibit"), "a mapping")
    data, lines, problems = parsed.data, parsed.lines, parsed.problems
    windows: list[Window] = []
    seen: set[str] = set()
    raw = data.get("windows") or []
    if not isinstance(raw, list):
        raw, problems = (
            [],
            [*problems, _problem(name, lines.line(("windows",)), "-", "windows", "must be a list")],
        )
    for i, item in enumerate(raw):
        label = (
            str(item.get("name", f"windows[{i}]")) if isinstance(item, dict) else f"windows[{i}]"
        )
        try:
            spec = WindowSpec.model_validate(item)
        except ValidationError as exc:
            problems += validation_problems(
                exc, name, lines, ("windows", i), label, "window", {"from_": "from"}
            )
            continue
        if spec.name in seen:
            problems.append(
                _problem(
                    name, lines.line(("windows", i, "name")), spec.name, "name", "duplicate window"
                )
            )
            continue
        seen.add(spec.name)
        windows.append(spec.window())
    inhibit = InhibitSpec()
    try:
        inhibit = InhibitSpec.model_validate(data.get("inhibit") or {})
    except ValidationError as exc:
        problems += validation_problems(exc, name, lines, ("inhibit",), "inhibit", "rule")
    if problems:
        raise ConfigInvalid(problems)
    return Suppression(tuple(windows), inhibit.site_down, inhibit.topology.window)
