"""HTTP API: history/polling, incident actions, health, readiness, metrics, dashboard."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import ValidationError

from notify_core.history.store import History
from notify_core.in_force import View
from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog, audit_record
from notify_core.obs.readiness import Readiness
from notify_core.revocations import DEFAULT_KEEP_S, Revocation, Revocations
from notify_core.state.incidents import STATUSES, IncidentState, IncidentStore
from notify_core.state.timeline import Timeline
from notify_core.suppression.policy import Notice, suppression_fields
from notify_core.suppression.store import SuppressionStore
from notify_core.thresholds.rules import RuleSet
from notify_core.wire.events import ACTIONS, describe_error, is_incident_id
from sio_server.admission.auth import Authenticator, AuthError, Principal
from sio_server.admission.limits import HttpRateLimiter, retry_headers
from sio_server.admission.origin import OriginPolicy
from sio_server.api.models import RevocationBody, openapi
from sio_server.api.queries import (
    AuditQuery,
    IncidentsQuery,
    NotificationsQuery,
    RequestError,
    parse_query,
)
from sio_server.incident_actions import IncidentActions
from sio_server.presence import Presence

log = logging.getLogger(__name__)

SCAN_PAGE = 1000
MAX_SCAN = 20_000  # events examined per request, so a filtered query stays bounded


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


Handler = Callable[[Any, web.Request, Principal], Awaitable[web.Response]]


def authenticated(
    route: str,
) -> Callable[[Handler], Callable[[Any, web.Request], Awaitable[web.Response]]]:
    """Bearer JWT -> Principal for the handler; 401 (counted, no detail) otherwise."""

    def wrap(fn: Handler) -> Callable[[Any, web.Request], Awaitable[web.Response]]:
        @functools.wraps(fn)
        async def handler(self: Any, request: web.Request) -> web.Response:
            try:
                principal = await self._principal(request)
            except AuthError as exc:
                metrics.AUTH_FAILURES.labels("http", exc.reason.split(":")[0]).inc()
                metrics.HTTP_REQUESTS.labels(route, "401").inc()
                return _error(401, "authentication failed")
            wait = self.http_rate.retry_after(principal) if self.http_rate else None
            if wait is not None:
                metrics.HTTP_RATE_LIMITED.inc()
                metrics.HTTP_REQUESTS.labels(route, "429").inc()
                response = _error(429, f"rate limited: retry after {wait}s")
                response.headers.update(retry_headers(wait))
                return response
            try:
                return await fn(self, request, principal)
            except RequestError as exc:  # sio_server/api/queries.py: the query's model
                metrics.HTTP_REQUESTS.labels(route, "400").inc()
                return _error(400, str(exc))

        return handler

    return wrap


async def audit_http(
    audit: AuditLog | None, p: Principal, action: str, target: str, request: web.Request
) -> None:
    """What a principal did over the HTTP API, in the audit trail (when there is one)."""
    if audit is not None:
        await audit.record(
            audit_record(
                p.tenant_id, p.user_id, action, target, "ok", "http", remote_addr=request.remote
            )
        )


def revocation_from(body: Any, principal: Principal, now: float | None = None) -> Revocation:
    """A revocation request's body, validated (ValueError names the field at fault)."""
    now = time.time() if now is None else now
    if not isinstance(body, dict):
        raise ValueError('expected a JSON object {"jti": ...} or {"user_id": ...}')
    try:
        valid = RevocationBody.model_validate(body)
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None
    jti, user = valid.jti, valid.user_id  # exactly one (the model checks)
    issued_before = (valid.issued_before or now) if user is not None else None
    until = valid.expires_at or now + DEFAULT_KEEP_S
    return Revocation(
        principal.tenant_id,
        jti,
        user,
        float(issued_before) if issued_before is not None else None,
        float(until),
        now,
        principal.user_id,
    )


def _cors_headers(origin: str, preflight: bool) -> dict[str, str]:
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if preflight:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-ID",
                "Access-Control-Max-Age": "600",
            }
        )
    return headers


def _error(status: int, message: str) -> web.Response:
    return _json({"ok": False, "error": message}, status)


class HttpApi:
    def __init__(
        self,
        auth: Authenticator,
        history: History,
        readiness: Readiness,
        actions: IncidentActions,
        rules: View[RuleSet] | None = None,
        timeline: Timeline | None = None,
        incidents: IncidentStore | None = None,
        audit: AuditLog | None = None,
        revocations: Revocations | None = None,
        http_rate: HttpRateLimiter | None = None,
        presence: Presence | None = None,
        suppression: SuppressionStore | None = None,
    ) -> None:
        """`suppression`: why each listed incident is quiet (`suppressed`, `caused_by`)
        and the sites behind it (`affected_sites`, from the inventory)."""
        self.suppression = suppression
        self.presence = presence
        self.http_rate = http_rate
        self._openapi: bytes | None = None
        self.revocations = revocations
        self.actions = actions
        self.audit = audit
        self.rules = rules
        self.timeline = timeline
        self.incidents = incidents
        self.auth = auth
        self.history = history
        self.readiness = readiness

    def cors_middleware(self, origins: OriginPolicy) -> Any:
        """CORS for the HTTP API: preflights answered for the listed origins only, and
        `Access-Control-Allow-Origin` on their answers; any other origin gets none (the
        browser then keeps the answer from the page)."""

        @web.middleware
        async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
            if not request.path.startswith("/api/"):
                return await handler(request)
            origin = request.headers.get("Origin")
            allowed = origins.cors_origin(origin)
            if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
                if allowed is None:
                    metrics.ORIGIN_REFUSED.labels("http").inc()
                    return web.Response(status=403)
                return web.Response(status=204, headers=_cors_headers(allowed, preflight=True))
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                # aiohttp's own refusals (no such route, a method not allowed, a body too
                # large) answer in the API's shape, JSON, keeping their headers (Allow)
                if exc.status < 400:
                    raise
                response = _error(exc.status, exc.reason.lower())
                if "Allow" in exc.headers:
                    response.headers["Allow"] = exc.headers["Allow"]
            if allowed is not None:
                response.headers.update(_cors_headers(allowed, preflight=False))
            return response

        return cors

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/v1/notifications", self.notifications)
        app.router.add_get("/api/v1/incidents", self.incidents_list)
        # the action is one of ACTIONS in the path itself: POST .../timeline is a 405
        actions = "|".join(ACTIONS)
        app.router.add_post(
            f"/api/v1/incidents/{{incident_id}}/{{action:{actions}}}", self.incident_action
        )
        app.router.add_get("/api/v1/incidents/{incident_id}/timeline", self.incident_timeline)
        app.router.add_get("/api/v1/thresholds", self.thresholds)
        app.router.add_get("/api/v1/audit", self.audit_records)
        app.router.add_get("/api/v1/presence", self.presence_list)
        app.router.add_get("/api/v1/openapi.json", self.openapi)
        app.router.add_post("/api/v1/admin/revocations", self.revoke)
        app.router.add_get("/api/v1/admin/revocations", self.revocations_list)

    async def _principal(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("missing bearer token")
        return await self.auth.authenticate(token.strip())

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 description, from the models the handlers validate with."""
        if self._openapi is None:
            self._openapi = orjson.dumps(openapi())
        return web.Response(body=self._openapi, content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        return _json({"ok": True})

    async def readyz(self, request: web.Request) -> web.Response:
        ok, checks = await self.readiness.status()
        return _json({"ready": ok, "checks": checks}, 200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @authenticated("notifications")
    async def notifications(self, request: web.Request, principal: Principal) -> web.Response:
        route = "notifications"
        q = parse_query(request.query, NotificationsQuery)
        since, limit, types = q.since, q.limit, q.type_set
        if since is None:
            out, cursor = await self._newest(principal, limit, types)
        else:
            out, cursor = await self._after(principal, since, limit, types)
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return _json({"notifications": out, "next": cursor})

    async def _after(
        self, principal: Principal, since: str, limit: int, types: set[str] | None
    ) -> tuple[list[dict[str, Any]], str]:
        """Visible events after `since`, oldest first; `next` the last id examined."""
        out: list[dict[str, Any]] = []
        cursor, scanned = since, 0
        while len(out) < limit and scanned < MAX_SCAN:
            page = await self.history.read_after(principal.tenant_id, cursor, SCAN_PAGE)
            for event in page:
                cursor = event["id"]
                if principal.can_see(event) and (types is None or event["type"] in types):
                    out.append(event)
                    if len(out) == limit:
                        break
            scanned += len(page)
            if len(page) < SCAN_PAGE:
                break
        return out, cursor

    async def _newest(
        self, principal: Principal, limit: int, types: set[str] | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """No cursor: the newest `limit` visible events, oldest first; `next` the newest id
        of the history, so the next poll (`since=next`) gets only what came after."""
        out: list[dict[str, Any]] = []
        head: str | None = None
        before: str | None = None
        scanned = 0
        while len(out) < limit and scanned < MAX_SCAN:
            page = await self.history.read_before(principal.tenant_id, before, SCAN_PAGE)
            if page and head is None:
                head = page[0]["id"]
            for event in page:
                before = event["id"]
                if principal.can_see(event) and (types is None or event["type"] in types):
                    out.append(event)
                    if len(out) == limit:
                        break
            scanned += len(page)
            if len(page) < SCAN_PAGE:
                break
        out.reverse()
        return out, head

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
                        out.append(self.incident_row(principal.tenant_id, incident_id, state))
                        if len(out) == limit:
                            break
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return _json({"incidents": out})

    def incident_row(self, tenant: str, incident_id: str, state: IncidentState) -> dict[str, Any]:
        """An incident's entry in the list, with what suppression says of it now."""
        row = state.view(incident_id)
        store = self.suppression
        if store is None or state.status == "resolved":
            return row
        opened = state.opened_at_ms / 1000 if state.opened_at_ms is not None else None
        notice = Notice(tenant, incident_id, state.site_id, state.severity, opened_at=opened)
        row.update(suppression_fields(store.mutes(notice)))
        if state.site_id is not None and (behind := store.sites.dependents(tenant, state.site_id)):
            row["affected_sites"] = behind
        return row

    @authenticated("incident_action")
    async def incident_action(self, request: web.Request, principal: Principal) -> web.Response:
        route = "incident_action"
        body: Any = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                metrics.HTTP_REQUESTS.labels(route, "400").inc()
                return _error(400, "body: must be JSON {note?, minutes?}")
        if not isinstance(body, dict):
            metrics.HTTP_REQUESTS.labels(route, "400").inc()
            return _error(400, "body: must be a JSON object {note?, minutes?}")
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
            return _error(outcome.status, outcome.error or "refused")
        incident_id, action = request.match_info["incident_id"], request.match_info["action"]
        return _json({"ok": True, "incident_id": incident_id, "action": action}, 202)

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
            return _error(404, "no such incident")
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return _json({"incident_id": incident_id, "timeline": entries})

    @authenticated("presence")
    async def presence_list(self, request: web.Request, principal: Principal) -> web.Response:
        """Who of the caller's tenant is online, across server processes."""
        users = await self.presence.users(principal.tenant_id) if self.presence else []
        metrics.HTTP_REQUESTS.labels("presence", "200").inc()
        return _json({"users": users})

    @authenticated("audit")
    async def audit_records(self, request: web.Request, principal: Principal) -> web.Response:
        """The tenant's audit trail, for its admins: `{"records": [...], "next": cursor}`."""
        route = "audit"
        if not principal.has_any_role("admin"):
            metrics.HTTP_REQUESTS.labels(route, "403").inc()
            return _error(403, "forbidden: needs role admin")
        q = parse_query(request.query, AuditQuery)
        since, limit = q.since, q.limit
        if self.audit is None:
            return _json({"records": [], "next": since})
        records, cursor = await self.audit.copy.read(
            principal.tenant_id, since, limit, q.action or None
        )
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return _json({"records": records, "next": cursor})

    @authenticated("revocations")
    async def revoke(self, request: web.Request, principal: Principal) -> web.Response:
        """`{"jti": ...}` or `{"user_id": ..., "issued_before": <unix s, default now>}`, in
        the admin's own tenant; optional `expires_at` (unix s): when the tokens expire."""
        route = "revocations"
        if not principal.has_any_role("admin"):
            metrics.HTTP_REQUESTS.labels(route, "403").inc()
            return _error(403, "forbidden: needs role admin")
        try:
            body = await request.json()
        except ValueError:
            body = None
        try:
            revocation = revocation_from(body, principal)
        except ValueError as exc:
            metrics.HTTP_REQUESTS.labels(route, "400").inc()
            return _error(400, str(exc))
        if self.revocations is None:
            return _error(503, "revocation is not available on this server")
        await self.revocations.add(revocation)
        target = f"jti:{revocation.jti}" if revocation.jti else f"user:{revocation.user_id}"
        await audit_http(self.audit, principal, "revoke", target, request)
        metrics.HTTP_REQUESTS.labels(route, "201").inc()
        return _json({"ok": True, "revocation": revocation.view()}, 201)

    @authenticated("revocations")
    async def revocations_list(self, request: web.Request, principal: Principal) -> web.Response:
        if not principal.has_any_role("admin"):
            metrics.HTTP_REQUESTS.labels("revocations", "403").inc()
            return _error(403, "forbidden: needs role admin")
        listed = self.revocations.listed(principal.tenant_id) if self.revocations else []
        return _json({"revocations": [r.view() for r in listed]})

    @authenticated("thresholds")
    async def thresholds(self, request: web.Request, principal: Principal) -> web.Response:
        """Effective rules for the caller's tenant (operators and admins)."""
        route = "thresholds"
        if not principal.has_any_role("operator", "admin"):
            metrics.HTTP_REQUESTS.labels(route, "403").inc()
            return _error(403, "forbidden: needs role operator or admin")
        if self.rules is None:
            return _json({"tenant_id": principal.tenant_id, "rules": {"tenant": {}, "sites": {}}})
        described = self.rules.current.describe(principal.tenant_id)
        if principal.sites is not None:
            described["sites"] = {
                s: r for s, r in described["sites"].items() if s in principal.sites
            }
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return _json(
            {
                "tenant_id": principal.tenant_id,
                "generation": self.rules.generation,
                "rules": described,
            }
        )
