"""Wire shapes: Kafka envelopes in, notifications out.

Input models are pydantic v2 so that every rejection names the field path and the
value at fault (that reason travels to the dead-letter topic). Output
notifications are plain dicts, built once and serialised once per emit.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
)

# Ids used inside room names and Redis keys: no ':' or spaces, so that
# `site:{tenant}:{site}` can never be forged by a crafted id.
IDENT_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
_IDENT_RE = re.compile(IDENT_PATTERN)
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]


def is_ident(value: object) -> TypeGuard[str]:
    """True for a tenant, site, user, incident or KPI id (1-64 of [A-Za-z0-9_.-])."""
    return isinstance(value, str) and _IDENT_RE.match(value) is not None


TOPIC_ALERTS = "towerco.incidents.alerts"
TOPIC_KPIS = "towerco.kpis.updates"
TOPIC_SITES = "towerco.sites.status"
TOPIC_ACTIONS = "towerco.incidents.actions"
TOPIC_DEADLETTER = "towerco.notify.deadletter"
INPUT_TOPICS = (TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES, TOPIC_ACTIONS)
ALL_TOPICS = (*INPUT_TOPICS, TOPIC_DEADLETTER)

Severity = Literal["critical", "major", "minor", "warning", "info"]
SiteState = Literal["up", "down", "degraded", "maintenance"]
Action = Literal["acknowledge", "resolve"]
ROLES = frozenset({"operator", "oncall", "admin"})

# Severities that need an operator to confirm they saw the alert.
ACK_SEVERITIES = frozenset({"critical", "major"})

NOTIFICATION_TYPES = frozenset(
    {
        "connection_established",
        "incident_alert",
        "kpi_update",
        "site_status",
        "system_notification",
        "escalation",
        "incident_update",
        "sync_complete",
    }
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(_Strict):
    tenant_id: Ident
    site_id: Ident | None = None
    timestamp: datetime
    payload: dict[str, Any]

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class IncidentPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    incident_id: Ident
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    severity: Severity


class SiteStatusPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    status: SiteState


class ActionPayload(_Strict):
    incident_id: Ident
    action: Action
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]


KpiValue = StrictInt | StrictFloat


class KpiPayload(BaseModel):
    """`{kpi_name: number}`; booleans, strings and NaN/inf are refused."""

    model_config = ConfigDict(frozen=True)
    values: dict[Ident, KpiValue] = Field(min_length=1, max_length=500)

    @field_validator("values")
    @classmethod
    def _finite(cls, values: dict[str, float]) -> dict[str, float]:
        for name, number in values.items():
            if not math.isfinite(number):
                raise ValueError(f"{name}: {number} is not a finite number")
        return values


class SystemNotice(_Strict):
    """A message on the Redis channel `system_notifications`."""

    tenant_id: Ident
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    message: Annotated[str, StringConstraints(max_length=10_000)] = ""
    priority: Literal["critical", "high", "normal", "low"] = "normal"
    timestamp: datetime | None = None


def describe_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: `field.path: message (got value)`."""
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err["loc"] if p != "values")
        loc = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "message"
        value = repr(err.get("input"))[:80]
        parts.append(f"{loc}: {err['msg']} (got {value})")
    return "; ".join(parts)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def _base(kind: str, tenant_id: str, timestamp: datetime) -> dict[str, Any]:
    # `id` is filled in by the history when the event is stored.
    return {"id": None, "type": kind, "tenant_id": tenant_id, "timestamp": iso(timestamp)}


def incident_alert(env: Envelope, inc: IncidentPayload) -> dict[str, Any]:
    event = _base("incident_alert", env.tenant_id, env.timestamp)
    if env.site_id:
        event["site_id"] = env.site_id
    event["priority"] = inc.severity
    event["incident"] = {**inc.model_dump(), "site_id": env.site_id}
    event["requires_acknowledgment"] = inc.severity in ACK_SEVERITIES
    return event


def kpi_update(
    env: Envelope, kpis: KpiPayload, breach: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    event = _base("kpi_update", env.tenant_id, env.timestamp)
    event["site_id"] = env.site_id
    event["kpi_data"] = dict(kpis.values)
    if breach:
        event["threshold_breach"] = breach
    return event


def site_status(env: Envelope, status: SiteStatusPayload) -> dict[str, Any]:
    event = _base("site_status", env.tenant_id, env.timestamp)
    event["site_id"] = env.site_id
    event["status"] = status.status
    details = {k: v for k, v in status.model_dump().items() if k != "status"}
    if details:
        event["details"] = details
    return event


def incident_update(
    tenant_id: str,
    incident_id: str,
    status: str,
    by: str,
    timestamp: datetime,
    site_id: str | None = None,
) -> dict[str, Any]:
    event = _base("incident_update", tenant_id, timestamp)
    event["incident_id"] = incident_id
    event["status"] = status
    event["by"] = by
    if site_id:
        event["site_id"] = site_id
    return event


def system_notification(notice: SystemNotice) -> dict[str, Any]:
    event = _base("system_notification", notice.tenant_id, notice.timestamp or datetime.now(UTC))
    event["title"] = notice.title
    event["message"] = notice.message
    event["priority"] = notice.priority
    return event
