"""The OpenAPI 3.1 description of the HTTP API, built from the models the handlers validate
with (`sio_server.contract.models`, `sio_server.contract.queries`). `ROUTES` is the one
table of what the API serves; `openapi()` turns it into `/api/v1/openapi.json`, and a test
checks it against every route the application registers."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from notify_core.wire.events import ACTIONS
from sio_server.contract.models import (
    ActionAccepted,
    ActionBody,
    AuditPage,
    ClientConfig,
    ContactMethodBody,
    ContactMethodList,
    ContactMethodView,
    Created,
    Deleted,
    Error,
    Handover,
    Health,
    HeartbeatList,
    IncidentList,
    IngestAccepted,
    IntegrationBody,
    MaintenanceBody,
    NotificationRules,
    NotificationRulesBody,
    NotificationsPage,
    OnCallList,
    OverrideBody,
    OverrideList,
    OverrideView,
    Pinged,
    PresenceList,
    PushCreated,
    PushSubscriptionBody,
    PushSubscriptionList,
    PushUnsubscribeBody,
    Readiness,
    ResponseReport,
    RevocationBody,
    RevocationCreated,
    RevocationList,
    ShiftList,
    SilenceBody,
    SilenceList,
    SiteDetail,
    SiteList,
    SseEvent,
    Thresholds,
    Timeline,
    VapidPublicKey,
    Verified,
    VerifyBody,
    WindowList,
)
from sio_server.contract.queries import (
    PATH_SCHEMAS,
    AuditQuery,
    CalendarQuery,
    HandoverQuery,
    IncidentsQuery,
    KeyQuery,
    NotificationsQuery,
    OnCallQuery,
    ResponseReportQuery,
    ScheduleQuery,
    ShiftsQuery,
    SitesQuery,
    StreamQuery,
    VoiceQuery,
    WsQuery,
)
from sio_server.dashboard_page import STATIC_FILES


class Route(NamedTuple):
    method: str
    path: str
    summary: str
    response: type[BaseModel] | None  # None: not JSON (text, HTML, a stream)
    body: type[BaseModel] | None = None
    auth: bool = True
    query: type[BaseModel] | None = None  # sio_server/contract/queries.py: what the handler parses
    content: str = "application/json"
    more_content: tuple[str, ...] = ()  # other media types of the success (static files)
    ok: str | None = None  # the success status when not 200/201/202 as below (e.g. 204)
    errors: tuple[str, ...] = ()  # refusals beyond an authenticated route's usual ones
    error_content: str = "application/json"  # HTML for pages a person reads, XML for Twilio
    paths: tuple[tuple[str, dict[str, Any]], ...] = ()  # path parameter schemas beyond PATH_SCHEMAS
    headers: tuple[tuple[str, dict[str, Any]], ...] = ()  # required request headers


def _contact_method_routes(base: str, whose: str) -> tuple[Route, ...]:
    """The contact-method routes of one person: `/me`, or an admin's `/users/{user_id}`
    (sio_server/api/people.py serves both from one handler set)."""
    return (
        Route("GET", f"{base}/contact-methods", f"{whose} contact methods", ContactMethodList),
        Route(
            "POST",
            f"{base}/contact-methods",
            "Add a contact method (a code is sent through it)",
            ContactMethodView,
            ContactMethodBody,
            ok="201",
        ),
        Route(
            "POST",
            f"{base}/contact-methods/{{id}}/verify",
            "Verify a contact method with its code (5 wrong: locked an hour)",
            Verified,
            VerifyBody,
        ),
        Route(
            "DELETE", f"{base}/contact-methods/{{id}}", "Remove a contact method", None, ok="204"
        ),
    )


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", "Liveness", Health, auth=False),
    Route("GET", "/readyz", "Readiness (consumer joined, Redis, HTTP)", Readiness, auth=False),
    Route("GET", "/metrics", "Prometheus metrics", None, auth=False, content="text/plain"),
    Route(
        "GET",
        "/api/v1/notifications",
        "History and polling: after `since` (oldest first), else the newest page",
        NotificationsPage,
        query=NotificationsQuery,
    ),
    Route(
        "GET",
        "/api/v1/notifications/stream",
        "Server-Sent Events (Bearer or ?token=); resumes after Last-Event-ID",
        None,
        query=StreamQuery,
        content="text/event-stream",
    ),
    Route(
        "GET",
        "/api/v1/notifications/ws/{tenant_id}/{user_id}",
        "ADR-010's plain WebSocket (upgrade; ?token=, last_id, epoch)",
        None,
        auth=False,
        query=WsQuery,
        ok="101",
        errors=("400", "403"),
        headers=(
            ("Upgrade", {"type": "string", "enum": ["websocket"]}),
            ("Connection", {"type": "string", "enum": ["Upgrade"]}),
            ("Sec-WebSocket-Version", {"type": "string", "enum": ["13"]}),
            ("Sec-WebSocket-Key", {"type": "string", "pattern": "^[A-Za-z0-9+/]{21}[AQgw]==$"}),
        ),
    ),
    Route(
        "GET",
        "/api/v1/incidents",
        "The incidents a fresh screen shows (every status but resolved by default)",
        IncidentList,
        query=IncidentsQuery,
    ),
    Route(
        "POST",
        "/api/v1/incidents/{incident_id}/{action}",
        f"Act on an incident: {', '.join(ACTIONS)}",
        ActionAccepted,
        body=ActionBody,
        paths=(("action", {"type": "string", "enum": list(ACTIONS)}),),
    ),
    Route("GET", "/api/v1/incidents/{incident_id}/timeline", "Every step of an incident", Timeline),
    Route("GET", "/api/v1/thresholds", "Effective threshold rules (operator, admin)", Thresholds),
    Route(
        "GET",
        "/api/v1/audit",
        "The tenant's audit trail (admin)",
        AuditPage,
        query=AuditQuery,
    ),
    Route(
        "POST",
        "/api/v1/admin/revocations",
        "Revoke a token or a user's tokens (admin)",
        RevocationCreated,
        body=RevocationBody,
    ),
    Route("GET", "/api/v1/admin/revocations", "The tenant's revocations (admin)", RevocationList),
    Route("GET", "/api/v1/presence", "Who of the tenant is online", PresenceList),
    Route("POST", "/api/v1/maintenance", "Put sites in maintenance", Created, MaintenanceBody),
    Route("GET", "/api/v1/maintenance", "Maintenance windows", WindowList),
    Route("DELETE", "/api/v1/maintenance/{id}", "End a maintenance window", Deleted),
    Route("POST", "/api/v1/silences", "Silence what matches", Created, SilenceBody),
    Route("GET", "/api/v1/silences", "Silences", SilenceList),
    Route("DELETE", "/api/v1/silences/{id}", "Expire a silence", Deleted),
    Route(
        "GET",
        "/api/v1/sites",
        "The tenant's sites: inventory, status, worst severity, maintenance",
        SiteList,
        query=SitesQuery,
    ),
    Route("GET", "/api/v1/sites/{id}", "One site: dependents, open incidents, KPIs", SiteDetail),
    Route("GET", "/api/v1/push/vapid-public-key", "Web Push application key", VapidPublicKey),
    Route(
        "POST",
        "/api/v1/push/subscriptions",
        "Register this browser for Web Push pages",
        PushCreated,
        PushSubscriptionBody,
        ok="201",
    ),
    Route("GET", "/api/v1/push/subscriptions", "My push subscriptions", PushSubscriptionList),
    Route(
        "DELETE",
        "/api/v1/push/subscriptions",
        "Remove a push subscription by endpoint",
        Deleted,
        PushUnsubscribeBody,
    ),
    Route("DELETE", "/api/v1/push/subscriptions/{id}", "Remove a push subscription", Deleted),
    Route(
        "POST",
        "/api/v1/integrations/{name}/alerts",
        "Alerts from an inbound integration (its key as ?key= or Bearer; 401, 400, 413, 503)",
        IngestAccepted,
        IntegrationBody,
        auth=False,
        query=KeyQuery,
        errors=("400", "401", "413", "503"),
    ),
    Route(
        "GET",
        "/api/v1/oncall",
        "Who is on call (now or `at`)",
        OnCallList,
        query=OnCallQuery,
    ),
    Route(
        "GET",
        "/api/v1/oncall/shifts",
        "The final shifts of a schedule in [from, to)",
        ShiftList,
        query=ShiftsQuery,
    ),
    Route(
        "GET",
        "/api/v1/oncall/{schedule}.ics",
        "The next 60 days of final shifts as iCalendar (Bearer or ?token=)",
        None,
        query=CalendarQuery,
        content="text/calendar",
        errors=("401", "404"),
    ),
    Route(
        "POST",
        "/api/v1/oncall/overrides",
        "Override who is on call",
        OverrideView,
        OverrideBody,
        ok="201",
    ),
    Route("GET", "/api/v1/oncall/overrides", "Overrides", OverrideList, query=ScheduleQuery),
    Route("DELETE", "/api/v1/oncall/overrides/{id}", "Remove an override", None, ok="204"),
    Route(
        "POST",
        "/api/v1/heartbeats/{tenant}/{name}",
        "A source is alive (its key as ?key= or Bearer; 401 alike for a wrong key or name)",
        Pinged,
        auth=False,
        query=KeyQuery,
        errors=("401",),
    ),
    Route("GET", "/api/v1/heartbeats", "The tenant's heartbeats and their state", HeartbeatList),
    Route(
        "GET",
        "/a/{token}",
        "An action link from a page: what it would do, and a button (changes nothing)",
        None,
        auth=False,
        content="text/html",
        errors=("404", "410"),
        error_content="text/html",
    ),
    Route(
        "POST",
        "/a/{token}",
        "Use an action link: acknowledge or resolve as the person paged (410 used/expired)",
        None,
        auth=False,
        content="text/html",
        errors=("400", "403", "404", "410"),
        error_content="text/html",
    ),
    Route(
        "GET",
        "/api/v1/reports/response",
        "Time to acknowledge and resolve, grouped (role admin)",
        ResponseReport,
        query=ResponseReportQuery,
    ),
    Route(
        "GET",
        "/api/v1/reports/handover",
        "The current shift of a schedule: what happened, what the next one inherits",
        Handover,
        query=HandoverQuery,
    ),
    *_contact_method_routes("/api/v1/me", "My"),
    *_contact_method_routes("/api/v1/users/{user_id}", "A user's (admins)"),
    Route("GET", "/api/v1/me/notification-rules", "My notification rules", NotificationRules),
    Route(
        "PUT",
        "/api/v1/me/notification-rules",
        "Set my notification rules",
        NotificationRules,
        NotificationRulesBody,
    ),
    Route(
        "POST",
        "/api/v1/integrations/slack/interactions",
        "A button of a page in Slack (signed with the Slack signing secret)",
        None,
        auth=False,
        errors=("400", "401"),
    ),
    Route(
        "POST",
        "/api/v1/integrations/pagerduty/webhook",
        "PagerDuty V3 webhooks: acknowledged / resolved there, here too (signed)",
        None,
        auth=False,
        errors=("400", "401", "404"),
    ),
    Route(
        "POST",
        "/api/v1/integrations/twilio/sms",
        "A reply to a page SMS: 3a acknowledges, 3c resolves, STOP (signed by Twilio)",
        None,
        auth=False,
        content="text/xml",
        errors=("403",),
        error_content="text/plain",
    ),
    Route(
        "POST",
        "/api/v1/integrations/twilio/voice",
        "The digit pressed on a page call: 4 acknowledges, 6 resolves (signed by Twilio)",
        None,
        auth=False,
        query=VoiceQuery,
        content="text/xml",
        errors=("403",),
        error_content="text/plain",
    ),
    Route(
        "GET",
        "/api/v1/client-config",
        "How the dashboard signs in (OIDC issuer, client, scopes; or null)",
        ClientConfig,
        auth=False,
    ),
    Route("GET", "/api/v1/openapi.json", "This description", None, auth=False),
    Route("GET", "/", "The NOC dashboard", None, auth=False, content="text/html"),
    Route(
        "GET",
        "/static/{name}",
        "Dashboard and client module files",
        None,
        auth=False,
        content="application/javascript",
        more_content=tuple(sorted(set(STATIC_FILES.values()) - {"application/javascript"})),
        errors=("404",),
        paths=(("name", {"type": "string", "enum": sorted(STATIC_FILES)}),),
    ),
)


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 description of `ROUTES`, schemas from the models above."""
    models: set[type[BaseModel]] = {Error, SseEvent}
    models |= {m for r in ROUTES for m in (r.response, r.body) if m is not None}
    _, defs = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        op: dict[str, Any] = {"summary": r.summary, "responses": {}}
        params = _parameters(r)
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {
                "required": _body_required(r.body),
                "content": {"application/json": {"schema": _ref(r.body)}},
            }
        ok = "202" if r.method == "POST" and r.response is ActionAccepted else "200"
        if r.response in (RevocationCreated, Created):
            ok = "201"
        ok = r.ok or ok
        schema = _ref(r.response) if r.response is not None else {"type": "string"}
        if r.content == "text/event-stream":
            schema = _ref(SseEvent)
        if ok in ("101", "204"):
            op["responses"][ok] = {"description": "switching protocols" if ok == "101" else "done"}
        else:
            content = {r.content: {"schema": schema}}
            content |= {other: {"schema": {}} for other in r.more_content}
            op["responses"][ok] = {"description": "OK", "content": content}
        refusals = list(r.errors)
        if r.auth:
            op["security"] = [{"bearer": []}]
            refusals += ["400", "401", "403", "404", "429"]
        if r.query is not None:
            refusals.append("400")
        refused = _ref(Error) if r.error_content == "application/json" else {"type": "string"}
        for status in sorted(set(refusals)):
            op["responses"][status] = {
                "description": "refused",
                "content": {r.error_content: {"schema": refused}},
            }
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "towerco-notify", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _path_params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def _parameters(r: Route) -> list[dict[str, Any]]:
    """Path, query and header parameters: schemas from the same patterns and models the
    handlers check with (a query model's optional fields without their `null`: a query
    string has no null)."""
    own = dict(r.paths)
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": own.get(name) or PATH_SCHEMAS.get(name) or {"type": "string"},
        }
        for name in _path_params(r.path)
    ]
    if r.query is not None:
        schema = r.query.model_json_schema(by_alias=True)
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            prop = _non_null(prop)
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
            if "description" in prop:
                param["description"] = prop.pop("description")
            param["schema"] = prop
            params.append(param)
    params += [
        {"name": name, "in": "header", "required": True, "schema": schema}
        for name, schema in r.headers
    ]
    return params


def _body_required(model: type[BaseModel]) -> bool:
    """A body is required when its model has a required field (a union: any member)."""
    schema = model.model_json_schema()
    return bool(schema.get("required")) or "oneOf" in schema or "anyOf" in schema


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    prop = {k: v for k, v in prop.items() if k != "title"}
    options = prop.pop("anyOf", None)
    if options is None:
        return prop
    kept = [o for o in options if o != {"type": "null"}]
    if prop.get("default", 0) is None:
        del prop["default"]
    if len(kept) == 1:
        return {**kept[0], **prop}
    return {"anyOf": kept, **prop}
