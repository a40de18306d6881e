"""The schedules of `oncall.yaml`, validated: layers of users taking turns in shifts whose
boundaries are wall-clock times in the schedule's IANA timezone.

```yaml
version: 1
schedules:
  - name: north-field          # unique per tenant
    tenant: acme
    timezone: Africa/Nairobi
    covers: {regions: [north], sites: [s-17]}   # whose incidents `site_oncall` pages
    layers:                    # lowest first; the highest layer with someone wins
      - name: weekdays
        users: [amina, brian, chen]
        shift: 1d              # 1h..; days and weeks are calendar days in `timezone`
        start: 2026-12-07T08:00
        only: {days: [mon, tue, wed, thu, fri], from: "08:00", to: "20:00"}
```

Errors name file, line, schedule and field, as the other config files do. Who is on call
is computed from these by `escalation.oncall.rotation` (pure).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from notify_core.config_yaml import parse_items, read_text
from notify_core.thresholds.rules import parse_duration
from notify_core.wire.events import Ident

ONCALL_FILE = "oncall.yaml"
KIND = "schedule"
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hhmm(value: Any) -> time:
    if isinstance(value, int) and 0 <= value < 24 * 60 * 60:  # YAML 1.1 reads 08:00 as 480
        return time(value // 3600 % 24, value // 60 % 60)
    text = str(value)
    try:
        parsed = time.fromisoformat(text)
    except ValueError:
        raise ValueError(f'not a time of day (got {text!r}; write "08:00")') from None
    if parsed.second or parsed.microsecond or parsed.tzinfo:
        raise ValueError(f'hours and minutes only (got {text!r}; write "08:00")')
    return parsed


class Only(BaseModel):
    """The days and hours a layer is in force; `to` before `from` crosses midnight (the
    window belongs to the day it starts on); `from` equal to `to` is 24 hours from `from`
    (the whole day when both are 00:00, the default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    days: tuple[Day, ...] = DAYS
    from_: time = Field(default=time(0), alias="from")
    to: time = time(0)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _time(cls, value: Any) -> time:
        return _hhmm(value)

    @field_validator("days")
    @classmethod
    def _some(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one day")
        return value


class Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Ident
    users: tuple[Ident, ...] = Field(min_length=1)
    shift: timedelta
    start: datetime  # naive: a wall time in the schedule's timezone
    only: Only | None = None

    @field_validator("shift", mode="before")
    @classmethod
    def _shift(cls, value: Any) -> timedelta:
        seconds = parse_duration(value)
        if seconds < 3600 or seconds % 60:
            raise ValueError(f"a shift lasts at least 1h, in whole minutes (got {value!r})")
        return timedelta(seconds=seconds)

    @field_validator("start", mode="before")
    @classmethod
    def _wall(cls, value: Any) -> datetime:
        parsed = value if isinstance(value, datetime) else None
        if parsed is None:
            try:
                parsed = datetime.fromisoformat(str(value))
            except ValueError:
                raise ValueError(
                    f"not a local date and time (got {value!r}; write 2026-12-07T08:00)"
                ) from None
        if parsed.tzinfo is not None:
            raise ValueError(
                f"a wall time in the schedule's timezone, without an offset (got {value!r})"
            )
        return parsed


class Covers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    regions: tuple[Ident, ...] = ()
    sites: tuple[Ident, ...] = ()


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    name: Ident
    tenant: Ident
    timezone: str
    covers: Covers | None = None
    layers: tuple[Layer, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"not an IANA timezone (got {value!r}; e.g. Africa/Nairobi)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # cached by zoneinfo itself

    @property
    def users(self) -> set[str]:
        return {u for layer in self.layers for u in layer.users}


class Schedules(dict[tuple[str, str], Schedule]):
    """The file's schedules by (tenant, name) (an empty one when there is no file)."""

    def of_tenant(self, tenant: str) -> list[Schedule]:
        return [s for (t, _), s in self.items() if t == tenant]

    def covering(self, tenant: str, site: str | None, region: str | None) -> list[Schedule]:
        """The schedules whose `covers` holds `site` (or its `region`)."""
        out = []
        for schedule in self.of_tenant(tenant):
            covers = schedule.covers
            if covers is None:
                continue
            if (site is not None and site in covers.sites) or (
                region is not None and region in covers.regions
            ):
                out.append(schedule)
        return out


def load_schedules(path: Path) -> Schedules:
    return parse_schedules(read_text(path, KIND), str(path))


def _layer_names(spec: Schedule) -> list[tuple[str, str]]:
    names = [layer.name for layer in spec.layers]
    return [
        (f"layers.{j}.name", "duplicate layer name")
        for j, layer_name in enumerate(names)
        if layer_name in names[:j]
    ]


def parse_schedules(text: str, name: str = ONCALL_FILE) -> Schedules:
    items = parse_items(
        text,
        name,
        KIND,
        "schedules",
        Schedule,
        lambda s: (s.tenant, s.name),
        _layer_names,
        {"from_": "from"},
    )
    return Schedules(((s.tenant, s.name), s) for s in items)
