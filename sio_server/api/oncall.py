"""`/api/v1/oncall`: who is on call, the resolved shifts, an iCal feed, and overrides.

Everything is of the caller's tenant: a schedule of another tenant is answered as an
unknown one. Overrides are made by admins, and by a user giving away their own shift
(`replaces` is the caller); each create and delete is audited (`override_create`,
`override_delete`).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from escalation.oncall.directory import OnCallDirectory
from escalation.oncall.overrides import override_view
from escalation.oncall.rotation import Override, Shift
from escalation.oncall.schedule import Schedule
from notify_core.clock import iso
from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog
from sio_server.admission.auth import AuthError, Principal
from sio_server.api.http import ApiGate, audit_http, authenticated, error_reply, json_reply
from sio_server.contract.models import OverrideBody
from sio_server.contract.queries import (
    CalendarQuery,
    OnCallQuery,
    RequestError,
    ScheduleQuery,
    ShiftsQuery,
    instant,
    parse_body,
    parse_query,
)

ICS_DAYS = 60
MAX_SHIFT_SPAN = timedelta(days=400)


def _iso(t: datetime) -> str:
    return iso(t, "seconds")


def shift_view(s: Shift) -> dict[str, Any]:
    return {"user_id": s.user_id, "start": _iso(s.start), "end": _iso(s.end), "source": s.source}


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 3.1: lines longer than 75 octets continue on the next after a space."""
    out: list[str] = []
    raw = line.encode()
    while len(raw) > 75:
        cut = 75 if not out else 74
        while cut and (raw[cut] & 0xC0) == 0x80:  # never inside a UTF-8 sequence
            cut -= 1
        out.append(raw[:cut].decode())
        raw = raw[cut:]
    out.append(raw.decode())
    return "\r\n ".join(out)


def ics(tenant: str, schedule: Schedule, shifts: list[Shift], now: datetime) -> str:
    """An iCalendar file: one VEVENT per final shift, times in UTC, a UID that stays the
    same for the same shift (tenant, schedule, user, start, source)."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//towerco-notify//on-call//EN",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{_ics_text(f'On call: {schedule.name}')}",
    ]
    for s in shifts:
        ident = f"{tenant}|{schedule.name}|{s.user_id}|{_iso(s.start)}|{s.source}"
        uid = hashlib.sha256(ident.encode()).hexdigest()[:32]
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}@towerco-notify",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{s.start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}",
            f"DTEND:{s.end.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}",
            f"SUMMARY:{_ics_text(f'On call ({schedule.name}): {s.user_id}')}",
            f"DESCRIPTION:{_ics_text(f'source: {s.source}')}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


class OnCallApi:
    def __init__(self, gate: ApiGate, directory: OnCallDirectory, audit: AuditLog | None) -> None:
        self.gate = gate
        self._auth = gate.auth
        self.directory = directory
        self.audit = audit

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/oncall", self.who)
        app.router.add_get("/api/v1/oncall/shifts", self.shifts)
        app.router.add_post("/api/v1/oncall/overrides", self.create_override)
        app.router.add_get("/api/v1/oncall/overrides", self.list_overrides)
        app.router.add_delete("/api/v1/oncall/overrides/{id}", self.delete_override)
        app.router.add_get("/api/v1/oncall/{schedule}.ics", self.calendar)

    def _schedule(self, p: Principal, name: str | None) -> Schedule:
        found = self.directory.schedule(p.tenant_id, name) if name else None
        if found is None:
            raise ValueError(f"schedule: no such schedule (got {str(name)[:64]!r})")
        return found

    @authenticated("oncall")
    async def who(self, request: web.Request, p: Principal) -> web.Response:
        q = parse_query(request.query, OnCallQuery)
        at = instant(q.at, datetime.now(UTC))
        try:
            name = q.schedule
            schedules = [self._schedule(p, name)] if name else self.directory.of_tenant(p.tenant_id)
        except ValueError as exc:
            return error_reply(400, str(exc))
        out = []
        for schedule in schedules:
            now = await self.directory.now(p.tenant_id, schedule, at)
            now["until"] = _iso(now["until"]) if now["until"] is not None else None
            out.append(now)
        return json_reply({"oncall": out})

    @authenticated("oncall")
    async def shifts(self, request: web.Request, p: Principal) -> web.Response:
        q = parse_query(request.query, ShiftsQuery)
        try:
            schedule = self._schedule(p, q.schedule)
            start = instant(q.from_, datetime.now(UTC))
            end = instant(q.to, start + timedelta(days=7))
            if end <= start:
                raise ValueError("to: must be after from")
            if end - start > MAX_SHIFT_SPAN:
                raise ValueError(f"to: at most {MAX_SHIFT_SPAN.days} days after from")
        except ValueError as exc:
            return error_reply(400, str(exc))
        found = await self.directory.shifts(p.tenant_id, schedule, start, end)
        return json_reply({"shifts": [shift_view(s) for s in found]})

    async def calendar(self, request: web.Request) -> web.Response:
        """Bearer, or `?token=` (calendar apps cannot send headers)."""
        try:
            q = parse_query(request.query, CalendarQuery)
        except RequestError as exc:
            return error_reply(400, str(exc))
        try:
            principal = await self.gate.principal(request)
        except AuthError:
            try:
                principal = await self._auth.authenticate(q.token or "")
            except AuthError:
                metrics.HTTP_REQUESTS.labels("oncall", "401").inc()
                return error_reply(401, "authentication failed")
        try:
            schedule = self._schedule(principal, request.match_info["schedule"])
        except ValueError as exc:
            return error_reply(404, str(exc))
        now = datetime.now(UTC).replace(microsecond=0)
        found = await self.directory.shifts(
            principal.tenant_id, schedule, now, now + timedelta(days=ICS_DAYS)
        )
        if q.user_id:
            found = [s for s in found if s.user_id == q.user_id]
        body = ics(principal.tenant_id, schedule, found, now)
        return web.Response(
            text=body,
            content_type="text/calendar",
            headers={"Cache-Control": "private, max-age=300"},
        )

    @authenticated("oncall")
    async def create_override(self, request: web.Request, p: Principal) -> web.Response:
        try:
            body = await parse_body(request, OverrideBody)
            self._schedule(p, body.schedule)
            if body.ends_at <= body.starts_at:
                raise ValueError("ends_at: must be after starts_at")
        except ValueError as exc:
            metrics.HTTP_REQUESTS.labels("oncall", "400").inc()
            return error_reply(400, str(exc))
        giving_away = body.replaces is not None and body.replaces == p.user_id
        if not p.has_any_role("admin") and not giving_away:
            return error_reply(
                403, "forbidden: admins override; others only give away their own shift"
            )
        override = Override(
            uuid.uuid4().hex[:12],
            body.schedule,
            body.user_id,
            body.starts_at.astimezone(UTC),
            body.ends_at.astimezone(UTC),
            body.replaces,
        )
        await self.directory.overrides.add(p.tenant_id, override, datetime.now(UTC))
        await audit_http(self.audit, p, "override_create", override.id, request)
        metrics.HTTP_REQUESTS.labels("oncall", "201").inc()
        return json_reply(override_view(override), 201)

    @authenticated("oncall")
    async def list_overrides(self, request: web.Request, p: Principal) -> web.Response:
        name = parse_query(request.query, ScheduleQuery).schedule
        found = await self.directory.overrides.all(p.tenant_id)
        if name:
            found = [o for o in found if o.schedule == name]
        return json_reply({"overrides": [override_view(o) for o in found]})

    @authenticated("oncall")
    async def delete_override(self, request: web.Request, p: Principal) -> web.Response:
        ident = request.match_info["id"]
        found = [o for o in await self.directory.overrides.all(p.tenant_id) if o.id == ident]
        if not found:
            return error_reply(404, "no such override")
        mine = found[0].replaces == p.user_id
        if not p.has_any_role("admin") and not mine:
            return error_reply(403, "forbidden: admins, or the user who gave the shift away")
        await self.directory.overrides.delete(p.tenant_id, ident)
        await audit_http(self.audit, p, "override_delete", ident, request)
        return web.Response(status=204)
