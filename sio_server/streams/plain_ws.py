"""ADR-010's plain WebSocket: `GET /api/v1/notifications/ws/{tenant_id}/{user_id}?token=`.

JSON text frames, one object each. Server -> client: exactly the Socket.IO events'
payloads (each has its `type`), `connection_established` first. Client -> server:
`{"type": <client event>, ...its fields}`, answered `{"type": "<name>_result", "ok": ...}`
(`heartbeat` -> `heartbeat_ack`); anything unknown or malformed -> `{"type": "error"}` and
the socket stays open. The token's `tenant_id` and `sub` must be the path's: anything
else is closed with 1008 before any event. Rooms, visibility, resume (`last_id`,
`epoch`), rate limits and client events are the shared ones (`sio_server.streams.connections`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from notify_core.obs import metrics
from sio_server.admission.admit import AUTH_FAILED, Admission, Refused
from sio_server.admission.origin import OriginPolicy
from sio_server.client_events import ClientEvents
from sio_server.contract.queries import RequestError, WsQuery, parse_query
from sio_server.follower import LogFollower
from sio_server.frames import text_frame
from sio_server.streams.connections import ConnectionHub, StreamConnection

log = logging.getLogger(__name__)

MAX_FRAME = 64 * 1024  # a client frame larger than this is answered with an error
READ_LIMIT = 4 * 1024 * 1024  # beyond this aiohttp closes the socket (1009)
PATH = "/api/v1/notifications/ws/{tenant_id}/{user_id}"


class JsonFrames:
    """Each event as one unmasked WebSocket text frame of its JSON."""

    name = "ws"

    def frame(self, event: dict[str, Any], body: bytes, resume_point: bool = True) -> bytes:
        return text_frame(body)

    def keepalive(self) -> bytes | None:
        return None  # aiohttp pings (heartbeat) keep the socket open


JSON_FRAMES = JsonFrames()


class PlainWebSocket:
    def __init__(
        self,
        admission: Admission,
        hub: ConnectionHub,
        events: ClientEvents,
        origins: OriginPolicy,
        follower: LogFollower | None = None,
    ) -> None:
        self.admission = admission
        self.hub = hub
        self.events = events
        self.origins = origins
        self.follower = follower
        self._closing: set[asyncio.Future[Any]] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not self.origins.check(origin, request.scheme, request.host, "ws"):
            return web.json_response({"ok": False, "error": "origin not allowed"}, status=403)
        ws = web.WebSocketResponse(compress=False, max_msg_size=READ_LIMIT, heartbeat=30.0)
        await ws.prepare(request)
        try:
            query = parse_query(request.query, WsQuery)
        except RequestError as exc:  # refused as a bad token is: a close frame, with the field
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=str(exc).encode()[:120])
            return ws
        conn_id = uuid.uuid4().hex
        try:
            principal = await self.admission.admit(query.token, request.remote, "ws", conn_id)
        except Refused as exc:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=str(exc).encode())
            return ws
        if (
            principal.tenant_id != request.match_info["tenant_id"]
            or principal.user_id != request.match_info["user_id"]
        ):
            await self.admission.leave(conn_id)
            metrics.AUTH_FAILURES.labels("ws", "token does not match the path").inc()
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=AUTH_FAILED.encode())
            return ws
        transport = request.transport
        assert transport is not None

        def close() -> None:  # from our side (token expired, revoked): a clean close frame
            task = asyncio.ensure_future(
                ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"session ended")
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

        conn = StreamConnection(self.hub, principal, JSON_FRAMES, transport, request.remote, close)
        if self.follower is not None:
            await self.follower.follow(principal.tenant_id)
        try:
            await self.hub.open(conn, query.last_id, query.epoch)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    reply = await self._answer(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    metrics.CLIENT_ERRORS.labels("unknown", "bad_frame").inc()
                    reply = {"type": "error", "error": "binary frames are not understood"}
                else:
                    continue
                conn.write(text_frame(orjson.dumps(reply)))
        finally:
            conn.abort()
            await self.admission.leave(conn_id)
            if self.follower is not None:
                self.follower.unfollow(principal.tenant_id)
        return ws

    async def _answer(self, conn: StreamConnection, text: str) -> dict[str, Any]:
        """One client frame -> its answer frame."""
        if len(text) > MAX_FRAME:
            metrics.CLIENT_ERRORS.labels("unknown", "bad_frame").inc()
            return {"type": "error", "error": f"frame of {len(text)} bytes exceeds {MAX_FRAME}"}
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            metrics.CLIENT_ERRORS.labels("unknown", "bad_frame").inc()
            return {"type": "error", "error": f"not valid JSON: {exc}"}
        name = message.get("type") if isinstance(message, dict) else None
        if not isinstance(name, str):
            metrics.CLIENT_ERRORS.labels("unknown", "bad_frame").inc()
            return {"type": "error", "error": 'expected a JSON object {"type": ..., ...}'}
        data = {k: v for k, v in message.items() if k != "type"}
        answer = await self.events.dispatch(conn, name, data)
        if not self.events.knows(name) or answer.get("type") == "error":
            return {"type": "error", **{k: v for k, v in answer.items() if k != "type"}}
        return {"type": f"{name}_result", **answer} if "type" not in answer else answer
