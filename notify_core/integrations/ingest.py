"""Alerts from systems that do not write to Kafka, as the records they become.

Pure: a request body (Prometheus Alertmanager's webhook, version 4 - Grafana's alerting
webhook sends the same shape - or the generic JSON shape) and the integration it came
through in; out, the ADR-010 envelopes for `towerco.incidents.alerts` (firing) and
`towerco.incidents.actions` (resolved, actor `integration:<name>`). The HTTP handler
produces them and answers only after the broker acknowledged every one, so an alert
from Alertmanager takes the same at-least-once path as one written to Kafka.

An envelope depends only on the alert (its `startsAt` / `endsAt`, labels, annotations),
never on when it was received: the same alert sent again is the same record, which the
pipeline's history dedupe keeps once; `Ingested.incident` lets the handler skip what
would change nothing before producing it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from notify_core.integrations.config import Integration
from notify_core.wire.events import (
    SEVERITY_ALIASES,
    TOPIC_ACTIONS,
    TOPIC_ALERTS,
    IncidentId,
    Severity,
    describe_error,
    is_ident,
)

MAX_BODY = 1024 * 1024  # bytes of one request
MAX_ALERTS = 1000  # alerts of one request
MAX_TITLE = 500
CANONICAL: frozenset[str] = frozenset({"critical", "major", "minor", "warning", "info"})
# Prometheus rule authors write `error` for what ADR-010 calls high
EXTRA_SEVERITY_WORDS = {**SEVERITY_ALIASES, "error": "major"}


class IngestError(ValueError):
    """A bad body: the message names the field at fault (answered 400)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class AmAlert(_Body):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,64}$")]


class AmWebhook(_Body):
    version: Literal["4"]
    status: Literal["firing", "resolved"] | None = None
    alerts: list[AmAlert] = Field(max_length=MAX_ALERTS)


class GenericAlert(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    incident_id: IncidentId
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    severity: str | None = None
    site_id: str | None = None
    status: Literal["firing", "resolved"] = "firing"


class Ingested(BaseModel):
    """One record to produce, and what it does to its incident."""

    model_config = ConfigDict(frozen=True)
    topic: str
    key: bytes
    envelope: dict[str, Any]
    incident: str
    firing: bool
    severity: Severity | None = None  # firing: the canonical severity it opens with


def severity_of(word: str | None, default: Severity) -> Severity | None:
    """Ours for a severity word (case-insensitive; ADR-010's words, `error` = major);
    `default` when absent, None when it is a word we do not know."""
    if word is None or not word.strip():
        return default
    folded = word.strip().lower()
    folded = EXTRA_SEVERITY_WORDS.get(folded, folded)
    return folded if folded in CANONICAL else None  # type: ignore[return-value]


def _site(value: str | None, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not is_ident(value):
        raise IngestError(f"{field}: a site id is 1-64 of [A-Za-z0-9_.-] (got {value[:80]!r})")
    return value


def _iso(t: datetime) -> str:
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _firing(
    spec: Integration,
    incident: str,
    site: str | None,
    at: str,
    severity: Severity,
    fields: dict[str, Any],
) -> Ingested:
    payload = {"incident_id": incident, "severity": severity, **fields}
    payload["source"] = spec.kind
    payload["integration"] = spec.name
    envelope = {"tenant_id": spec.tenant, "site_id": site, "timestamp": at, "payload": payload}
    if site is None:
        del envelope["site_id"]
    key = f"{spec.tenant}/{incident}".encode()
    return Ingested(
        topic=TOPIC_ALERTS,
        key=key,
        envelope=envelope,
        incident=incident,
        firing=True,
        severity=severity,
    )


def _resolved(spec: Integration, incident: str, at: str) -> Ingested:
    payload = {"incident_id": incident, "action": "resolve", "user_id": f"integration:{spec.name}"}
    envelope = {"tenant_id": spec.tenant, "timestamp": at, "payload": payload}
    key = f"{spec.tenant}/{incident}".encode()
    return Ingested(
        topic=TOPIC_ACTIONS, key=key, envelope=envelope, incident=incident, firing=False
    )


def from_alertmanager(spec: Integration, body: Any, now: datetime) -> list[Ingested]:
    """Alertmanager's webhook (version 4) as records; IngestError names a bad field."""
    try:
        hook = AmWebhook.model_validate(body)
    except ValidationError as exc:
        raise IngestError(describe_error(exc)) from None
    out = []
    for i, alert in enumerate(hook.alerts):
        incident = f"am:{alert.fingerprint}"
        site = _site(alert.labels.get(spec.site_label), f"alerts.{i}.labels.{spec.site_label}")
        if alert.status == "resolved":
            ends = alert.endsAt if alert.endsAt and alert.endsAt.year > 1 else now
            out.append(_resolved(spec, incident, _iso(ends)))
            continue
        title = alert.annotations.get("summary") or alert.labels.get("alertname") or incident
        severity = severity_of(alert.labels.get("severity"), spec.default_severity)
        fields: dict[str, Any] = {
            "title": title[:MAX_TITLE],
            "description": alert.annotations.get("description", "")[:10_000],
            "labels": dict(alert.labels),
        }
        if alert.generatorURL:
            fields["generator_url"] = alert.generatorURL
        at = _iso(alert.startsAt)
        out.append(_firing(spec, incident, site, at, severity or spec.default_severity, fields))
    return out


def from_generic(spec: Integration, body: Any, now: datetime) -> list[Ingested]:
    """`{incident_id, title, ...}` or a list of them as records."""
    items = body if isinstance(body, list) else [body]
    if len(items) > MAX_ALERTS:
        raise IngestError(f"body: at most {MAX_ALERTS} alerts in one request (got {len(items)})")
    out = []
    at = _iso(now)
    for i, item in enumerate(items):
        where = f"{i}." if isinstance(body, list) else ""
        try:
            alert = GenericAlert.model_validate(item)
        except ValidationError as exc:
            raise IngestError(describe_error(exc, prefix=where)) from None
        site = _site(alert.site_id, f"{where}site_id")
        if alert.status == "resolved":
            out.append(_resolved(spec, alert.incident_id, at))
            continue
        severity = severity_of(alert.severity, spec.default_severity)
        if severity is None:
            raise IngestError(
                f"{where}severity: one of critical, major, minor, warning, info"
                f" (or high, medium, low, error) (got {alert.severity!r})"
            )
        fields = {"title": alert.title, "description": alert.description}
        out.append(_firing(spec, alert.incident_id, site, at, severity, fields))
    return out


def translate(spec: Integration, body: Any, now: datetime) -> list[Ingested]:
    if spec.kind == "alertmanager":
        return from_alertmanager(spec, body, now)
    return from_generic(spec, body, now)


def changes(item: Ingested, known: Any, at_ms: int) -> bool:
    """Would `item` change its incident (`known`: its IncidentState or None)? A repeat of
    a firing alert for an incident still open at that severity, a firing alert older than
    the incident's resolution, and a resolve of what is unknown or resolved change nothing."""
    if not item.firing:
        return known is not None and known.status != "resolved"
    if known is None:
        return True
    if known.status == "resolved":
        return not known.outdates(at_ms)
    return bool(known.severity != item.severity)
