"""The tenant's security record for its admins: `GET /api/v1/audit` (the audit trail) and
`/api/v1/admin/revocations` (revoking a token by `jti`, or every token of a user issued
before a time; listing what is revoked)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog
from notify_core.revocations import DEFAULT_KEEP_S, Revocation, Revocations
from notify_core.wire.events import describe_error
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, audit_http, authenticated, error_reply, json_reply
from sio_server.contract.models import RevocationBody
from sio_server.contract.queries import AuditQuery, parse_query


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


class AdminApi:
    def __init__(
        self, gate: ApiGate, audit: AuditLog | None, revocations: Revocations | None
    ) -> None:
        self.gate = gate
        self.audit = audit
        self.revocations = revocations

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/audit", self.audit_records)
        app.router.add_post("/api/v1/admin/revocations", self.revoke)
        app.router.add_get("/api/v1/admin/revocations", self.revocations_list)

    @authenticated("audit")
    async def audit_records(self, request: web.Request, principal: Principal) -> web.Response:
        """The tenant's audit trail, for its admins: `{"records": [...], "next": cursor}`."""
        route = "audit"
        if not principal.has_any_role("admin"):
            metrics.HTTP_REQUESTS.labels(route, "403").inc()
            return error_reply(403, "forbidden: needs role admin")
        q = parse_query(request.query, AuditQuery)
        since, limit = q.since, q.limit
        if self.audit is None:
            return json_reply({"records": [], "next": since})
        records, cursor = await self.audit.copy.read(
            principal.tenant_id, since, limit, q.action or None
        )
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return json_reply({"records": records, "next": cursor})

    @authenticated("revocations")
    async def revoke(self, request: web.Request, principal: Principal) -> web.Response:
        """`{"jti": ...}` or `{"user_id": ..., "issued_before": <unix s, default now>}`, in
        the admin's own tenant; optional `expires_at` (unix s): when the tokens expire."""
        route = "revocations"
        if not principal.has_any_role("admin"):
            metrics.HTTP_REQUESTS.labels(route, "403").inc()
            return error_reply(403, "forbidden: needs role admin")
        try:
            body = await request.json()
        except ValueError:
            body = None
        try:
            revocation = revocation_from(body, principal)
        except ValueError as exc:
            metrics.HTTP_REQUESTS.labels(route, "400").inc()
            return error_reply(400, str(exc))
        if self.revocations is None:
            return error_reply(503, "revocation is not available on this server")
        await self.revocations.add(revocation)
        target = f"jti:{revocation.jti}" if revocation.jti else f"user:{revocation.user_id}"
        await audit_http(self.audit, principal, "revoke", target, request)
        metrics.HTTP_REQUESTS.labels(route, "201").inc()
        return json_reply({"ok": True, "revocation": revocation.view()}, 201)

    @authenticated("revocations")
    async def revocations_list(self, request: web.Request, principal: Principal) -> web.Response:
        if not principal.has_any_role("admin"):
            metrics.HTTP_REQUESTS.labels("revocations", "403").inc()
            return error_reply(403, "forbidden: needs role admin")
        listed = self.revocations.listed(principal.tenant_id) if self.revocations else []
        return json_reply({"revocations": [r.view() for r in listed]})
