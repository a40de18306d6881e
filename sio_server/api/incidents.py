"""`/api/v1/incidents`: the list a fresh screen shows (with what suppression says of each),
acting on one (acknowledge, resolve, snooze...), its timeline, and `/api/v1/presence`
(who of the tenant is online and looking at which incident)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from notify_core.obs import metrics
from notify_core.state.incidents import STATUSES, IncidentState, IncidentStore
from notify_core.state.timeline import Timeline
from notify_core.suppression.policy import Notice, suppression_fields
from notify_core.suppression.store import SuppressionStore
from notify_core.wire.events import ACTIONS, is_incident_id
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, authenticated, error_reply, json_reply
from sio_server.contract.queries import IncidentsQuery, parse_query
from sio_server.incident_actions import IncidentActions
from sio_server.presence import Presence


def incident_row(
    suppression: SuppressionStore | None, tenant: str, incident_id: str, state: IncidentState
) -> dict[str, Any]:
    """An incident's entry in the list, with what suppression says of it now."""
    row = state.view(incident_id)
    store = suppression
    if store is None or state.status == "resolved":
        return row
    opened = state.opened_at_ms / 1000 if state.opened_at_ms is not None else None
    notice = Notice(tenant, incident_id, state.site_id, state.severity, opened_at=opened)
    row.update(suppression_fields(store.mutes(notice)))
    if state.site_id is not None and (behind := store.sites.dependents(tenant, state.site_id)):
        row["affected_sites"] = behind
    return row


class IncidentsApi:
    def __init__(
        self,
        gate: ApiGate,
        actions: IncidentActions,
        incidents: IncidentStore | None,
        timeline: Timeline | None,
        suppression: SuppressionStore | None,
        presence: Presence | None,
    ) -> None:
        """`suppression`: why each listed incident is quiet (`suppressed`, `caused_by`)
        and the sites behind it (`affected_sites`, from the inventory)."""
        self.gate = gate
        self.actions = actions
        self.incidents = incidents
        self.timeline = timeline
        self.suppression = suppression
        self.presence = presence

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/incidents", self.incidents_list)
        # the action is one of ACTIONS in the path itself: POST .../timeline is a 405
        actions = "|".join(ACTIONS)
        app.router.add_post(
            f"/api/v1/incidents/{{incident_id}}/{{action:{actions}}}", self.incident_action
        )
        app.router.add_get("/api/v1/incidents/{incident_id}/timeline", self.incident_timeline)
        app.router.add_get("/api/v1/presence", self.presence_list)

    @authenticated("incidents")
    async def incidents_list(self, request: web.Request, principal: Principal) -> web.Response:
        """The incidents a fresh screen shows: every status but resolved by default,
        newest first, only those the caller may see (tenant and sites)."""
        route = "incidents"
        q = parse_query(request.query, IncidentsQuery)
        status, site, limit = q.status or "", q.site_id, q.limit
        wanted = {"": set(STATUSES) - {"resolved"}, "all": set(STATUSES)}.get(status, {status})
        out: list[dict[str, Any]] = []
        if self.incidents is not None:
            now_ms = int(time.time() * 1000)
            for resolved in (False, True):
                if (resolved and "resolved" not in wanted) or (
                    not resolved and not wanted - {"resolved"}
                ):
                    continue
                # page through the index, newest first, until `limit` are found: a screen's
                # first page does not read a 50 000-incident tenant whole
                offset: int | None = 0
                while offset is not None and len(out) < limit:
                    found, offset = await self.incidents.page(
                        principal.tenant_id, resolved, offset, max(2 * limit, 500)
                    )
                    for incident_id, stored in found:
                        state = stored.current(now_ms)
                        if state.status not in wanted or (
                            site is not None and state.site_id != site
                        ):
                            continue
                        if not principal.can_see_site(state.site_id):
                            continue
                        out.append(
                            incident_row(self.suppression, principal.tenant_id, incident_id, state)
                        )
                        if len(out) == limit:
                            break
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return json_reply({"incidents": out})

    @authenticated("incident_action")
    async def incident_action(self, request: web.Request, principal: Principal) -> web.Response:
        route = "incident_action"
        body: Any = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                metrics.HTTP_REQUESTS.labels(route, "400").inc()
                return error_reply(400, "body: must be JSON {note?, minutes?}")
        if not isinstance(body, dict):
            metrics.HTTP_REQUESTS.labels(route, "400").inc()
            return error_reply(400, "body: must be a JSON object {note?, minutes?}")
        outcome = await self.actions.act(
            principal,
            request.match_info["incident_id"],
            request.match_info["action"],
            "http",
            request.remote,
            body.get("note"),
            body.get("minutes"),
        )
        metrics.HTTP_REQUESTS.labels(route, str(outcome.status)).inc()
        if not outcome.ok:
            return error_reply(outcome.status, outcome.error or "refused")
        incident_id, action = request.match_info["incident_id"], request.match_info["action"]
        return json_reply({"ok": True, "incident_id": incident_id, "action": action}, 202)

    @authenticated("timeline")
    async def incident_timeline(self, request: web.Request, principal: Principal) -> web.Response:
        """Every step of one incident, for the caller's tenant (and sites) only."""
        route = "timeline"
        incident_id = request.match_info["incident_id"]
        entries = []
        if self.timeline is not None and is_incident_id(incident_id):
            entries = await self.timeline.get(principal.tenant_id, incident_id)
        if entries and principal.sites is not None and self.incidents is not None:
            known = await self.incidents.get(principal.tenant_id, incident_id)
            if known is None or not principal.can_see_site(known.site_id):
                entries = []
        if not entries:
            metrics.HTTP_REQUESTS.labels(route, "404").inc()
            return error_reply(404, "no such incident")
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return json_reply({"incident_id": incident_id, "timeline": entries})

    @authenticated("presence")
    async def presence_list(self, request: web.Request, principal: Principal) -> web.Response:
        """Who of the caller's tenant is online, across server processes."""
        users = await self.presence.users(principal.tenant_id) if self.presence else []
        metrics.HTTP_REQUESTS.labels("presence", "200").inc()
        return json_reply({"users": users})
