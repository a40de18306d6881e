"""`GET /api/v1/reports/response`: how fast incidents opened in a span were acknowledged
and resolved, grouped by site, region, policy, severity or user (role admin).

The numbers are `notify_core.reports.summary` (pure); this module reads the stores for them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from escalation.oncall.directory import OnCallDirectory
from escalation.oncall.schedule import Schedule
from notify_core.clock import iso
from notify_core.reports.archive import ArchiveStore
from notify_core.reports.summary import collect, response_report
from notify_core.sites_config import Inventory
from notify_core.state.incidents import IncidentStore
from notify_core.state.timeline import Timeline
from notify_core.suppression.store import SuppressionStore
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, authenticated, error_reply, json_reply
from sio_server.api.incidents import incident_row
from sio_server.contract.queries import (
    HandoverQuery,
    ResponseReportQuery,
    instant,
    parse_query,
)

MAX_SPAN = timedelta(days=400)  # a year's report: the archive keeps 400 days


class ReportsApi:
    def __init__(
        self,
        gate: ApiGate,
        incidents: IncidentStore,
        timeline: Timeline,
        sites: Callable[[], Inventory] | None,
        oncall: OnCallDirectory | None = None,
        suppression: SuppressionStore | None = None,
        archive: ArchiveStore | None = None,
    ) -> None:
        """`sites()`: the inventory in force (regions; swapped on reload); `archive`: the
        records of resolved incidents (a year of reports)."""
        self.gate = gate
        self.incidents = incidents
        self.timeline = timeline
        self.sites = sites
        self.oncall = oncall
        self.suppression = suppression
        self.archive = archive

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/reports/response", self.response)
        app.router.add_get("/api/v1/reports/handover", self.handover)

    def _covered(self, p: Principal, schedule: Schedule) -> Callable[[str | None], bool]:
        """Which sites the schedule's shift report is about: what it `covers` (its sites,
        the sites of its regions), else the whole tenant; always those `p` may see."""
        covers = schedule.covers

        def covered(site: str | None) -> bool:
            if not p.can_see_site(site):
                return False
            if covers is None or (not covers.sites and not covers.regions):
                return True
            return site in covers.sites or self._region(p.tenant_id, site) in covers.regions

        return covered

    @authenticated("reports")
    async def handover(self, request: web.Request, p: Principal) -> web.Response:
        """The current shift of a schedule: what happened in it and what the next one
        inherits (the handoff notice carries the same)."""
        if not p.has_any_role("operator", "oncall", "admin"):
            return error_reply(403, "forbidden: needs role operator, oncall or admin")
        name = parse_query(request.query, HandoverQuery).schedule
        schedule = self.oncall.schedule(p.tenant_id, name) if self.oncall else None
        if self.oncall is None or schedule is None:
            return error_reply(400, f"schedule: no such schedule (got {str(name)[:64]!r})")
        now = datetime.now(UTC)
        since, until, users = await self.oncall.current_shift(p.tenant_id, schedule, now)
        start = since or now - timedelta(days=1)
        covered = self._covered(p, schedule)
        items = [
            i
            for i in await collect(
                self.incidents,
                self.timeline,
                self._region,
                p.tenant_id,
                int(start.timestamp() * 1000),
                int(now.timestamp() * 1000) + 1,
                archive=self.archive,
            )
            if covered(i.site)
        ]
        start_ms = int(start.timestamp() * 1000)
        listed = [(i, s) for i, s in await self.incidents.list(p.tenant_id, False)]
        rows = {
            i: incident_row(self.suppression, p.tenant_id, i, s)
            for i, s in listed
            if covered(s.site_id)
        }
        ids = {i.incident_id for i in items}
        ack = [i for i in items if (i.acknowledged_ms or 0) >= start_ms]
        done = [i for i in items if (i.resolved_ms or 0) >= start_ms]
        return json_reply(
            {
                "schedule": schedule.name,
                "shift": {
                    "from": _iso(since) if since else None,
                    "to": _iso(until) if until else None,
                    "users": users,
                },
                "opened": sorted(ids),
                "acknowledged": sorted(i.incident_id for i in ack),
                "resolved": sorted(i.incident_id for i in done),
                "paged": sorted(i.incident_id for i in items if i.pages),
                "open": [r for r in rows.values() if r["status"] in ("open", "acknowledged")],
                "snoozed": [r for r in rows.values() if r["status"] == "snoozed"],
                "ending_next": self._ending(p, until),
            }
        )

    def _ending(self, p: Principal, until: datetime | None) -> dict[str, list[dict[str, Any]]]:
        """Maintenance windows and silences that end before the next shift begins."""
        store = self.suppression
        if store is None:
            return {"maintenance": [], "silences": []}
        end = (until or datetime.now(UTC) + timedelta(days=1)).timestamp()
        now = datetime.now(UTC).timestamp()
        windows = [
            {"id": w.id, "site_ids": sorted(w.site_ids), "ends_at": _iso_s(w.ends_at)}
            for w in store.windows(p.tenant_id)
            if w.ends_at is not None and now < w.ends_at <= end
        ]
        silences = [
            {"id": s.id, "matchers": s.matchers, "ends_at": _iso_s(s.ends_at)}
            for s in store.silences(p.tenant_id, now)
            if s.ends_at <= end
        ]
        return {"maintenance": windows, "silences": silences}

    def _region(self, tenant: str, site: str | None) -> str | None:
        return self.sites().region(tenant, site) if self.sites is not None else None

    @authenticated("reports")
    async def response(self, request: web.Request, p: Principal) -> web.Response:
        if not p.has_any_role("admin"):
            return error_reply(403, "forbidden: needs role admin")
        q = parse_query(request.query, ResponseReportQuery)
        end = instant(q.to, datetime.now(UTC))
        start = instant(q.from_, end - timedelta(days=7))
        group_by = q.group_by
        if end <= start:
            return error_reply(400, "to: must be after from")
        if end - start > MAX_SPAN:
            return error_reply(400, f"from: at most {MAX_SPAN.days} days before to")
        items = await collect(
            self.incidents,
            self.timeline,
            self._region,
            p.tenant_id,
            int(start.timestamp() * 1000),
            int(end.timestamp() * 1000),
            archive=self.archive,
        )
        if p.sites is not None:  # a restricted admin: its sites only
            items = [i for i in items if p.can_see_site(i.site)]
        groups = response_report(items, group_by)
        return json_reply(
            {"from": _iso(start), "to": _iso(end), "group_by": group_by, "groups": groups}
        )


def _iso_s(ts: float) -> str:
    return _iso(datetime.fromtimestamp(ts, UTC))


def _iso(t: datetime) -> str:
    return iso(t, "seconds")
