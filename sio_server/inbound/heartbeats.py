"""`POST /api/v1/heartbeats/{tenant}/{name}` (a source saying it is alive; its key is the
only credential) and `GET /api/v1/heartbeats` (the caller's tenant: each heartbeat's state).

A wrong key and an unknown heartbeat are answered alike (401), audited and counted
against the address, as for the inbound integrations. The watch (notify_core/
heartbeat_watch.py) opens and resolves the incidents; a ping only records the time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from aiohttp import web

from notify_core.clock import iso_s
from notify_core.heartbeats.config import Heartbeats
from notify_core.heartbeats.policy import HeartbeatStore, state
from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog
from sio_server.admission.auth import Principal
from sio_server.admission.limits import AddressGuard
from sio_server.api.http import ApiGate, authenticated, json_reply
from sio_server.inbound.integrations import key_ok, refuse


class HeartbeatSources(NamedTuple):
    """What the API reads: the heartbeats in force and where pings are kept."""

    config: Callable[[], Heartbeats]
    store: HeartbeatStore


class HeartbeatsApi:
    def __init__(
        self,
        gate: ApiGate,
        sources: HeartbeatSources,
        audit: AuditLog | None,
        guard: AddressGuard,
    ) -> None:
        self.gate = gate
        self._heartbeats = sources.config
        self._store = sources.store
        self._audit = audit
        self._guard = guard

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/heartbeats/{tenant}/{name}", self.ping)
        app.router.add_get("/api/v1/heartbeats", self.list)

    async def ping(self, request: web.Request) -> web.Response:
        tenant, name = request.match_info["tenant"], request.match_info["name"]
        spec = self._heartbeats().get((tenant, name))
        expected = spec.key() if spec is not None and spec.kind == "http" else None
        if self._guard.blocked(request.remote) or not key_ok(expected, request):
            metrics.HEARTBEAT_PINGS.labels("refused").inc()
            known = tenant if spec is not None else None
            actor = f"heartbeat:{name[:64]}"
            return await refuse(self._audit, self._guard, known, actor, "heartbeat key", request)
        await self._store.ping(tenant, name, int(time.time() * 1000))
        metrics.HEARTBEAT_PINGS.labels("ok").inc()
        return json_reply({"ok": True})

    @authenticated("heartbeats")
    async def list(self, request: web.Request, p: Principal) -> web.Response:
        now_ms = int(time.time() * 1000)
        beats = await self._store.beats(p.tenant_id)
        out = []
        for hb in sorted(self._heartbeats().of_tenant(p.tenant_id), key=lambda h: h.name):
            if hb.site_id is not None and not p.can_see_site(hb.site_id):
                continue
            beat = beats.get(hb.name)
            last = beat.last_ping_ms if beat is not None else None
            out.append(
                {
                    "name": hb.name,
                    "kind": hb.kind,
                    "state": state(hb, beat, now_ms) if beat is not None else "inactive",
                    "last_ping": iso_s(last / 1000) if last is not None else None,
                    "timeout_s": hb.timeout,
                    "site_id": hb.site_id,
                }
            )
        return json_reply({"heartbeats": out})
