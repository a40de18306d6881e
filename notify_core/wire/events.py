"""Wire shapes: Kafka envelopes in, notifications out.

Input models are pydantic v2 so that every rejection names the field path and the
value at fault (that reason travels to the dead-letter topic). Output
notifications are plain dicts, built once and serialised once per emit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, Protocol, TypeGuard

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from notify_core import clock

# Ids used inside room names and Redis keys: no ':' or spaces, so that
# `site:{tenant}:{site}` can never be forged by a crafted id.
IDENT_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
_IDENT_RE = re.compile(IDENT_PATTERN.replace("$", r"\Z"))  # as pydantic's: no final \n
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
# a naive timestamp is taken as UTC
EventTime = Annotated[datetime, AfterValidator(lambda t: t if t.tzinfo else t.replace(tzinfo=UTC))]


# Incident ids may also hold ':' (namespaced ids minted here: `am:<fingerprint>` from
# Alertmanager, `heartbeat:<name>`): they never start a room name or a key's tenant part.
INCIDENT_ID_PATTERN = r"^[A-Za-z0-9_.\-:]{1,128}$"
_INCIDENT_ID_RE = re.compile(INCIDENT_ID_PATTERN.replace("$", r"\Z"))
IncidentId = Annotated[str, StringConstraints(pattern=INCIDENT_ID_PATTERN)]


def is_ident(value: object) -> TypeGuard[str]:
    """True for a tenant, site, user or KPI id (1-64 of [A-Za-z0-9_.-])."""
    return isinstance(value, str) and _IDENT_RE.match(value) is not None


def is_incident_id(value: object) -> TypeGuard[str]:
    """True for an incident id: an id as above, or one namespaced with ':' (1-128)."""
    return isinstance(value, str) and _INCIDENT_ID_RE.match(value) is not None


TOPIC_ALERTS = "towerco.incidents.alerts"
TOPIC_KPIS = "towerco.kpis.updates"
TOPIC_SITES = "towerco.sites.status"
TOPIC_ACTIONS = "towerco.incidents.actions"
TOPIC_DEADLETTER = "towerco.notify.deadletter"
TOPIC_AUDIT = "towerco.notify.audit"
INPUT_TOPICS = (TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES, TOPIC_ACTIONS)
ALL_TOPICS = (*INPUT_TOPICS, TOPIC_DEADLETTER, TOPIC_AUDIT)

Severity = Literal["critical", "major", "minor", "warning", "info"]
# ADR-010's producers say high/medium/low; its bridge defaults a missing severity to medium
SEVERITY_ALIASES = {"high": "major", "medium": "minor", "low": "warning"}
DEFAULT_SEVERITY: Severity = "minor"
Priority = Literal["info", "warning", "error", "critical"]
# this daemon's earlier notice vocabulary, still accepted from existing producers
PRIORITY_ALIASES = {"high": "error", "normal": "info", "low": "info"}


def _canonical(aliases: Mapping[str, str], default: str) -> Any:
    """A before-validator: case folded, aliases mapped, null taken as the default; what
    is still not a canonical word fails the Literal check, naming the value."""

    def canonical(value: Any) -> Any:
        if value is None:
            return default
        if isinstance(value, str):
            folded = value.strip().lower()
            return aliases.get(folded, folded)
        return value

    return BeforeValidator(canonical)


SiteState = Literal["up", "down", "degraded", "maintenance"]
Action = Literal["acknowledge", "resolve", "comment", "take", "release", "snooze", "unsnooze"]
ACTIONS: tuple[str, ...] = (
    "acknowledge",
    "resolve",
    "comment",
    "take",
    "release",
    "snooze",
    "unsnooze",
)
MAX_NOTE = 2000  # characters of plain text in a note or comment
SNOOZE_MINUTES = (1, 1440)
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
    timestamp: EventTime
    payload: dict[str, Any]


class IncidentPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    incident_id: IncidentId
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    severity: Annotated[Severity, _canonical(SEVERITY_ALIASES, DEFAULT_SEVERITY)] = DEFAULT_SEVERITY


class SiteStatusPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    status: SiteState


Note = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NOTE)]


class ActionPayload(_Strict):
    incident_id: IncidentId
    action: Action
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    note: Note | None = None  # with acknowledge/resolve; the text of a comment
    minutes: Annotated[int, Field(ge=SNOOZE_MINUTES[0], le=SNOOZE_MINUTES[1])] | None = None
    # set by this daemon's servers, which audit the action where it was taken; an action
    # without it came from another system and is audited with `source: kafka`
    via: Literal["server"] | None = None
    # where it was taken from outside the dashboard (an action link in a page), recorded in
    # the timeline and the `incident_update`
    source: Literal["link", "slack", "pagerduty", "sms", "voice"] | None = None

    @model_validator(mode="after")
    def _needs(self) -> ActionPayload:
        if self.action == "comment" and self.note is None:
            raise ValueError("note: required for a comment")
        if self.action == "snooze" and self.minutes is None:
            raise ValueError("minutes: required for snooze (1-1440)")
        return self


KpiValue = StrictInt | StrictFloat
# Beside the KPIs, a producer may send flags and labels (ADR-010's `threshold_breach: true`,
# a vendor name): they ride along in `kpi_data` unchanged and are never evaluated.
KpiLabel = Annotated[str, StringConstraints(max_length=256)]
KpiField = KpiValue | StrictBool | KpiLabel


def is_kpi_number(value: object) -> bool:
    """True for a value the thresholds evaluate (a number, not a flag or a label)."""
    cls = value.__class__
    return cls is float or cls is int


class KpiPayload(BaseModel):
    """`{kpi_name: number | bool | label}`; NaN/inf, nulls and nested values are refused."""

    model_config = ConfigDict(frozen=True)
    values: dict[Ident, KpiField] = Field(min_length=1, max_length=500)

    @field_validator("values")
    @classmethod
    def _finite(cls, values: dict[str, Any]) -> dict[str, Any]:
        return _check_finite(values)


def _check_finite(values: dict[str, Any]) -> dict[str, Any]:
    for name, number in values.items():
        if not is_kpi_number(number):
            continue
        try:
            finite = math.isfinite(number)
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            raise ValueError(f"{name}: {number} is not a finite number")
    return values


_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
# Checked by pydantic-core, no Python call per value: an integer past 64 bits is refused
# (orjson, on the slow path, reads it as a float: let that path decide), and so is a
# float that is not finite.
_FastKpiValue = (
    Annotated[StrictInt, Field(ge=_INT64_MIN, le=_UINT64_MAX)]
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
)


class KpiMessage(_Strict):
    """A whole `towerco.kpis.updates` message, validated from its JSON bytes in one pass.

    The hot path of the pipeline: it accepts exactly what `Envelope` + `KpiPayload`
    accept (anything it refuses is decoded again the slow way, which names the fault).
    """

    tenant_id: Ident
    site_id: Ident
    timestamp: EventTime
    payload: dict[Ident, _FastKpiValue | StrictBool | KpiLabel] = Field(
        min_length=1, max_length=500
    )


class Origin(Protocol):
    """Where an input message comes from: what every notification built from it carries."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def site_id(self) -> str | None: ...

    @property
    def timestamp(self) -> datetime: ...


class SystemNotice(_Strict):
    """A message on the Redis channel `system_notifications`."""

    tenant_id: Ident
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    message: Annotated[str, StringConstraints(max_length=10_000)] = ""
    priority: Annotated[Priority, _canonical(PRIORITY_ALIASES, "info")] = "info"
    timestamp: datetime | None = None


def describe_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: `field.path: message (got value)`."""
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err["loc"] if p != "values")
        loc = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "message"
        value = repr(err.get("input"))[:80]
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')} (got {value})")
    return "; ".join(parts)


@lru_cache(maxsize=4096)
def iso(ts: datetime) -> str:
    """UTC ISO 8601 with `Z`; cached, since the sites of a network report on the same
    collection instants (a burst of samples shares a few timestamps)."""
    return clock.iso(ts)


def now_iso() -> str:
    return iso(datetime.now(UTC))


def _base(kind: str, tenant_id: str, timestamp: datetime) -> dict[str, Any]:
    # `id` is filled in by the history when the event is stored.
    return {"id": None, "type": kind, "tenant_id": tenant_id, "timestamp": iso(timestamp)}


def incident_alert(
    env: Origin, inc: IncidentPayload, produced: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`priority` is the canonical severity; `incident` is the payload as produced
    (`produced`, ADR-010's words kept), else as validated."""
    event = _base("incident_alert", env.tenant_id, env.timestamp)
    if env.site_id:
        event["site_id"] = env.site_id
    event["priority"] = inc.severity
    body = dict(produced) if produced is not None else inc.model_dump()
    event["incident"] = {**body, "site_id": env.site_id}
    event["requires_acknowledgment"] = inc.severity in ACK_SEVERITIES
    return event


def kpi_update(
    env: Origin,
    values: Mapping[str, Any],
    breach: list[dict[str, Any]] | None = None,
    firing: bool = False,
) -> dict[str, Any]:
    """`kpi_data` is the sample as produced, with `threshold_breach` always a boolean:
    true when the producer said so or a rule of the site is `firing` after it."""
    data = dict(values)
    data["threshold_breach"] = firing or data.get("threshold_breach") is True
    event: dict[str, Any] = {  # one literal: built once per KPI sample
        "id": None,
        "type": "kpi_update",
        "tenant_id": env.tenant_id,
        "timestamp": iso(env.timestamp),
        "site_id": env.site_id,
        "kpi_data": data,
    }
    if breach:
        event["threshold_breach"] = breach
    return event


def kpi_no_data(
    tenant_id: str, site_id: str, at: datetime, record: dict[str, Any], firing: bool
) -> dict[str, Any]:
    """A KPI not seen for its `stale_after`: a `kpi_update` with no samples and one
    `no_data` breach record."""
    event = _base("kpi_update", tenant_id, at)
    event["site_id"] = site_id
    event["kpi_data"] = {"threshold_breach": firing}
    event["threshold_breach"] = [record]
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
    changed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What happened to an incident: its `status` after, who did it, and `changed` (what
    the action changed: `action`, `note`, `comment: {by, text}`, `assignee`, `until`)."""
    event = _base("incident_update", tenant_id, timestamp)
    event["incident_id"] = incident_id
    event["status"] = status
    event["by"] = by
    if site_id:
        event["site_id"] = site_id
    if changed:
        event.update(changed)
    return event


def system_notification(
    notice: SystemNotice, target_roles: list[str] | None = None, incident_id: str | None = None
) -> dict[str, Any]:
    """A notice to the tenant (or, `target_roles`, to those roles only)."""
    event = _base("system_notification", notice.tenant_id, notice.timestamp or datetime.now(UTC))
    event["title"] = notice.title
    event["message"] = notice.message
    event["priority"] = notice.priority
    if target_roles:
        event["target_roles"] = target_roles
    if incident_id:
        event["incident_id"] = incident_id
    return event


def escalation(
    tenant_id: str,
    incident_id: str,
    timestamp: datetime,
    level: int,
    cycle: int,
    policy: str,
    targets: list[Any],
    title: str,
    site_id: str | None = None,
    members: list[str] | None = None,
    paged: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A page: `level`/`cycle` 1-based; `targets` as described (secrets never); who it is
    for (`oncall`, `target_users`, `target_roles`, which the one routing function reads);
    a storm's chain pages once for its `members` (`incidents`). `paged`: what the on-call
    targets (`schedule`, `site_oncall`) resolved to, `{schedule, users}` each, in place of
    those targets; their users are paged by name."""
    event = _base("escalation", tenant_id, timestamp)
    on_call = [t for t in targets if t.schedule or t.site_oncall]
    described = [t.describe() for t in targets if t not in on_call] + list(paged or ())
    by_name = [t.user for t in targets if t.user]
    for entry in paged or ():
        by_name += [u for u in entry["users"] if u not in by_name]
    event.update(
        incident_id=incident_id,
        level=level,
        cycle=cycle,
        policy=policy,
        targets=described,
        oncall=any(t.oncall for t in targets),
        target_users=by_name,
        target_roles=[t.role for t in targets if t.role],
        incident={"incident_id": incident_id, "title": title},
    )
    if site_id:
        event["site_id"] = site_id
    if members:
        event["incident_id"] = members[0]
        event["incidents"] = list(members)
        event["incident"] = {
            "incident_id": members[0],
            "title": f"{len(members)} incidents at {site_id or 'the tenant'}",
        }
    return event


def presence(tenant_id: str, users: list[dict[str, Any]], listed: int) -> dict[str, Any]:
    """Who of the tenant is online: `count`, and at most `listed` of them (`truncated`)."""
    event = _base("presence", tenant_id, datetime.now(UTC))
    event["count"] = len(users)
    event["users"] = users[:listed]
    if len(users) > listed:
        event["truncated"] = True
    return event


def incident_viewers(tenant_id: str, incident_id: str, users: list[str]) -> dict[str, Any]:
    event = _base("incident_viewers", tenant_id, datetime.now(UTC))
    event["incident_id"] = incident_id
    event["users"] = users
    return event


def connection_established(
    tenant_id: str,
    user_id: str,
    roles: frozenset[str],
    sites: frozenset[str] | None,
    head: str | None,
    epoch: str | None,
    transport: str,
) -> dict[str, Any]:
    """The first event of every connection: who it is, where the history stands (`id`, the
    newest id; `epoch`, the history's life, to send back on resume)."""
    event = _base("connection_established", tenant_id, datetime.now(UTC))
    event["id"] = head or "0-0"
    event["epoch"] = epoch
    event["user_id"] = user_id
    event["roles"] = sorted(roles)
    event["sites"] = sorted(sites) if sites is not None else None
    event["transport"] = transport
    return event


def sync_complete(
    tenant_id: str,
    recovered_through: str,
    recovered: bool,
    replayed: int,
    reason: str | None,
    epoch: str | None,
    kpi_snapshot: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The end of a replay: `id` is the position recovered up to; `reason` when not
    `recovered`; `epoch` the history's current one (what to resume with next time)."""
    event = _base("sync_complete", tenant_id, datetime.now(UTC))
    event["id"] = recovered_through
    event["recovered"] = recovered
    event["replayed"] = replayed
    if reason:
        event["reason"] = reason
    event["epoch"] = epoch
    if kpi_snapshot is not None:
        event["kpi_snapshot"] = kpi_snapshot
    return event
