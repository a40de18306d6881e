"""Is this incident quiet now, why, and until when: one pure function of state and `now`.

Three kinds of reason, Alertmanager's and Zabbix's, in this order:

- **maintenance** of its site: the site's last status is `maintenance` (until a later
  status that is not), or a maintenance window covers now (one-time `starts`/`ends`, or
  recurring daily/weekly `from`-`to` in a time zone, crossing midnight allowed);
- **silence**: every matcher of a silence (`site_id`, `kpi`, `severity`, `incident_id`,
  `source`) equals the incident's, between its `starts_at` and `ends_at`;
- **inhibition**: the shipped rule, a site whose status is `down` inhibits its threshold
  alerts and its non-critical incidents (critical ones still page);
- **topology**: while a site the incident's site depends on (directly or through others,
  `sites.yaml`) is `down`, an incident opened from `topology_window` before that parent went
  down (or later) is its consequence: `by: "topology"`, `id` the parent (the nearest one
  down), no end time. One page for the hub, none per tower behind it.

A suppressed incident is still stored, delivered and listed (`suppressed: {by, id, until}`);
only pages stop. `until` is when the reason ends if known (a window's or silence's end),
else null (a status: until the site reports otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from notify_core.clock import iso_s

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Notice(NamedTuple):
    """What the muter knows of an incident."""

    tenant_id: str
    incident_id: str
    site_id: str | None
    severity: str
    kpi: str | None = None
    source: str | None = None  # "threshold" for alerts raised by a KPI rule
    opened_at: float | None = None  # unix s; None: now (a new incident)


class Ancestry(Protocol):
    """What topology asks of the site inventory (notify_core/sites_config.Inventory)."""

    def ancestors(self, tenant: str, site: str) -> tuple[str, ...]: ...


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
    by: Literal["maintenance", "silence", "inhibition", "topology"]
    id: str
    until: float | None

    def view(self) -> dict[str, Any]:
        until = iso_s(self.until) if self.until is not None else None
        return {"by": self.by, "id": self.id, "until": until}


def suppression_fields(muted: Muted | None) -> dict[str, Any]:
    """What an incident's event or row says of it: `suppressed` (why quiet, or None),
    and `caused_by` (the parent site) when it is a consequence of a parent's outage."""
    if muted is None:
        return {"suppressed": None}
    out: dict[str, Any] = {"suppressed": muted.view()}
    if muted.by == "topology":
        out["caused_by"] = muted.id
    return out


class State(NamedTuple):
    """What suppression is decided from: site statuses, windows, silences (of one tenant
    or all; `mutes` filters by the notice's tenant)."""

    site_status: dict[tuple[str, str], str]
    windows: tuple[Window, ...] = ()
    silences: tuple[Silence, ...] = ()
    site_down: bool = True  # the shipped inhibition rule (suppression.yaml `inhibit`)
    topology: Ancestry | None = None  # the site inventory's dependencies
    status_since: dict[tuple[str, str], float] | None = None  # when each status began
    topology_window: float = 300.0  # s before a parent went down that still counts


class Index:
    """A `State` arranged for the alert path: windows by (tenant, site), silences by
    (tenant, site matcher) and by tenant, so one decision looks only at what can apply
    (measured: 730 µs -> a few µs with 1 000 windows and 1 000 silences,
    docs/performance.md). Built once per change of windows, silences or config; site
    statuses are read from the state's dict as they are."""

    __slots__ = ("_silences_at", "_silences_for", "_silences_of", "_windows_at", "state")

    def __init__(self, state: State) -> None:
        self.state = state
        self._windows_at: dict[tuple[str, str], list[Window]] = {}
        for w in state.windows:
            for covered in w.site_ids:
                self._windows_at.setdefault((w.tenant_id, covered), []).append(w)
        self._silences_at: dict[tuple[str, str], list[Silence]] = {}
        self._silences_for: dict[tuple[str, str], list[Silence]] = {}  # by incident id
        self._silences_of: dict[str, list[Silence]] = {}  # neither: the tenant's
        for sl in state.silences:
            site, incident = sl.matchers.get("site_id"), sl.matchers.get("incident_id")
            if site is not None:
                self._silences_at.setdefault((sl.tenant_id, site), []).append(sl)
            elif incident is not None:
                self._silences_for.setdefault((sl.tenant_id, incident), []).append(sl)
            else:
                self._silences_of.setdefault(sl.tenant_id, []).append(sl)

    def mutes(self, n: Notice, now: float) -> Muted | None:
        """Why `n` is quiet at `now` (the first reason, in the module doc's order), or None."""
        site, tenant = n.site_id, n.tenant_id
        status = self.state.site_status.get((tenant, site)) if site else None
        if site is not None:
            if status == "maintenance":
                return Muted("maintenance", f"status:{site}", None)
            ends = [
                (until, w.id)
                for w in self._windows_at.get((tenant, site), ())
                if (until := w.active_until(now)) is not None
            ]
            if ends:
                until, ident = max(ends)  # overlapping windows: quiet until the last ends
                return Muted("maintenance", ident, until)
        found = [
            sl
            for group in (
                self._silences_of.get(tenant, ()),
                self._silences_for.get((tenant, n.incident_id), ()),
                self._silences_at.get((tenant, site), ()) if site is not None else (),
            )
            for sl in group
            if sl.matches(n, now)
        ]
        if found:
            latest = max(found, key=lambda sl: sl.ends_at)
            return Muted("silence", latest.id, latest.ends_at)
        if (
            self.state.site_down
            and status == "down"
            and (n.source == "threshold" or n.severity != "critical")
        ):
            return Muted("inhibition", f"site-down:{site}", None)
        if site is not None and self.state.topology is not None:
            return self._behind(tenant, site, n.opened_at if n.opened_at is not None else now)
        return None

    def _behind(self, tenant: str, site: str, opened: float) -> Muted | None:
        """The nearest parent of `site` that is down and went down no later than
        `topology_window` after the incident opened."""
        state = self.state
        assert state.topology is not None
        since = state.status_since or {}
        for parent in state.topology.ancestors(tenant, site):
            if state.site_status.get((tenant, parent)) != "down":
                continue
            went_down = since.get((tenant, parent))
            if went_down is None or opened >= went_down - state.topology_window:
                return Muted("topology", parent, None)
        return None


def mutes(n: Notice, state: State, now: float) -> Muted | None:
    """Why `n` is quiet at `now` (the first reason, in the module doc's order), or None.
    The pure decision; the stores keep an `Index` of their state between changes."""
    return Index(state).mutes(n, now)
