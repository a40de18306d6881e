"""Session-wide real services: one tansu broker, Redis (db 13, a unique key prefix),
one in-process daemon on them; tests isolate themselves by tenant id."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from notify_core.redis.factory import initialize
from notify_core.settings import load_settings
from notify_core.wire.events import ALL_TOPICS
from pipeline.kafka.topics import ensure_topics
from sio_server.admission.auth import mint_token
from tests import redis_cluster
from tests.helpers import TEST_SECRET, serve_app
from tests.receiver_sinks import ReceiverSinks
from towerco_notify.embedded_broker import EmbeddedBroker
from towerco_notify.runtime import Runtime

REDIS_URL = "redis://127.0.0.1:6379/13"


# modules whose tests start daemons or brokers of their own, kill them, or wait on
# escalation and failover timers: `./dev test --fast` leaves them out (marker `slow`)
SLOW_MODULES = frozenset(
    {
        "test_processes",
        "test_rebalance",
        "test_failover",
        "test_broker_restart",
        "test_install",
        "test_teamwork",
        "test_signin",
        "test_openapi_fuzz",
        "test_write_behind",
        "test_thresholds_e2e",
        "test_client_module",
    }
)
SLOW_TESTS = frozenset(
    {
        "test_holder_killed_while_a_window_ends_one_level_1_afterwards",
        "test_a_trigger_refused_before_its_sender_is_killed_is_sent_once_by_the_survivor",
        "test_unacknowledged_incident_escalates_level_by_level_then_stops",
        "test_broker_away_is_503_and_alertmanagers_retry_delivers",
        "test_a_process_killed_between_two_rules_leaves_the_second_to_the_survivor_once",
    }
)


# A test that uses one of these (directly or through another fixture) needs a real Redis,
# the broker, the daemon or Node; modules that start such parts themselves say so with
# `pytestmark = pytest.mark.integration`. `./dev test --fast` runs the rest.
REAL_PARTS = frozenset(
    {"redis_url", "broker", "daemon", "producer", "hooks", "sinks", "redis_client"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if REAL_PARTS.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The install test's build and pip install (~40 s) start now, in the background, so
    the rest of the suite overlaps them."""
    if any(item.nodeid.startswith("tests/test_install.py") for item in session.items):
        from tests.test_install import start_install_job

        start_install_job()


SESSION = uuid.uuid4().hex[:8]


@pytest_asyncio.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    if redis_cluster.CLUSTER:  # TOWERCO_TEST_REDIS=cluster: a cluster of the session's own
        local = redis_cluster.LocalCluster()
        try:
            await local.start()
            yield local.url
        finally:
            local.stop()
        return
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 for these tests ({exc}); .ci/run starts it")
    yield REDIS_URL
    # remove this session's keys only
    async for key in client.scan_iter(match=f"test{SESSION}*"):
        await client.delete(key)
    await client.aclose()


@pytest_asyncio.fixture(scope="session")
async def broker() -> AsyncIterator[str]:
    b = EmbeddedBroker()
    await b.start()
    await ensure_topics(b.bootstrap, ALL_TOPICS, 4)
    yield b.bootstrap
    await b.stop()


def daemon_settings(bootstrap: str, redis_url: str | None, **extra: Any) -> Any:
    return load_settings(
        kafka_bootstrap=bootstrap,
        redis_url=redis_url,
        redis_cluster=redis_cluster.CLUSTER and redis_url is not None,
        redis_prefix=f"test{SESSION}-{uuid.uuid4().hex[:6]}:",
        system_channel=f"test{SESSION}-system",
        jwt_secret=TEST_SECRET,
        http_port=0,
        app_id=f"test-{SESSION}-{uuid.uuid4().hex[:6]}",
        gc_freeze=False,
        tansu_compat=True,
        # the fan-out tests hold hundreds of connections of one test user, and every test
        # refusing bad tokens comes from 127.0.0.1: limits are tested on servers of their own
        **{
            "kafka_offset_reset": "latest",
            # tansu lets a group join after half the session timeout: 1.5 s, not 3 s
            "session_timeout_s": 3.0,
            "max_connections_per_user": 1000,
            "auth_failures_per_min": 1_000_000,
            **extra,
        },
    )


@contextlib.asynccontextmanager
async def own_daemon(
    broker: str, redis_url: str, config_dir: Path, **extra: Any
) -> AsyncIterator[Runtime]:
    """A `run` daemon of its own on the session's broker and Redis (its own key prefix and
    consumer group), for a test that needs settings the session daemon cannot have; its
    config directory holds the shipped thresholds.yaml."""
    shipped = Path(__file__).parent.parent / "config" / "thresholds.yaml"
    (config_dir / "thresholds.yaml").write_text(shipped.read_text())
    runtime = Runtime(
        daemon_settings(broker, redis_url, config_dir=config_dir, **extra), mode="run"
    )
    await runtime.start()
    try:
        await runtime.wait_ready(60)
        yield runtime
    finally:
        await runtime.stop()


TEST_THRESHOLDS = """\
kpis:
  temp_c:
    direction: above
    warning: 45
    critical: 55
    clear: 40
    unit: C
    description: Shelter temperature
  avail_pct:
    direction: below
    warning: 99
    critical: 95
    clear: 99.5
overrides:
  - tenant: tuned
    kpis:
      temp_c: {warning: 60, critical: 70}
"""


class HookReceiver:
    """A local webhook receiver: records requests; `/flaky/<id>` fails twice first, for
    each incident (so tests paging the same webhook do not share its failures)."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self._failures: dict[str, int] = {}
        self._runner: Any = None

    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
        if request.path.startswith("/flaky"):
            try:
                incident = str(orjson.loads(body).get("incident_id"))
            except (ValueError, AttributeError):
                incident = ""
            key = f"{request.path}#{incident}"
            n = self._failures.get(key, 0)
            if n < 2:
                self._failures[key] = n + 1
                return web.Response(status=503)
        return web.Response(status=204)

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner, self.port = await serve_app(app)

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest_asyncio.fixture(scope="session")
async def hooks() -> AsyncIterator[HookReceiver]:
    receiver = HookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


def escalation_policies(hook_port: int, dead_port: int) -> str:
    return f"""\
policies:
  - name: fast
    match: {{severities: [critical], sites: [esc-site]}}
    levels:
      - wait: 2s
        targets: [{{oncall: true}}]
      - wait: 3s
        targets: [{{user: esc-boss}}]
    repeat: 1
  - name: ack-timeout
    match: {{severities: [critical], sites: [esc-ackto]}}
    levels:
      - wait: 500ms
        targets: [{{oncall: true}}]
    ack_timeout: 1s
  - name: storm
    match: {{severities: [critical], sites: [storm-site]}}
    group_by: [site]
    group_wait: 1s
    levels:
      - wait: 500ms
        targets: [{{oncall: true}}]
      - wait: 2s
        targets: [{{oncall: true}}]
  - name: hooks
    match: {{severities: [critical], sites: [hook-site]}}
    levels:
      - wait: 300ms
        targets:
          - oncall: true
          - webhook: http://127.0.0.1:{hook_port}/flaky/{{}}
          - webhook: http://127.0.0.1:{dead_port}/nobody-home
"""


@pytest_asyncio.fixture(scope="session")
async def sinks() -> AsyncIterator[ReceiverSinks]:
    """SMTP, chat, PagerDuty and Web Push stand-ins (tests/receiver_sinks.py)."""
    found = ReceiverSinks()
    await found.start()
    yield found
    await found.stop()


RECEIVER_POLICIES = """\
  - name: receivers
    match: {{severities: [critical, major], sites: [rcv-site]}}
    templates:
      email_subject: "NOC page: $title at $site, level $level"
    levels:
      - wait: 300ms
        targets:
          - oncall: true
          - email: oncall@example.com
          - slack: {{url_file: {dir}/slack-url}}
          - teams: {{url_file: {dir}/teams-url}}
          - pagerduty: {{routing_key_file: {dir}/pd-key}}
          - webpush: {{role: oncall}}
  - name: receiver-down
    match: {{severities: [critical], sites: [rcv-down-site]}}
    levels:
      - wait: 300ms
        targets:
          - teams: {{url_file: {dir}/down-url}}
          - slack: {{url_file: {dir}/slack-url}}
"""


# Slack and PagerDuty callbacks (tests/test_chatops.py)
SLACK_SIGNING_SECRET = "slack-" + uuid.uuid4().hex
PAGERDUTY_WEBHOOK_SECRET = "pd-" + uuid.uuid4().hex

# inbound integrations of the session daemon (tests/test_integrations.py)
INTEGRATION_KEY = "k3y-" + uuid.uuid4().hex
INTEGRATIONS = """\
version: 1
integrations:
  - {{name: prom, tenant: integ-am, kind: alertmanager, key_file: {dir}/integration-key}}
  - {{name: nms, tenant: integ-gen, kind: generic, key_file: {dir}/integration-key,
     default_severity: warning}}
"""
INTEGRATION_POLICIES = """\
  - name: integrations
    match: {severities: [critical], sites: [am-site]}
    levels:
      - wait: 300ms
        targets: [{oncall: true}]
"""


# on-call schedules of the session daemon (tests/test_oncall_api.py)
ONCALL = """\
version: 1
schedules:
  - name: field
    tenant: oc-acme
    timezone: Africa/Nairobi
    covers: {sites: [oc-site-covered]}
    layers:
      - name: rota
        users: [amina, brian]
        shift: 1d
        start: 2026-01-01T08:00
  - name: empty
    tenant: oc-acme
    timezone: UTC
    layers:
      - {name: later, users: [zed], shift: 1d, start: 2099-01-01T00:00}
  - name: field
    tenant: oc-other
    timezone: UTC
    layers:
      - {name: rota, users: [mallory], shift: 7d, start: 2026-01-01T00:00}
"""
PEOPLE_POLICIES = """\
  - name: people
    match: {severities: [critical], sites: [ppl-site]}
    levels:
      - wait: 300ms
        targets: [{user: ppl}]
"""
ONCALL_POLICIES = """\
  - name: by-schedule
    match: {severities: [critical], sites: [oc-site]}
    levels:
      - wait: 300ms
        targets: [{schedule: field}]
  - name: by-site
    match: {severities: [critical], sites: [oc-site-covered, oc-site-uncovered]}
    levels:
      - wait: 300ms
        targets: [{site_oncall: true}]
  - name: nobody
    match: {severities: [critical], sites: [oc-nobody]}
    levels:
      - wait: 300ms
        targets: [{schedule: empty}]
"""


# heartbeats of the session daemon (tests/test_heartbeats.py)
HEARTBEAT_KEY = "hb-" + uuid.uuid4().hex
HEARTBEATS = """\
version: 1
heartbeats:
  - {{name: nms, tenant: hb-acme, kind: http, key_file: {dir}/heartbeat-key, timeout: 2s}}
  - {{name: site-kpis, tenant: hb-acme, kind: kpi, site_id: hb-site, timeout: 2s,
     severity: major}}
  - {{name: nms, tenant: hb-other, kind: http, key_file: {dir}/heartbeat-key-other, timeout: 1h}}
  - {{name: quiet-in-maintenance, tenant: hb-acme, kind: kpi, site_id: hb-maint-site,
     timeout: 2s}}
"""


# the site inventory of the session daemon (tests/test_topology.py): hub-1 <- t-1 <- t-2
SITES = """\
version: 1
sites:
  - {tenant: topo-acme, id: hub-1, name: Nakuru hub, region: north, lat: -0.30, lon: 36.07}
  - {tenant: topo-acme, id: t-1, name: Njoro tower, region: north, lat: -0.33, lon: 35.94,
     depends_on: [hub-1]}
  - {tenant: topo-acme, id: t-2, name: Mau tower, region: north, lat: -0.40, lon: 35.80,
     depends_on: [t-1]}
  - {tenant: topo-acme, id: t-9, name: Kisumu tower, region: south, lat: -0.09, lon: 34.77}
  - {tenant: topo-map, id: hub-m, name: Eldoret hub, region: rift, lat: 0.51, lon: 35.27}
  - {tenant: topo-map, id: m-1, name: Iten tower, region: rift, lat: 0.67, lon: 35.51,
     depends_on: [hub-m]}
  - {tenant: topo-map, id: m-2, name: Kapsabet tower, region: rift, lat: 0.20, lon: 35.10,
     depends_on: [m-1]}
  - {tenant: topo-map, id: c-1, name: Mombasa core, region: coast, lat: -4.04, lon: 39.67}
"""
TOPOLOGY_POLICIES = """\
  - name: topology
    match: {severities: [critical], sites: [hub-1, t-1, t-2]}
    levels:
      - wait: 300ms
        targets: [{oncall: true}]
  - name: region-south
    match: {severities: [critical], regions: [south]}
    levels:
      - wait: 300ms
        targets: [{oncall: true}]
"""


@pytest.fixture(scope="session")
def config_dir(
    tmp_path_factory: pytest.TempPathFactory, hooks: HookReceiver, sinks: ReceiverSinks
) -> Any:
    from towerco_notify.embedded_broker import free_port

    path = tmp_path_factory.mktemp("config")
    (path / "thresholds.yaml").write_text(TEST_THRESHOLDS)
    for name, value in {
        "slack-url": f"{sinks.base}/slack",
        "teams-url": f"{sinks.base}/teams",
        "down-url": f"{sinks.base}/down/teams",
        "pd-key": "R0UT1NGKEY",
    }.items():
        (path / name).write_text(value + "\n")
    (path / "escalation.yaml").write_text(
        escalation_policies(hooks.port, free_port()).replace("/flaky/{}", "/flaky/hook")
        + RECEIVER_POLICIES.format(dir=path)
        + INTEGRATION_POLICIES
        + ONCALL_POLICIES
        + PEOPLE_POLICIES
        + TOPOLOGY_POLICIES
    )
    (path / "sites.yaml").write_text(SITES)
    (path / "oncall.yaml").write_text(ONCALL)
    (path / "heartbeat-key").write_text(HEARTBEAT_KEY + "\n")
    (path / "heartbeat-key-other").write_text(uuid.uuid4().hex + "\n")
    (path / "heartbeats.yaml").write_text(HEARTBEATS.format(dir=path))
    (path / "integration-key").write_text(INTEGRATION_KEY + "\n")
    (path / "integrations.yaml").write_text(INTEGRATIONS.format(dir=path))
    return path


@pytest_asyncio.fixture(scope="session")
async def daemon(
    broker: str, redis_url: str, config_dir: Any, sinks: ReceiverSinks
) -> AsyncIterator[Runtime]:
    """`run` mode against the session broker and Redis: the whole path in one process."""
    settings = daemon_settings(
        broker,
        redis_url,
        config_dir=config_dir,
        smtp_url=f"smtp://127.0.0.1:{sinks.smtp_port}",
        smtp_from="noc@towerco.example",
        pagerduty_url=f"{sinks.base}/pd",
        twilio_url=f"{sinks.base}/twilio",
        twilio_account_sid="ACtest0001",
        twilio_auth_token="twilio-test-token",
        twilio_from="+15550001111",
        slack_api_url=f"{sinks.base}/slackapi",
        slack_bot_token="xoxb-test",
        slack_signing_secret=SLACK_SIGNING_SECRET,
        pagerduty_webhook_secret=PAGERDUTY_WEBHOOK_SECRET,
        receiver_attempts=3,
        public_url="http://noc.example:8080",
    )
    runtime = Runtime(settings, mode="run")
    await runtime.start()
    await runtime.wait_ready(60)
    yield runtime
    await runtime.stop()


@pytest.fixture
def base_url(daemon: Runtime) -> str:
    return f"http://127.0.0.1:{daemon.http_port}"


@pytest_asyncio.fixture(scope="session")
async def producer(broker: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=broker, acks=1, linger_ms=0)
    await p.start()
    yield p
    await p.stop()


class Produce:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def __call__(self, topic: str, value: Any, key: bytes | None = None) -> None:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        if key is None and isinstance(value, dict) and isinstance(value.get("tenant_id"), str):
            key = value["tenant_id"].encode()  # keyed by tenant: one partition, one order
        await self.producer.send_and_wait(topic, raw, key=key)


@pytest.fixture
def produce(producer: AIOKafkaProducer) -> Produce:
    return Produce(producer)


@pytest.fixture
def token() -> Any:
    def make(
        tenant: str,
        user: str = "u1",
        roles: list[str] | None = None,
        sites: list[str] | None = None,
        ttl: int = 3600,
    ) -> str:
        roles = ["operator"] if roles is None else roles
        return mint_token(TEST_SECRET, tenant, user, roles, sites, ttl)

    return make


@pytest_asyncio.fixture(scope="session")
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = redis_cluster.client(redis_url)
    await initialize(client)
    yield client
    await client.aclose()


async def eventually(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
