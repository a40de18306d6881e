"""Server-Sent Events: `GET /api/v1/notifications/stream` (Bearer or `?token=`).

`text/event-stream`; each notification is `id: <id>`, `event: <type>`, `data: <json>`.
The browser's `EventSource` reconnects by itself and sends `Last-Event-ID`, which resumes
exactly after it (`?last_id=` and `?epoch=` too); `?kpi_sites=a,b` adds the KPI samples of
those sites the token may see. A comment line every 15 s keeps proxies from closing an
idle stream. One direction only: actions go through the HTTP API.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web

from notify_core.wire.rooms import site_room
from sio_server.admission.admit import AUTH_FAILED, Admission, Refused
from sio_server.admission.origin import OriginPolicy
from sio_server.contract.queries import RequestError, StreamQuery, parse_query
from sio_server.follower import LogFollower
from sio_server.streams.connections import ConnectionHub, StreamConnection

log = logging.getLogger(__name__)

PATH = "/api/v1/notifications/stream"


class SseFrames:
    """`id`/`event`/`data` lines; inside an HTTP/1.1 chunk when the response is chunked
    (written past aiohttp's writer, so the framing is ours: one chunk per event)."""

    name = "sse"

    def __init__(self, chunked: bool) -> None:
        self.chunked = chunked

    def frame(self, event: dict[str, Any], body: bytes, resume_point: bool = True) -> bytes:
        head = f"id: {event['id']}\n" if resume_point and event.get("id") else ""
        return self._chunk(f"{head}event: {event['type']}\ndata: ".encode() + body + b"\n\n")

    def keepalive(self) -> bytes | None:
        return self._chunk(b": keep-alive\n\n")

    def _chunk(self, data: bytes) -> bytes:
        if not self.chunked:
            return data
        return b"%x\r\n%b\r\n" % (len(data), data)


CHUNKED, PLAIN = SseFrames(True), SseFrames(False)


class EventStream:
    def __init__(
        self,
        admission: Admission,
        hub: ConnectionHub,
        origins: OriginPolicy,
        follower: LogFollower | None = None,
    ) -> None:
        self.admission = admission
        self.hub = hub
        self.origins = origins
        self.follower = follower

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not self.origins.check(origin, request.scheme, request.host, "sse"):
            return web.json_response({"ok": False, "error": "origin not allowed"}, status=403)
        try:
            query = parse_query(request.query, StreamQuery)
        except RequestError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        header = request.headers.get("Authorization", "")
        scheme, _, bearer = header.partition(" ")
        token = bearer.strip() if scheme.lower() == "bearer" else query.token
        conn_id = uuid.uuid4().hex
        try:
            principal = await self.admission.admit(token, request.remote, "sse", conn_id)
        except Refused as exc:
            status = 401 if str(exc) == AUTH_FAILED else 429
            return web.json_response({"ok": False, "error": str(exc)}, status=status)
        sites = query.sites
        last_id = request.headers.get("Last-Event-ID") or query.last_id
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        chunked = request.version >= (1, 1)
        if chunked:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b"retry: 2000\n\n")  # headers out; later writes are ours
        transport = request.transport
        assert transport is not None
        # closing from our side ends the handler, and aiohttp ends the response
        conn = StreamConnection(
            self.hub,
            principal,
            CHUNKED if chunked else PLAIN,
            transport,
            request.remote,
            close=lambda: None,
        )
        for site in sites:
            if principal.can_see_site(site):  # each an id: StreamQuery's pattern
                self.hub.join(conn, site_room(principal.tenant_id, site))
        if self.follower is not None:
            await self.follower.follow(principal.tenant_id)
        try:
            await self.hub.open(conn, last_id, query.epoch)
            await conn.wait_closed()
        finally:
            conn.abort()
            await self.admission.leave(conn_id)
            if self.follower is not None:
                self.follower.unfollow(principal.tenant_id)
        return resp
