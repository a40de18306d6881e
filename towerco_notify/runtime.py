"""The composition root: builds every part from Settings and owns their lifecycle.

Parts start in dependency order (broker, stores, HTTP/Socket.IO, producers, Faust,
Redis bridge) and stop in reverse, each within a bounded timeout. No other module
opens a connection or reads the environment.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

import jwt
from pydantic import SecretStr

from escalation import jobs as escalation_jobs
from escalation.engine import EscalationEngine
from escalation.leader import LeaderLock
from escalation.oncall.directory import OnCallDirectory
from escalation.oncall.handoff import HandoffWatch
from escalation.oncall.overrides import OverrideStore
from escalation.people.contacts import PeopleStore
from escalation.receivers.push import VapidKeys
from escalation.scheduler import TimerScheduler
from notify_core.action_links import ActionLinks
from notify_core.heartbeats.policy import HeartbeatStore
from notify_core.heartbeats.watch import HeartbeatWatch
from notify_core.history.store import RedisHistory
from notify_core.in_force import InForce
from notify_core.lifecycle import Lifecycle, Part, nothing, plain
from notify_core.obs.audit import (
    AuditLog,
    audit_record,
)
from notify_core.obs.readiness import Readiness
from notify_core.redis import factory as redis_factory
from notify_core.reports.archive import (
    Archiver,
    ArchivingListener,
)
from notify_core.revocations import Revocations
from notify_core.settings import Settings
from notify_core.suppression.audit import ExpiryAudit
from notify_core.suppression.store import SuppressionStore
from notify_core.wire.events import ALL_TOPICS
from pipeline.app import Pipeline
from pipeline.kafka.topics import ensure_topics
from pipeline.publisher import Emit, Publisher
from pipeline.redis_bridge import SystemChannelBridge
from sio_server.admission.auth import Authenticator
from sio_server.admission.limits import AddressGuard, ConnectionLimits, HttpRateLimiter
from sio_server.app import SocketServer
from sio_server.http_routes import HttpFeatures
from sio_server.inbound.heartbeats import HeartbeatSources
from sio_server.inbound.integrations import IntegrationsApi
from sio_server.inbound.twilio import TwilioReplies
from sio_server.options import TransportOptions
from towerco_notify.actions import ActionProducer
from towerco_notify.config_files import load_config
from towerco_notify.embedded_broker import EmbeddedBroker
from towerco_notify.reach import build_reach, build_receivers
from towerco_notify.reload import ConfigReloader
from towerco_notify.stores import build_stores

log = logging.getLogger(__name__)

Mode = Literal["run", "pipeline", "server"]


class ConfigurationError(RuntimeError):
    """The settings cannot work for this mode; the message says which to set."""


def tune_gc(threshold: int) -> None:
    """Start-up objects never die: keep the collector off them, and run it less often.

    Measured: halves CPU per delivered message at 1000 clients. Not higher by default:
    at 200 000 a 10-minute soak grew 14 MiB after minute 7 (flat at 50 000); the
    pipeline instead holds collections until each batch is done (pipeline/app.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 50, 100)


@dataclass
class Runtime:
    settings: Settings
    mode: Mode = "run"
    readiness: Readiness = field(default_factory=Readiness)

    def __post_init__(self) -> None:
        s = self.settings
        if self.mode in ("pipeline", "server") and not s.has_verification_key:
            # each process would make up its own key: tokens and webhook signatures of
            # one would not verify on another
            raise ConfigurationError(
                f"`{self.mode}` needs NOTIFY_JWT_SECRET (at least 32 bytes), or"
                " NOTIFY_JWT_PUBLIC_KEY_FILE / NOTIFY_JWT_JWKS_URL"
            )
        if self.mode in ("pipeline", "server") and not s.redis_url:
            raise ConfigurationError(
                f"`{self.mode}` runs beside other processes and needs NOTIFY_REDIS_URL"
            )
        if self.mode in ("pipeline", "server") and not s.kafka_bootstrap:
            raise ConfigurationError(f"`{self.mode}` needs NOTIFY_KAFKA_BOOTSTRAP")
        # `run` with no key at all makes up a dev secret (and prints a demo token for it);
        # with a public key or JWKS only, HS256 tokens are not accepted
        self.generated_secret = not s.has_verification_key
        self.jwt_secret = (
            s.jwt_secret.get_secret_value() if s.jwt_secret else secrets.token_urlsafe(32)
        )
        self._parts: list[Part] = []
        self._lifecycle = Lifecycle()
        self.broker: EmbeddedBroker | None = None
        self.server: SocketServer | None = None
        self.pipeline: Pipeline | None = None
        self.stores = build_stores(s)  # memory or Redis, every one alike
        # the config directory, read here and by the reloader only; an invalid file at
        # start is fatal (ConfigInvalid names every problem). Parts get views of it.
        self.config = InForce(load_config(s.config_dir))
        self.rules = self.config.view(attrgetter("rules"))
        self.current_sites = self.config.view(attrgetter("sites"))
        self.current_heartbeats = self.config.view(attrgetter("heartbeats"))
        self.current_schedules = self.config.view(attrgetter("schedules"))
        self.current_integrations = self.config.view(attrgetter("integrations"))
        self.escalation: EscalationEngine | None = None
        self.leader: LeaderLock | None = None
        self.audit: AuditLog | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def bootstrap(self) -> str:
        if self.settings.kafka_bootstrap:
            return ",".join(self.settings.kafka_bootstrap)
        assert self.broker is not None
        return self.broker.bootstrap

    @property
    def http_port(self) -> int | None:
        return self.server.port if self.server else None

    # -- build -----------------------------------------------------------------
    def _build(self) -> None:
        """Every part, in dependency order: started in this order, stopped in reverse."""
        self._build_stores()
        self._build_shared()
        auth = self._build_auth()
        self._build_reach()
        self._build_server(auth)
        if self.mode != "server":
            self._build_pipeline()

    def _build_stores(self) -> None:
        """The broker (embedded unless given) and the stores (`towerco_notify.stores`)."""
        s = self.settings
        add = self._parts.append
        if not s.kafka_bootstrap:
            self.broker = EmbeddedBroker()
            add(Part("embedded broker", self.broker.start, self.broker.stop))
        add(Part("kafka topics", self._ensure_topics, nothing))
        if self.stores.redis is not None:
            add(Part("redis", self._check_redis, self.stores.redis.aclose))
            self.readiness.add("redis", self._redis_ok)
        if (replicas := self.stores.replicas) is not None:
            self.readiness.add("redis_replicas", lambda: replicas.confirmed)

    def _build_shared(self) -> None:
        """What every process mode shares: config reload, suppression, revocations, and
        the stores of heartbeats, action links, overrides and push subscriptions."""
        s = self.settings
        add = self._parts.append
        reloader = self.reloader = ConfigReloader(
            s.config_dir, self.config.swap, self.config.refuse, tell=self._audit_reload
        )
        add(Part("config reloader", reloader.start, reloader.stop))
        suppression = self.suppression = SuppressionStore(
            self.stores.redis,
            s.redis_prefix,
            self.config.view(attrgetter("suppression")),
            self.current_sites,
        )
        add(Part("suppression", suppression.start, suppression.stop))
        revocations = self.revocations = Revocations(self.stores.redis, s.redis_prefix)
        self.heartbeat_store = HeartbeatStore(self.stores.redis, s.redis_prefix)
        self.action_links = ActionLinks(self.stores.redis, s.redis_prefix, s.action_link_ttl)
        self.oncall = OnCallDirectory(
            self.current_schedules, OverrideStore(self.stores.redis, s.redis_prefix)
        )
        if self.mode != "pipeline":
            add(Part("revocations", revocations.start, revocations.stop))
        self.vapid = VapidKeys(
            s.vapid_private_key.get_secret_value() if s.vapid_private_key else None,
            self.stores.redis,
            s.redis_prefix,
        )

    def _build_auth(self) -> Authenticator:
        """Who a token is: HS256, a public key or an identity provider's JWKS; each
        accepted token tells the people store the user's roles and sites."""
        s = self.settings
        public_key = s.jwt_public_key_file.read_text() if s.jwt_public_key_file else None
        # a rotated key is fetched on sight of its kid, at most once per 5 s (a flood of
        # made-up kids must not become a flood of requests to the identity provider)
        jwks = (
            jwt.PyJWKClient(s.jwt_jwks_url, lifespan=300, cooldown_duration=5)
            if s.jwt_jwks_url
            else None
        )
        self.people = PeopleStore(self.stores.redis, s.redis_prefix)
        return Authenticator(
            self.jwt_secret if (s.jwt_secret is not None or self.generated_secret) else None,
            public_key,
            audience=s.jwt_audience,
            issuer=s.jwt_issuer,
            jwks=jwks,
            tenant_claim=s.jwt_tenant_claim,
            roles_claim=s.jwt_roles_claim,
            revocations=self.revocations,
            seen=self.people.seen,
        )

    def _build_server(self, auth: Authenticator) -> None:
        """Audit, the server's producer (actions, integrations, heartbeats) and the HTTP
        and Socket.IO server with every API."""
        s = self.settings
        add = self._parts.append
        actions: ActionProducer | None = None
        audit = self.audit = AuditLog(
            lambda: self.bootstrap, self.stores.audit_copy, s.producer_acks
        )
        add(Part("audit log", audit.start, audit.stop))
        guard = AddressGuard(s.auth_failures_per_min, s.auth_block_s)
        integrations: IntegrationsApi | None = None
        if self.mode in ("run", "server"):
            actions = ActionProducer(lambda: self.bootstrap, s.producer_acks)
            add(Part("action producer", actions.start, actions.stop))
            integrations = IntegrationsApi(
                self.current_integrations,
                actions.send_records,
                self.stores.incidents,
                audit,
                guard,
                s.ingest_timeout_s,
            )
            watch = HeartbeatWatch(
                self.current_heartbeats,
                self.heartbeat_store,
                self.stores.snapshots.last_sample,
                actions.send_records,
            )
            add(Part("heartbeat watch", watch.start, watch.stop))

        follow = None
        if self.mode == "server":
            assert self.stores.redis is not None and isinstance(self.stores.history, RedisHistory)
            follow = (self.stores.redis, self.stores.history)
        self.server = SocketServer(
            auth,
            self.stores.history,
            self.readiness,
            s.http_host,
            s.http_port,
            s.cors_origins,
            TransportOptions.from_settings(s, sockets=self.mode != "pipeline"),
            follow=follow,
            action_sink=actions,
            snapshots=self.stores.snapshots,
            timeline=self.stores.timeline,
            incidents=self.stores.incidents,
            audit=audit,
            revocations=self.revocations,
            limits=ConnectionLimits(
                self.stores.redis,
                s.redis_prefix,
                s.max_connections_per_user,
                s.max_connections_per_tenant,
            ),
            guard=guard,
            shared=(self.stores.redis, s.redis_prefix) if self.stores.redis is not None else None,
            http=self._http_features(integrations),
        )
        self._parts += self.server.parts()

    def _http_features(self, integrations: IntegrationsApi | None) -> HttpFeatures:
        """The optional parts of the HTTP surface, every one this daemon has."""
        s = self.settings

        def secret(value: SecretStr | None) -> Callable[[], str | None]:
            return lambda: value.get_secret_value() if value is not None else None

        oidc = (
            {"issuer": s.oidc_issuer, "client_id": s.oidc_client_id, "scopes": s.oidc_scopes}
            if s.oidc_issuer and s.oidc_client_id
            else None
        )
        return HttpFeatures(
            rules=self.rules,
            suppression=self.suppression,
            archive=self.stores.archive,
            push=(self.stores.push, self.vapid),
            integrations=integrations,
            oncall=self.oncall,
            heartbeats=HeartbeatSources(self.current_heartbeats, self.heartbeat_store),
            action_links=self.action_links,
            people=(self.people, self.reach.person),
            chatops=(secret(s.slack_signing_secret), secret(s.pagerduty_webhook_secret)),
            twilio=TwilioReplies(self.reach.sms_replies, self.reach.twilio_token, s.public_url),
            oidc=oidc,
            http_rate=HttpRateLimiter(s.http_rate_per_s, float(s.http_burst)),
        )

    def _build_pipeline(self) -> None:
        """The pipeline side: the publisher, escalation and the Faust app."""
        s = self.settings
        add = self._parts.append
        emit: Emit
        if self.mode == "pipeline":
            # store only: server processes follow the history and fan out in id order
            async def emit(event: dict[str, Any], rooms: list[str]) -> None:
                return None
        else:
            assert self.server is not None  # built before the pipeline side
            emit = self.server.emit
        publisher = Publisher(
            self.stores.history, emit, snapshots=self.stores.snapshots, writes=self.stores.writes
        )
        self._publisher = publisher
        self._build_escalation(publisher)
        # resolved incidents become the report's records (read by /api/v1/reports)
        archiver = Archiver(
            self.stores.archive, self.stores.incidents, self.stores.timeline, self._region_of
        )
        add(Part("report archiver", archiver.start, archiver.stop))
        add(Part("faust pipeline", self._start_pipeline, self._stop_pipeline, 15.0))
        if self.stores.redis is not None:
            bridge = SystemChannelBridge(self.stores.redis, s.system_channel, publisher)
            add(Part("system channel bridge", bridge.start, bridge.stop))
            self.readiness.add("redis_channel", lambda: bridge.subscribed)

    def _build_escalation(self, publisher: Publisher) -> None:
        s, add = self.settings, self._parts.append
        secret = (
            s.webhook_secret.get_secret_value().encode()
            if s.webhook_secret
            else hashlib.sha256(b"towerco-webhook:" + self.jwt_secret.encode()).digest()
        )
        worker, deliveries = build_receivers(
            s, self.reach, self.stores, self.people, publisher.publish, secret, self._public_url
        )
        scheduler = TimerScheduler(
            redis_factory.connect_sync(s.redis_url, s.redis_cluster) if s.redis_url else None,
            s.redis_prefix,
        )
        self.escalation = EscalationEngine(
            self.config.view(attrgetter("policies")),
            self.stores.escalation,
            self.stores.timeline,
            publisher.publish,
            scheduler,
            deliveries,
            muter=self.suppression.mutes,
            oncall=self.oncall,
            sites=self.current_sites,
        )
        engine = self.escalation
        escalation_jobs.install(engine, scheduler.deployment)

        async def release_jobs() -> None:
            escalation_jobs.uninstall(engine, scheduler.deployment)

        add(Part("escalation jobs", nothing, release_jobs))
        add(Part("receiver deliveries", worker.start, worker.stop))
        handoff = HandoffWatch(
            self.current_schedules,
            self.oncall,
            self.stores.incidents,
            self.current_sites,
            self.reach.person.notify,
            self.stores.redis,
            s.redis_prefix,
            s.handoff_check_s,
        )
        add(Part("on-call handoff notices", handoff.start, handoff.stop))
        if self.audit is not None:
            lapsed = ExpiryAudit(self.suppression, self.audit, self.stores.redis, s.redis_prefix)
            add(Part("suppression expiry audit", lapsed.start, lapsed.stop))
        add(Part("escalation scheduler", scheduler.start, scheduler.stop))
        add(Part("escalation engine", nothing, self.escalation.stop))
        if self.stores.redis is not None:
            lock = LeaderLock(
                self.stores.redis,
                f"{s.redis_prefix}escalation-leader",
                scheduler.activate,
                scheduler.deactivate,
            )
            self.leader = lock
            add(Part("escalation leader lock", lock.start, lock.stop))
        else:
            add(Part("escalation (single process)", plain(scheduler.activate), nothing))

    def _public_url(self) -> str:
        """Where pages link to (NOTIFY_PUBLIC_URL, else where this process listens: the
        port is known once the server listens)."""
        s = self.settings
        host = "127.0.0.1" if s.http_host in ("0.0.0.0", "::") else s.http_host
        return s.public_url or f"http://{host}:{self.http_port or s.http_port}"

    def _build_reach(self) -> None:
        """What reaches people away from the screen (`towerco_notify.reach`)."""
        reach = self.reach = build_reach(
            self.settings,
            self.stores,
            self.people,
            self.action_links,
            self.stores.push,
            self.vapid,
            self._public_url,
        )
        self._parts.append(Part("receiver http client", reach.http.start, reach.http.stop))

    async def _ensure_topics(self) -> None:
        s = self.settings
        await ensure_topics(
            self.bootstrap, ALL_TOPICS, s.topic_partitions, replication=s.topic_replication
        )

    async def _start_pipeline(self) -> None:
        self.pipeline = Pipeline(
            self.settings,
            self.bootstrap.split(","),
            self._publisher,
            self.stores.incidents,
            self.rules,
            tansu=self.broker is not None,
            listener=ArchivingListener(self.escalation, self.stores.archive),
            writes=self.stores.writes,
            suppression=self.suppression,
            audit=self.audit,
            replicas=self.stores.replicas,
        )
        self.readiness.add("kafka", self.pipeline.ready)
        await self.pipeline.start()

    async def _stop_pipeline(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.stop()

    def _region_of(self, tenant: str, site: str | None) -> str | None:
        return self.current_sites().region(tenant, site)

    def _audit_reload(self, result: str, reason: str | None) -> None:
        """A config reload in the audit trail (in the background: it runs from a file
        watcher or a signal handler, not from an answer to a caller)."""
        if self.audit is None:
            return
        record = audit_record(
            None,
            "operator",
            "config_reload",
            str(self.settings.config_dir),
            "ok" if result == "ok" else "refused",
            "config",
            reason,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not from the daemon's loop: nothing to write it with
            return
        task = loop.create_task(self.audit.record_quietly(record))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _check_redis(self) -> None:
        """Reachable, and Redis 7 or later: recovery reads what trimming removed from
        XINFO STREAM's `entries-added`, which older servers lack (it would claim
        recoveries it cannot prove)."""
        assert self.stores.redis is not None
        await redis_factory.initialize(self.stores.redis)
        info: Any = await self.stores.redis.info("server")
        version = str(info.get("redis_version", "0"))
        if int(version.split(".")[0] or 0) < 7:
            raise ConfigurationError(
                f"NOTIFY_REDIS_URL: Redis {version} is too old; towerco-notify needs Redis 7+"
            )

    async def _redis_ok(self) -> bool:
        assert self.stores.redis is not None
        return bool(await self.stores.redis.ping())

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._build()
        await self._lifecycle.start(self._parts)
        if self.settings.gc_freeze:
            tune_gc(self.settings.gc_threshold)

    async def stop(self) -> None:
        await self._lifecycle.stop()

    def reload_config(self, why: str = "SIGHUP") -> bool:
        """Reload the operator config now; False (old rules kept) when it is invalid."""
        return self.reloader.reload(why)

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            ok, checks = await self.readiness.status()
            if ok:
                return
            if loop.time() > deadline:
                raise TimeoutError(f"not ready after {timeout_s}s: {checks}")
            await asyncio.sleep(0.1)
