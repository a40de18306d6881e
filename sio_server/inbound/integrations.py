"""`POST /api/v1/integrations/{name}/alerts`: alerts from Alertmanager, Grafana and any
tool that can call a URL, into Kafka.

The integration's key (`?key=` or `Authorization: Bearer <key>`) is its only credential,
compared in constant time; a wrong or missing key, or a name that is not configured, is
answered 401 alike (names are not disclosed), audited and counted against the address
like a refused handshake. A body is translated whole before anything is produced
(`notify_core.integrations.ingest`: 400 naming the field, nothing produced), alerts that
would change nothing are skipped, and the rest are produced with the producer's `acks`:
the answer is 200 only after the broker acknowledged every record, 503 when it did not within
`NOTIFY_INGEST_TIMEOUT_S` (Alertmanager retries; a record that did get through is kept
once by the pipeline's dedupe).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from notify_core.integrations.config import Integration, Integrations
from notify_core.integrations.ingest import MAX_BODY, Ingested, IngestError, changes, translate
from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog, audit_record
from notify_core.state.incidents import IncidentStore
from sio_server.admission.limits import AddressGuard
from sio_server.api.http import error_reply, json_reply

log = logging.getLogger(__name__)

# (topic, key, value) records, produced and acknowledged by the broker, or an exception
RecordSink = Callable[[list[tuple[str, bytes, bytes]]], Awaitable[None]]


class IntegrationsApi:
    def __init__(
        self,
        integrations: Callable[[], Integrations],
        sink: RecordSink,
        incidents: IncidentStore | None,
        audit: AuditLog | None,
        guard: AddressGuard,
        timeout_s: float,
    ) -> None:
        """`integrations()`: those in force (integrations.yaml, swapped on reload)."""
        self._integrations = integrations
        self._sink = sink
        self._incidents = incidents
        self._audit = audit
        self._guard = guard
        self._timeout_s = timeout_s

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/integrations/{name}/alerts", self.alerts)

    async def alerts(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        spec = self._integrations().get(name)
        label = spec.name if spec is not None else "unknown"  # no label per made-up name
        if self._guard.blocked(request.remote) or not self._key_ok(spec, request):
            return await self._refused(spec, name, request)
        assert spec is not None
        body = await self._body(request)
        if isinstance(body, web.Response):
            metrics.INGEST.labels(label, "too_large" if body.status == 413 else "invalid").inc()
            return body
        try:
            items = translate(spec, body, datetime.now(UTC))
        except IngestError as exc:
            metrics.INGEST.labels(label, "invalid").inc()
            return error_reply(400, str(exc))
        todo = await self._changing(spec, items)
        records = [(i.topic, i.key, orjson.dumps(i.envelope)) for i in todo]
        try:
            if records:
                await asyncio.wait_for(self._sink(records), self._timeout_s)
        except Exception as exc:  # the broker is away or refused: the sender retries
            log.warning("integration %s: %d record(s) not produced: %r", name, len(records), exc)
            metrics.INGEST.labels(label, "unavailable").inc(len(records))
            return error_reply(503, "the message broker did not acknowledge; retry")
        metrics.INGEST.labels(label, "ok").inc(len(records))
        if len(items) > len(records):
            metrics.INGEST.labels(label, "unchanged").inc(len(items) - len(records))
        return json_reply(
            {"ok": True, "received": len(items), "produced": len(records)},
        )

    def _key_ok(self, spec: Integration | None, request: web.Request) -> bool:
        return key_ok(spec.key() if spec is not None else None, request)

    async def _refused(
        self, spec: Integration | None, name: str, request: web.Request
    ) -> web.Response:
        metrics.INGEST.labels(spec.name if spec else "unknown", "refused").inc()
        tenant = spec.tenant if spec is not None else None
        actor = f"integration:{name[:64]}"
        return await refuse(self._audit, self._guard, tenant, actor, "integration key", request)

    async def _body(self, request: web.Request) -> Any:
        """The JSON body, at most MAX_BODY bytes (413 beyond, 400 when it is not JSON).
        Read here, not by aiohttp: the app's own request limit is 64 KiB."""
        if (request.content_length or 0) > MAX_BODY:
            return error_reply(413, f"body: at most {MAX_BODY} bytes")
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return error_reply(413, f"body: at most {MAX_BODY} bytes")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return error_reply(400, "body: not JSON")

    async def _changing(self, spec: Integration, items: list[Ingested]) -> list[Ingested]:
        """The items that would change their incident (repeats are dropped here)."""
        if self._incidents is None or not items:
            return items
        keys = [(spec.tenant, i.incident) for i in items]
        known = await self._incidents.get_many(keys)
        out = []
        for item in items:
            at = datetime.fromisoformat(item.envelope["timestamp"].replace("Z", "+00:00"))
            if changes(item, known.get((spec.tenant, item.incident)), int(at.timestamp() * 1000)):
                out.append(item)
        return out


def key_ok(expected: str | None, request: web.Request) -> bool:
    """Does the request carry `expected` (`?key=` or `Authorization: Bearer`)? Compared in
    constant time even when there is nothing to compare with (an unknown name), so timing
    tells nothing about which names exist."""
    given = request.query.get("key")
    auth = request.headers.get("Authorization", "")
    if given is None and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    ok = hmac.compare_digest((given or "").encode(), (expected or "\x00").encode())
    return ok and expected is not None and bool(given)


async def refuse(
    audit: AuditLog | None,
    guard: AddressGuard,
    tenant: str | None,
    actor: str,
    what: str,
    request: web.Request,
) -> web.Response:
    """A refused key: 401 (the same for a wrong key and an unknown name), audited as
    `auth_refused`, and counted against the address like a refused handshake."""
    remote = request.remote
    blocked_now = guard.refused(remote)
    if audit is not None:
        record = audit_record(tenant, actor, "auth_refused", actor, "refused", "http", what, remote)
        await audit.record_quietly(record)
        if blocked_now:
            blocked = audit_record(
                None, None, "address_blocked", remote, "ok", "http", None, remote
            )
            await audit.record_quietly(blocked)
    return error_reply(401, "authentication failed")
