"""The HTTP API's shapes as pydantic models, and the OpenAPI 3.1 description built from them.

Request bodies are validated with these models by the handlers themselves
(`ActionBody`, `RevocationBody`); answers are described by them. `ROUTES` is the one table
of what the API serves; `openapi()` turns it into `/api/v1/openapi.json`, and a test
checks it against every route the application registers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from escalation.people.contacts import E164, EMAIL, SLACK_USER
from notify_core.integrations.ingest import AmWebhook, GenericAlert
from notify_core.wire.events import (
    ACTIONS,
    IDENT_PATTERN,
    MAX_NOTE,
    NOTIFICATION_TYPES,
    SNOOZE_MINUTES,
)
from sio_server.api.queries import (
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


class _Model(BaseModel):
    """A request body: unknown fields refused, and no coercion (`0` is not `false`, `"5"` is
    not `5`): what the document's types say is what is accepted."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ActionBody(_Model):
    """Optional body of `POST /api/v1/incidents/{id}/{action}`."""

    note: str | None = Field(default=None, min_length=1, max_length=MAX_NOTE)
    minutes: int | None = Field(default=None, ge=SNOOZE_MINUTES[0], le=SNOOZE_MINUTES[1])


class RevocationBody(_Model):
    """`{"jti"}` or `{"user_id", "issued_before"?}`; `expires_at`: when the tokens expire."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["jti"], "properties": {"jti": {"type": "string"}}},
                {"required": ["user_id"], "properties": {"user_id": {"type": "string"}}},
            ]
        },
    )
    jti: str | None = Field(default=None, min_length=1, max_length=256)
    user_id: str | None = Field(default=None, pattern=IDENT_PATTERN)
    issued_before: float | None = None
    expires_at: float | None = None

    @model_validator(mode="after")
    def _one(self) -> RevocationBody:
        if (self.jti is None) == (self.user_id is None):
            raise ValueError("exactly one of jti or user_id")
        return self


class MaintenanceBody(_Model):
    """`POST /api/v1/maintenance`: sites quiet from `starts_at` (default now) to `ends_at`
    (ISO-8601 or unix seconds)."""

    site_ids: list[str] = Field(min_length=1, max_length=1000)
    starts_at: str | float | None = None
    ends_at: str | float
    reason: str = Field(default="", max_length=500)


class Matchers(_Model):
    site_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    kpi: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    severity: Literal["critical", "major", "minor", "warning", "info"] | None = None
    incident_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    source: str | None = Field(default=None, max_length=64)


class SilenceBody(_Model):
    """`POST /api/v1/silences`: every matcher must equal the incident's."""

    matchers: Matchers
    starts_at: str | float | None = None
    ends_at: str | float
    comment: str = Field(default="", max_length=2000)


class OverrideBody(_Model):
    """`POST /api/v1/oncall/overrides`: `user_id` on call in [starts_at, ends_at), in
    `replaces`' place (a shift swap) or in addition."""

    schedule: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")
    user_id: str = Field(pattern=r"^[A-Za-z0-9_.\-@]{1,128}$")
    starts_at: AwareDatetime = Field(strict=False)  # ISO-8601 text in JSON
    ends_at: AwareDatetime = Field(strict=False)
    replaces: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-@]{1,128}$")


class OverrideView(BaseModel):
    id: str
    schedule: str
    user_id: str
    starts_at: str
    ends_at: str
    replaces: str | None


class OverrideList(BaseModel):
    overrides: list[OverrideView]


class OnCallNow(BaseModel):
    schedule: str
    users: list[str]
    until: str | None = Field(description="when who is on call next changes")


class OnCallList(BaseModel):
    oncall: list[OnCallNow]


class ShiftView(BaseModel):
    user_id: str
    start: str
    end: str
    source: str = Field(description="the layer's name, or override")


class ShiftList(BaseModel):
    shifts: list[ShiftView]


class HeartbeatView(BaseModel):
    name: str
    kind: Literal["http", "kpi"]
    state: Literal["inactive", "healthy", "unhealthy"]
    last_ping: str | None
    timeout_s: float
    site_id: str | None


class HeartbeatList(BaseModel):
    heartbeats: list[HeartbeatView]


class Pinged(BaseModel):
    ok: Literal[True] = True


class Times(BaseModel):
    p50: float | None
    p90: float | None
    mean: float | None


class ResponseGroup(BaseModel):
    key: str
    incidents: int
    acknowledged: int
    resolved: int
    escalated: int = Field(description="incidents with at least one page")
    pages: int
    mtta_s: Times
    mttr_s: Times


class ResponseReport(BaseModel):
    from_: str = Field(alias="from")
    to: str
    group_by: Literal["site", "region", "policy", "severity", "user"]
    groups: list[ResponseGroup]


class Shift(BaseModel):
    from_: str | None = Field(alias="from")
    to: str | None
    users: list[str]


class Handover(BaseModel):
    schedule: str
    shift: Shift
    opened: list[str]
    acknowledged: list[str]
    resolved: list[str]
    paged: list[str]
    open: list[Incident]
    snoozed: list[Incident]
    ending_next: dict[str, list[dict[str, Any]]] = Field(
        description="maintenance windows and silences ending before the next shift"
    )


class _MethodBody(_Model):
    verified: bool | None = Field(default=None, description="admins, for others: linked")


def _matching(regex: re.Pattern[str], what: str) -> Callable[[str], str]:
    """A check that `regex` matches (its pattern is also in the document), `what` if not."""

    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(what)
        return value

    return check


Phone = Annotated[
    str,
    AfterValidator(_matching(E164, "an E.164 number such as +254712345678")),
    WithJsonSchema({"type": "string", "pattern": E164.pattern}),
]
Email = Annotated[
    str,
    AfterValidator(_matching(EMAIL, "an email address")),
    WithJsonSchema({"type": "string", "pattern": EMAIL.pattern}),
]
SlackUser = Annotated[
    str,
    AfterValidator(_matching(SLACK_USER, "a Slack user id such as U024BE7LH")),
    WithJsonSchema({"type": "string", "pattern": SLACK_USER.pattern}),
]


class PhoneMethodBody(_MethodBody):
    type: Literal["sms", "voice"]
    value: Phone


class EmailMethodBody(_MethodBody):
    type: Literal["email"]
    value: Email


class SlackMethodBody(_MethodBody):
    type: Literal["slack"]
    value: SlackUser


class WebPushMethodBody(_MethodBody):
    type: Literal["webpush"]
    value: str = Field(min_length=1, max_length=64, description="one of my push subscriptions")


class ContactMethodBody(
    RootModel[
        Annotated[
            PhoneMethodBody | EmailMethodBody | SlackMethodBody | WebPushMethodBody,
            Field(discriminator="type"),
        ]
    ]
):
    """`{type, value, verified?}`: the value's form depends on the type."""


class ContactMethodView(BaseModel):
    id: str
    type: str
    value: str
    verified: bool
    disabled: bool


class ContactMethodList(BaseModel):
    contact_methods: list[ContactMethodView]


class VerifyBody(_Model):
    code: str = Field(pattern=r"^\s*\d{6}\s*$")


class Verified(BaseModel):
    verified: Literal[True] = True


class RuleView(BaseModel):
    after: str = Field(description="0m..24h after the page")
    contact_method_id: str


class NotificationRules(BaseModel):
    default: list[RuleView] = Field(default_factory=list)
    important: list[RuleView] = Field(
        default_factory=list, description="for critical incidents, when not empty"
    )


class RuleBody(_Model):
    after: str = Field(
        "0m", pattern=r"^\d{1,5}(\.\d{1,3})?(ms|s|m|h)$", description="after the page, at most 24h"
    )
    contact_method_id: str = Field(min_length=1, max_length=64, description="one of mine")


class NotificationRulesBody(_Model):
    """`PUT /api/v1/me/notification-rules`: both lists replace what was there."""

    default: list[RuleBody] = Field(default_factory=list, max_length=20)
    important: list[RuleBody] = Field(default_factory=list, max_length=20)


class OidcClient(BaseModel):
    issuer: str
    client_id: str
    scopes: str


class ClientConfig(BaseModel):
    oidc: OidcClient | None


class Error(BaseModel):
    ok: Literal[False] = False
    error: str


class ActionAccepted(BaseModel):
    ok: Literal[True] = True
    incident_id: str
    action: str


class NotificationsPage(BaseModel):
    notifications: list[dict[str, Any]]
    next: str | None


class Incident(BaseModel):
    incident_id: str
    status: Literal["open", "acknowledged", "snoozed", "resolved"]
    severity: str
    site_id: str | None
    title: str
    opened_at: str | None
    acknowledged_by: str | None = None
    assignee: str | None = None
    suppressed: dict[str, Any] | None = None
    caused_by: str | None = Field(
        default=None, description="the parent site whose outage this incident follows from"
    )
    affected_sites: list[str] | None = Field(
        default=None, description="the sites that depend on this incident's site (sites.yaml)"
    )
    snoozed_until: str | None = None
    escalation_level: int | None = None
    last_event_id: str | None = None


class IncidentList(BaseModel):
    incidents: list[Incident]


class Timeline(BaseModel):
    incident_id: str
    timeline: list[dict[str, Any]]


class AuditRecord(BaseModel):
    at: str
    tenant_id: str | None
    actor: str | None
    action: str
    target: str | None
    result: Literal["ok", "refused"]
    reason: str | None = None
    source: Literal["socket", "ws", "sse", "http", "kafka", "config", "cli"]
    remote_addr: str | None = None


class AuditPage(BaseModel):
    records: list[AuditRecord]
    next: str | None


class Revocation(BaseModel):
    tenant_id: str
    jti: str | None = None
    user_id: str | None = None
    issued_before: float | None = None
    until: float
    at: float
    by: str


class RevocationCreated(BaseModel):
    ok: Literal[True] = True
    revocation: Revocation


class RevocationList(BaseModel):
    revocations: list[Revocation]


class PresenceUser(BaseModel):
    user_id: str
    roles: list[str]
    connections: int
    since: str


class PresenceList(BaseModel):
    users: list[PresenceUser]


class Thresholds(BaseModel):
    tenant_id: str
    generation: int | None = None
    rules: dict[str, Any]


class Health(BaseModel):
    ok: bool


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Any]


class Created(BaseModel):
    ok: Literal[True] = True
    id: str


class Deleted(BaseModel):
    ok: Literal[True] = True
    id: str


class WindowList(BaseModel):
    windows: list[dict[str, Any]]


class SilenceList(BaseModel):
    silences: list[dict[str, Any]]


class PushKeys(_Model):
    p256dh: str = Field(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_\-=]+$")
    auth: str = Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_\-=]+$")


# an https URL, or http on a loopback address (a local push service in tests)
ENDPOINT_PATTERN = (
    r"^(https://[A-Za-z0-9.\-]+|http://(localhost|127\.0\.0\.1|\[::1\]))(:[0-9]{1,5})?(/[!-~]*)?$"
)


class PushSubscriptionBody(_Model):
    """`POST /api/v1/push/subscriptions`: the browser's `PushSubscription.toJSON()`."""

    endpoint: str = Field(min_length=8, max_length=2000, pattern=ENDPOINT_PATTERN)
    expirationTime: float | None = None
    keys: PushKeys


class PushUnsubscribeBody(_Model):
    endpoint: str = Field(min_length=8, max_length=2000)


class PushCreated(BaseModel):
    ok: bool
    id: str
    user_id: str


class PushSubscriptionList(BaseModel):
    subscriptions: list[dict[str, Any]]


class VapidPublicKey(BaseModel):
    public_key: str


class SiteView(BaseModel):
    id: str
    name: str
    region: str | None
    lat: float | None
    lon: float | None
    depends_on: list[str]
    site_id: str = Field(description="the same as id (its earlier name)")
    status: str | None
    worst_severity: str | None
    open_incidents: int
    maintenance: dict[str, Any] | None


class SiteDetail(SiteView):
    dependents: list[str] = Field(description="the sites that depend on it directly")
    incidents: list[Incident]
    kpis: dict[str, Any] | None = Field(description="the latest KPI snapshot")


class SiteList(BaseModel):
    sites: list[SiteView]


class IntegrationBody(RootModel[AmWebhook | GenericAlert | list[GenericAlert]]):
    """What an inbound integration takes: Alertmanager's webhook (version 4) for
    `kind: alertmanager`, the generic shape (one or a list) for `kind: generic`."""


class IngestAccepted(BaseModel):
    ok: Literal[True] = True
    received: int = Field(description="alerts in the request")
    produced: int = Field(description="records the broker acknowledged (repeats are skipped)")


SseEventName = Literal[
    "connection_established",
    "escalation",
    "incident_alert",
    "incident_update",
    "incident_viewers",
    "kpi_update",
    "presence",
    "site_status",
    "sync_complete",
    "system_notification",
]
assert NOTIFICATION_TYPES <= set(SseEventName.__args__)  # type: ignore[attr-defined]


class SseEvent(BaseModel):
    """One Server-Sent Event of the stream: `data` is the event as JSON (a wire event)."""

    event: SseEventName | None = Field(None, description="absent on the stream's first `retry:`")
    data: str | None = Field(None, description="the event, JSON")
    id: str | None = Field(None, description="its history id (resume with Last-Event-ID)")
    retry: int | None = None


class Route(NamedTuple):
    method: str
    path: str
    summary: str
    response: type[BaseModel] | None  # None: not JSON (text, HTML, a stream)
    body: type[BaseModel] | None = None
    auth: bool = True
    query: type[BaseModel] | None = None  # sio_server/api/queries.py: what the handler parses
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
