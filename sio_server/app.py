"""Builds the aiohttp application with Socket.IO, the HTTP API and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import socketio
from aiohttp import web
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from notify_core.history.store import History, RedisHistory
from notify_core.lifecycle import Background, Lifecycle, Part, nothing, plain
from notify_core.obs.audit import AuditLog
from notify_core.obs.readiness import Readiness
from notify_core.revocations import Revocations
from notify_core.state.incidents import IncidentStore
from notify_core.state.snapshots import SnapshotStore
from notify_core.state.timeline import Timeline
from sio_server.admission.admit import Admission
from sio_server.admission.auth import Authenticator, Principal
from sio_server.admission.limits import AddressGuard, ConnectionLimits
from sio_server.admission.origin import OriginPolicy
from sio_server.client_events import ClientEvents
from sio_server.contract.queries import MAX_REQUEST_LINE
from sio_server.deliveries import Deliveries
from sio_server.follower import LogFollower
from sio_server.http_routes import NO_FEATURES, CoreParts, HttpFeatures, mount_http
from sio_server.incident_actions import ActionSink, IncidentActions
from sio_server.options import DEFAULT_OPTIONS, TransportOptions
from sio_server.presence import Presence
from sio_server.socketio import websocket
from sio_server.socketio.aiohttp_site import WrappedTCPSite
from sio_server.socketio.fanout import DirectSocket, Fanout
from sio_server.socketio.polling import LeanPolling
from sio_server.socketio.recovery import DeliveryGate
from sio_server.socketio.sockets import SocketHandlers
from sio_server.streams.connections import ConnectionHub
from sio_server.streams.plain_ws import PlainWebSocket
from sio_server.streams.sse import EventStream

log = logging.getLogger(__name__)


class _OrjsonCodec:
    """engine.io/socket.io `json` hook: orjson, returning str as the packet layer expects."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(data)


class ConnectionsCollector(Collector):
    """Read at scrape time: `notify_connections{tenant, transport}` (upgrades included) and
    `notify_ack_tracked_pairs`."""

    def __init__(self, server: SocketServer) -> None:
        self._server = server

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "notify_connections",
            "Open client connections, by transport (websocket, polling, ws, sse)",
            labels=["tenant", "transport"],
        )
        counts: Counter[tuple[str, str]] = Counter()
        for sid, principal in list(self._server.handlers.principals.items()):
            try:
                transport = self._server.sio.transport(sid)
            except Exception:
                continue
            counts[(principal.tenant_id, transport)] += 1
        counts.update(self._server.hub.by_transport())
        for (tenant, transport), n in counts.items():
            family.add_metric([tenant, transport], n)
        yield family
        yield GaugeMetricFamily(
            "notify_ack_tracked_pairs",
            "(alert, user) delivery confirmations held (bounded by NOTIFY_ACK_TRACKING_PAIRS)",
            value=self._server.deliveries.tracked_pairs,
        )


class SocketServer:
    """Owns the AsyncServer, the aiohttp app and its listening socket."""

    def __init__(
        self,
        auth: Authenticator,
        history: History,
        readiness: Readiness,
        host: str,
        port: int,
        cors_origins: list[str],
        options: TransportOptions = DEFAULT_OPTIONS,
        client_manager: socketio.AsyncManager | None = None,
        action_sink: ActionSink | None = None,
        snapshots: SnapshotStore | None = None,
        timeline: Timeline | None = None,
        incidents: IncidentStore | None = None,
        follow: tuple[Redis, RedisHistory] | None = None,
        audit: AuditLog | None = None,
        revocations: Revocations | None = None,
        limits: ConnectionLimits | None = None,
        guard: AddressGuard | None = None,
        shared: tuple[Redis, str] | None = None,
        http: HttpFeatures = NO_FEATURES,
    ) -> None:
        """`shared`: the Redis and key prefix that presence is shared through (None: this
        process alone); `http`: the optional parts of the HTTP surface
        (`sio_server.http_routes`)."""
        self.revocations = revocations
        self.presence = Presence(
            shared[0] if shared else None,
            shared[1] if shared else "",
            self.emit,
            options.presence_lease_s,
        )
        # the contract's defaults when not given (counted in this process only)
        limits = limits or ConnectionLimits(None, "", 20, 10_000)
        guard = guard or AddressGuard(30, 300.0)
        admission = self.admission = Admission(auth, limits, guard, audit)
        self.host, self.requested_port = host, port
        self.port: int | None = None
        self.origins = OriginPolicy(cors_origins)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=client_manager,
            # a callable: the one Origin rule (`[]` would switch engine.io's check off)
            cors_allowed_origins=self.origins.for_engineio,
            json=_OrjsonCodec,
            http_compression=False,
            max_http_buffer_size=64 * 1024,
        )
        self.direct: dict[str, DirectSocket] = {}
        websocket.install(self.sio.eio, options.ws_compression, self.direct)
        principals: dict[str, Principal] = {}  # engine.io sid -> who, for deliveries
        self.deliveries = Deliveries(principals.get, options.ack_tracking_pairs)
        actions = IncidentActions(action_sink, incidents, audit)
        self.events = ClientEvents(actions, snapshots, timeline, self.deliveries, self.presence)
        # the fan-out is built below, from the gate: the flush is looked up when it runs
        gate = DeliveryGate(
            self.sio, observer=self.deliveries.on_packet, before_hold=lambda: self.fanout.flush()
        )
        self.follower: LogFollower | None = None
        if follow is not None:
            # live events come from the tenant streams, not from the pipelines' emits
            self.follower = LogFollower(follow[0], follow[1], self.emit)
            readiness.add(
                "history_follower", lambda: self.follower is not None and self.follower.running
            )
        self.handlers = SocketHandlers(
            self.sio,
            admission,
            self.presence,
            history,
            gate,
            self.events,
            principals,
            snapshots,
            self.follower,
        )
        self.fanout = Fanout(
            self.sio,
            self.direct,
            held_for=gate.held_for,
            send_queued=gate.send_raw,
            deliveries=self.deliveries,
            buffer_limit=options.client_buffer_bytes,
            queue_limit=options.client_queue_packets,
            enabled=options.direct_writes,
            coalesce_s=options.emit_coalesce_ms / 1000,
        )
        self.hub = ConnectionHub(
            history,
            self.deliveries,
            self.presence,
            buffer_limit=options.client_buffer_bytes,
            coalesce_s=options.emit_coalesce_ms / 1000,
        )
        self.app = web.Application(client_max_size=64 * 1024)
        # long-poll GETs answered before aiohttp sees them (`sio_server.socketio.polling`)
        self.polling = (
            LeanPolling(self.sio.eio, self.origins, idle_timeout_s=options.http_keepalive_s)
            if options.sockets and options.lean_polling
            else None
        )
        self.http_keepalive_s = options.http_keepalive_s
        if options.sockets:
            self.sio.attach(self.app)
            PlainWebSocket(
                admission, self.hub, self.events, self.origins, self.follower
            ).add_routes(self.app)
            EventStream(admission, self.hub, self.origins, self.follower).add_routes(self.app)
        mount_http(
            self.app,
            http,
            CoreParts(
                auth,
                readiness,
                history,
                actions,
                incidents,
                timeline,
                snapshots,
                audit,
                revocations,
                self.presence,
                guard,
                shared,
                self.origins,
            ),
        )
        self._runner: web.AppRunner | None = None
        self._sweeper = Background("expire-sessions", self._sweep_expired)
        self._lifecycle = Lifecycle()
        self._collector = ConnectionsCollector(self)
        readiness.add("http", lambda: self._runner is not None)

    async def emit(self, event: dict[str, Any], rooms: list[str]) -> None:
        """Every transport's fan-out of one stored event."""
        self.hub.emit(event, rooms)
        await self.fanout.emit(event, rooms)

    def parts(self) -> list[Part]:
        """What this server runs, in start order (stopped in reverse): the listening socket
        first, the history follower last, and what was emitted flushed before the sockets
        close. The composition root puts these in its one lifecycle."""
        parts = [Part("http listener", self._listen, self._close)]
        if self.polling is not None:
            parts.append(Part("lean polling", self.polling.start, self.polling.stop))
        parts += [
            Part("session sweep", self._sweeper.start, self._sweeper.stop),
            Part("stream hub", self.hub.start, self.hub.stop),
            Part("connection limits", self.admission.limits.start, self.admission.limits.stop),
            Part("presence", self.presence.start, self.presence.stop),
            Part("pending fan-out", nothing, plain(self.fanout.flush)),
        ]
        if self.follower is not None:
            parts.append(Part("history follower", self.follower.start, self.follower.stop))
        return parts

    async def start(self) -> None:
        """Start `parts()` on this server's own lifecycle (a server used on its own)."""
        await self._lifecycle.start(self.parts())

    async def stop(self) -> None:
        await self._lifecycle.stop()

    async def _listen(self) -> None:
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=2.0,
            keepalive_timeout=self.http_keepalive_s,
            # a query may carry an identity provider's token (SSE, calendar feeds): 8 KiB
            # of it, percent-encoded, plus the rest (sio_server/contract/queries.py's limits)
            max_line_size=MAX_REQUEST_LINE,
        )
        await self._runner.setup()
        site = (
            WrappedTCPSite(
                self._runner,
                self.host,
                self.requested_port,
                self.polling.protocol_factory,
                reuse_address=True,
                backlog=1024,
            )
            if self.polling is not None
            else web.TCPSite(
                self._runner, self.host, self.requested_port, reuse_address=True, backlog=1024
            )
        )
        await site.start()
        addresses = self._runner.addresses  # public: the bound sockets' names
        self.port = int(addresses[0][1]) if addresses else self.requested_port
        with contextlib.suppress(ValueError):
            REGISTRY.register(self._collector)
        log.info("listening on http://%s:%s", self.host, self.port)

    async def _close(self) -> None:
        with contextlib.suppress(KeyError):
            REGISTRY.unregister(self._collector)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _sweep_expired(self) -> None:
        """Each second: cut the connections of tokens revoked since (on every process:
        each follows the revocations); every 15 s, those whose token expired."""
        ticks, seen = 0, self.revocations.generation if self.revocations else 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            try:
                if self.revocations is not None and self.revocations.generation != seen:
                    seen = self.revocations.generation
                    n = await self.cut_revoked()
                    if n:
                        log.info("cut %d connection(s) of revoked tokens", n)
                if ticks % 15 == 0:
                    n = await self.handlers.expire_sessions()
                    if n:
                        log.info("disconnected %d connection(s) with expired tokens", n)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("session sweep failed")

    async def cut_revoked(self) -> int:
        """Close every local connection (every transport) whose token is revoked."""
        revocations = self.revocations
        if revocations is None:
            return 0
        cut = 0
        for sid, session in list(self.handlers.sessions.items()):
            if revocations.revoked(session.principal):
                await self.sio.disconnect(sid)
                cut += 1
        for conn in list(self.hub.connections):
            if revocations.revoked(conn.principal):
                conn.abort()
                cut += 1
        return cut
