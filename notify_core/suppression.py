"""Is this incident quiet now, why, and until when: one pure function of state and `now`.

Three kinds of reason, Alertmanager's and Zabbix's, in this order:

- **maintenance** of its site: the site's last status is `maintenance` (until a later
  status that is not), or a maintenance window covers now (one-time `starts`/`ends`, or
  recurring daily/weekly `from`-`to` in a time zone, crossing midnight allowed);
- **silence**: every matcher of a silence (`site_id`, `kpi`, `severity`, `incident_id`,
  `source`) equals the incident's, between its `starts_at` and `ends_at`;
- **inhibition**: the shipped rule, a site whose status is `down` inhibits its threshold
  alerts and its non-critical incidents (critical ones still page).

A suppressed incident is still stored, delivered and listed (`suppressed: {by, id, until}`);
only pages stop. `until` is when the reason ends if known (a window's or silence's end),
else null (a status: until the site reports otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Notice(NamedTuple):
    """What the muter knows of an incident."""

    tenant_id: str
    incident_id: str
    site_id: str | None
    severity: str
    kpi: str | None = None
    source: str | None = None  # "threshold" for alerts raised by a KPI rule


class Window(NamedTuple):
    """Maintenance of `site_ids`: one-time (`starts_at`..`ends_at`, unix s) or recurring
    (`days` of the week, `start`..`end` wall-clock in `timezone`; `end` <= `start` crosses
    midnight into the next day)."""

    id: str
    tenant_id: str
    site_ids: frozenset[str]
    starts_at: float | None = None
    ends_at: float | None = None
    days: tuple[str, ...] = ()  # empty with start/end: every day
    start: time | None = None
    end: time | None = None
    timezone: str = "UTC"
    reason: str = ""

    def active_until(self, now: float) -> float | None:
        """The end of the occurrence covering `now`, None when none does."""
        if self.start is None or self.end is None:
            if self.starts_at is not None and self.ends_at is not None:
                return self.ends_at if self.starts_at <= now < self.ends_at else None
            return None
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(now, zone)
        # an occurrence starting today or (crossing midnight) yesterday may cover now
        for back in (0, 1):
            day = local.date() - timedelta(days=back)
            if self.days and DAYS[day.weekday()] not in self.days:
                continue
            begin = datetime.combine(day, self.start, zone)
            end_day = day + timedelta(days=1) if self.end <= self.start else day
            finish = datetime.combine(end_day, self.end, zone)
            # wall-clock times, taken through the zone: a DST change moves them with it
            begin_ts = begin.astimezone(UTC).timestamp()
            finish_ts = finish.astimezone(UTC).timestamp()
            if begin_ts <= now < finish_ts:
                return finish_ts
        return None


class Silence(NamedTuple):
    id: str
    tenant_id: str
    matchers: dict[str, str]  # of site_id, kpi, severity, incident_id, source
    starts_at: float
    ends_at: float
    comment: str = ""
    by: str = ""

    def matches(self, n: Notice, now: float) -> bool:
        if not self.starts_at <= now < self.ends_at or n.tenant_id != self.tenant_id:
            return False
        return all(getattr(n, field, None) == value for field, value in self.matchers.items())


class Muted(NamedTuple):
    by: Literal["maintenance", "silence", "inhibition"]
    id: str
    until: float | None

    def view(self) -> dict[str, Any]:
        until = (
            datetime.fromtimestamp(self.until, UTC).isoformat().replace("+00:00", "Z")
            if self.until is not None
            else None
        )
        return {"by": self.by, "id": self.id, "until": until}


class State(NamedTuple):
    """What suppression is decided from: site statuses, windows, silences (of one tenant
    or all; `mutes` filters by the notice's tenant)."""

    site_status: dict[tuple[str, str], str]
    windows: tuple[Window, ...] = ()
    silences: tuple[Silence, ...] = ()
    site_down: bool = True  # the shipped inhibition rule (suppression.yaml `inhibit`)


def mutes(n: Notice, state: State, now: float) -> Muted | None:
    """Why `n` is quiet at `now` (the first reason, in the module doc's order), or None."""
    site = n.site_id
    status = state.site_status.get((n.tenant_id, site)) if site else None
    if site is not None:
        if status == "maintenance":
            return Muted("maintenance", f"status:{site}", None)
        ends = [
            (until, w.id)
            for w in state.windows
            if w.tenant_id == n.tenant_id
            and site in w.site_ids
            and (until := w.active_until(now)) is not None
        ]
        if ends:
            until, ident = max(ends)  # overlapping windows: quiet until the last ends
            return Muted("maintenance", ident, until)
    found = [s for s in state.silences if s.matches(n, now)]
    if found:
        latest = max(found, key=lambda s: s.ends_at)
        return Muted("silence", latest.id, latest.ends_at)
    if (
        state.site_down
        and status == "down"
        and (n.source == "threshold" or n.severity != "critical")
    ):
        return Muted("inhibition", f"site-down:{site}", None)
    return None
