"""`GET /api/v1/sites` and `GET /api/v1/sites/{id}`: every site the daemon knows of (the
inventory of sites.yaml, and those that reported a status or are named by a maintenance
window), with its live status, worst open severity, open incident count and maintenance;
one site adds its direct dependents, its open incidents and its latest KPI snapshot.

Visible sites only (the one visibility rule: a site-restricted user sees its own).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from notify_core.state.incidents import IncidentState, IncidentStore
from notify_core.state.snapshots import SnapshotStore
from notify_core.suppression.policy import Notice
from notify_core.suppression.store import SuppressionStore
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, authenticated, error_reply, json_reply
from sio_server.api.incidents import incident_row
from sio_server.contract.queries import SitesQuery, parse_query

RANK = {"critical": 5, "major": 4, "minor": 3, "warning": 2, "info": 1}


class SitesApi:
    def __init__(
        self,
        gate: ApiGate,
        store: SuppressionStore,
        incidents: IncidentStore | None,
        snapshots: SnapshotStore | None,
    ) -> None:
        self.gate = gate
        self.store = store
        self.incidents = incidents
        self.snapshots = snapshots

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/sites", self.list_sites)
        app.router.add_get("/api/v1/sites/{id}", self.one_site)

    async def _open(self, tenant: str) -> list[tuple[str, IncidentState]]:
        """The tenant's incidents not resolved (every page of the index)."""
        if self.incidents is None:
            return []
        now_ms = int(time.time() * 1000)
        found = await self.incidents.list(tenant, False)  # one read, not a sort per page
        return [(i, s.current(now_ms)) for i, s in found if s.status != "resolved"]

    def _site(
        self,
        tenant: str,
        site: str,
        status: str | None,
        open_here: list[IncidentState],
        now: float,
    ) -> dict[str, Any]:
        known = self.store.sites.get(tenant, site)
        view = (
            known.view()
            if known is not None
            else {
                "id": site,
                "name": site,
                "region": None,
                "lat": None,
                "lon": None,
                "depends_on": [],
            }
        )
        muted = self.store.mutes(Notice(tenant, "-", site, "critical"), now)
        maintenance = muted.view() if muted is not None and muted.by == "maintenance" else None
        worst = max((s.severity for s in open_here), key=lambda x: RANK.get(x, 0), default=None)
        return {
            **view,
            "site_id": site,  # the earlier name of `id`, kept for existing clients
            "status": status,
            "worst_severity": worst,
            "open_incidents": len(open_here),
            "maintenance": maintenance,
        }

    @authenticated("sites")
    async def list_sites(self, request: web.Request, p: Principal) -> web.Response:
        now = time.time()
        tenant = p.tenant_id
        region = parse_query(request.query, SitesQuery).region
        statuses = self.store.site_statuses(tenant)
        names = set(statuses) | {s.id for s in self.store.sites.of_tenant(tenant)}
        for w in self.store.windows(tenant):
            names |= w.site_ids
        by_site: dict[str, list[IncidentState]] = {}
        for _, state in await self._open(tenant):
            if state.site_id is not None:
                by_site.setdefault(state.site_id, []).append(state)
        sites = []
        for site in sorted(names):
            if not p.can_see_site(site):
                continue
            if region is not None and self.store.sites.region(tenant, site) != region:
                continue
            sites.append(self._site(tenant, site, statuses.get(site), by_site.get(site, []), now))
        return json_reply({"sites": sites})

    @authenticated("sites")
    async def one_site(self, request: web.Request, p: Principal) -> web.Response:
        tenant, site = p.tenant_id, request.match_info["id"]
        statuses = self.store.site_statuses(tenant)
        known = self.store.sites.get(tenant, site) is not None or site in statuses
        if not known or not p.can_see_site(site):
            return error_reply(404, "no such site")  # the same for another's site and none
        here = [(i, s) for i, s in await self._open(tenant) if s.site_id == site]
        row = self._site(tenant, site, statuses.get(site), [s for _, s in here], time.time())
        row["dependents"] = [
            d for d in self.store.sites.dependents(tenant, site, transitive=False)
            if p.can_see_site(d)
        ]  # fmt: skip
        row["incidents"] = [incident_row(self.store, tenant, i, s) for i, s in here]
        snaps = await self.snapshots.get(tenant, [site]) if self.snapshots is not None else {}
        row["kpis"] = snaps.get(site)
        return json_reply(row)
