"""The HTTP API's shapes as pydantic models: request bodies, validated with these models by
the handlers themselves (`ActionBody`, `RevocationBody`, ...), and answers, described by
them in the OpenAPI document (`sio_server.contract.openapi`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

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

from escalation.people.contacts import E164, EMAIL, SLACK_USER
from notify_core.integrations.ingest import AmWebhook, GenericAlert
from notify_core.wire.events import (
    IDENT_PATTERN,
    MAX_NOTE,
    NOTIFICATION_TYPES,
    SNOOZE_MINUTES,
)


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
