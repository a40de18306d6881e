"""`/api/v1/maintenance` and `/api/v1/silences`: windows and silences made over HTTP.

Operators and admins create them (a site-restricted user only for its own sites, and
silences naming one of them); every create and end goes to the audit trail. They take
effect within a second on every process (notify_core/suppression/store.py).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from notify_core.clock import iso_s
from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog
from notify_core.suppression.policy import Silence, Window
from notify_core.suppression.store import SuppressionStore, window_view
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, audit_http, authenticated, error_reply, json_reply
from sio_server.contract.models import MaintenanceBody, SilenceBody
from sio_server.contract.queries import parse_body

MAKERS = ("operator", "admin")


LATEST = 253402300799.0  # 9999-12-31T23:59:59Z: the last instant a timestamp can show


def _when(value: str | float | None, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _span(starts_at: str | float | None, ends_at: str | float, now: float) -> tuple[float, float]:
    """[starts, ends) in unix seconds; ValueError names the field at fault."""
    try:
        starts = _when(starts_at, now)
    except ValueError:
        raise ValueError(f"starts_at: ISO-8601 or unix seconds (got {starts_at!r:.64})") from None
    try:
        ends = _when(ends_at, now)
    except ValueError:
        raise ValueError(f"ends_at: ISO-8601 or unix seconds (got {ends_at!r:.64})") from None
    if ends <= starts or ends <= now:
        raise ValueError("ends_at: must be after starts_at and in the future")
    if ends > LATEST:
        raise ValueError("ends_at: at the latest 9999-12-31T23:59:59Z")
    if starts < 0:
        raise ValueError("starts_at: not before 1970-01-01T00:00:00Z")
    return starts, ends


def silence_view(s: Silence) -> dict[str, Any]:
    return {**s._asdict(), "starts_at": _iso(s.starts_at), "ends_at": _iso(s.ends_at)}


def _iso(ts: float) -> str:
    return iso_s(ts)


class SuppressionApi:
    def __init__(self, gate: ApiGate, store: SuppressionStore, audit: AuditLog | None) -> None:
        self.gate = gate
        self.store = store
        self.audit = audit

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/maintenance", self.create_window)
        app.router.add_get("/api/v1/maintenance", self.list_windows)
        app.router.add_delete("/api/v1/maintenance/{id}", self.delete_window)
        app.router.add_post("/api/v1/silences", self.create_silence)
        app.router.add_get("/api/v1/silences", self.list_silences)
        app.router.add_delete("/api/v1/silences/{id}", self.delete_silence)

    @authenticated("maintenance")
    async def create_window(self, request: web.Request, p: Principal) -> web.Response:
        if not p.has_any_role(*MAKERS):
            return error_reply(403, "forbidden: needs role operator or admin")
        try:
            body = await parse_body(request, MaintenanceBody)
            now = time.time()
            starts, ends = _span(body.starts_at, body.ends_at, now)
        except ValueError as exc:
            metrics.HTTP_REQUESTS.labels("maintenance", "400").inc()
            return error_reply(400, str(exc))
        denied = [s for s in body.site_ids if not p.can_see_site(s)]
        if denied:
            return error_reply(403, f"forbidden: site_ids not yours: {denied[:10]}")
        window = Window(
            uuid.uuid4().hex[:12],
            p.tenant_id,
            frozenset(body.site_ids),
            starts,
            ends,
            reason=body.reason,
        )
        await self.store.put_window(window)
        await audit_http(self.audit, p, "maintenance_start", window.id, request)
        metrics.HTTP_REQUESTS.labels("maintenance", "201").inc()
        return json_reply({"ok": True, **window_view(window), "by": p.user_id}, 201)

    @authenticated("maintenance")
    async def list_windows(self, request: web.Request, p: Principal) -> web.Response:
        windows = [
            window_view(w)
            for w in self.store.windows(p.tenant_id)
            if p.sites is None or w.site_ids & p.sites
        ]
        return json_reply({"windows": windows})

    @authenticated("maintenance")
    async def delete_window(self, request: web.Request, p: Principal) -> web.Response:
        if not p.has_any_role(*MAKERS):
            return error_reply(403, "forbidden: needs role operator or admin")
        ident = request.match_info["id"]
        window = self.store.window(p.tenant_id, ident)
        if window is None or (p.sites is not None and not window.site_ids <= p.sites):
            return error_reply(404, "no such maintenance window")
        await self.store.delete("w", p.tenant_id, ident)
        await audit_http(self.audit, p, "maintenance_end", ident, request)
        return json_reply({"ok": True, "id": ident})

    @authenticated("silences")
    async def create_silence(self, request: web.Request, p: Principal) -> web.Response:
        if not p.has_any_role(*MAKERS):
            return error_reply(403, "forbidden: needs role operator or admin")
        try:
            body = await parse_body(request, SilenceBody)
            now = time.time()
            starts, ends = _span(body.starts_at, body.ends_at, now)
            matchers = body.matchers.model_dump(exclude_none=True)
            if not matchers:
                raise ValueError(
                    "matchers: at least one of site_id, kpi, severity, incident_id, source"
                )
        except ValueError as exc:
            metrics.HTTP_REQUESTS.labels("silences", "400").inc()
            return error_reply(400, str(exc))
        site = matchers.get("site_id")
        if p.sites is not None and (site is None or site not in p.sites):
            return error_reply(403, "forbidden: a site-restricted user silences only its own sites")
        silence = Silence(
            uuid.uuid4().hex[:12], p.tenant_id, matchers, starts, ends, body.comment, p.user_id
        )
        await self.store.put_silence(silence)
        await audit_http(self.audit, p, "silence_create", silence.id, request)
        metrics.HTTP_REQUESTS.labels("silences", "201").inc()
        return json_reply({"ok": True, **silence_view(silence)}, 201)

    @authenticated("silences")
    async def list_silences(self, request: web.Request, p: Principal) -> web.Response:
        silences = [
            silence_view(s)
            for s in self.store.silences(p.tenant_id)
            if p.sites is None or s.matchers.get("site_id") in p.sites
        ]
        return json_reply({"silences": silences})

    @authenticated("silences")
    async def delete_silence(self, request: web.Request, p: Principal) -> web.Response:
        if not p.has_any_role(*MAKERS):
            return error_reply(403, "forbidden: needs role operator or admin")
        ident = request.match_info["id"]
        silence = self.store.silence(p.tenant_id, ident)
        if silence is None or (
            p.sites is not None and silence.matchers.get("site_id") not in p.sites
        ):
            return error_reply(404, "no such silence")
        await self.store.delete("s", p.tenant_id, ident)
        await audit_http(self.audit, p, "silence_expire", ident, request)
        return json_reply({"ok": True, "id": ident})
