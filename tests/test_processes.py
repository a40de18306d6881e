"""Real processes: `run` on its embedded default, and pipeline + 2 servers behind Redis."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import sys
import tempfile
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from notify_core.wire.events import TOPIC_ALERTS, TOPIC_KPIS
from tests import redis_cluster
from tests.conftest import SESSION
from tests.helpers import (
    TEST_SECRET,
    NodeClient,
    alert,
    cli_env,
    envelope,
    history_of,
    new_tenant,
)
from towerco_notify.embedded_broker import free_port

LOG_DIR = Path(tempfile.gettempdir()) / f"towerco-test-{SESSION}"


async def spawn(
    *args: str, env: dict[str, str], capture_stdout: bool = False
) -> asyncio.subprocess.Process:
    """Start the CLI; its log goes to a file (a pipe nobody reads would block it)."""
    LOG_DIR.mkdir(exist_ok=True)
    log = open(LOG_DIR / f"{args[0]}-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: ASYNC230
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "towerco_notify.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE if capture_stdout else log,
        stderr=log,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    return proc


def _tail(proc: asyncio.subprocess.Process) -> str:
    path = getattr(proc, "log_path", None)
    return Path(path).read_text(errors="replace")[-3000:] if path else ""


def cluster_env(broker: str, redis_url: str, name: str, **extra: str) -> dict[str, str]:
    """Settings for CLI processes that form one deployment (own group, own key prefix)."""
    prefix = f"test{SESSION}-{name}-{uuid.uuid4().hex[:6]}:"
    return cli_env(
        NOTIFY_KAFKA_BOOTSTRAP=broker,
        NOTIFY_REDIS_URL=redis_url,
        NOTIFY_REDIS_CLUSTER=str(redis_cluster.CLUSTER).lower(),
        NOTIFY_REDIS_PREFIX=prefix,
        NOTIFY_JWT_SECRET=TEST_SECRET,
        NOTIFY_APP_ID=f"{name}-{uuid.uuid4().hex[:6]}",
        NOTIFY_KAFKA_OFFSET_RESET="latest",
        NOTIFY_TANSU_COMPAT="true",
        NOTIFY_SYSTEM_CHANNEL=f"{prefix}system",
        NOTIFY_MAX_CONNECTIONS_PER_USER="1000",
        NOTIFY_AUTH_FAILURES_PER_MIN="1000000",
        # a group joins in half the session timeout (tansu): 3 s, not 6 s, per join
        NOTIFY_SESSION_TIMEOUT_S="3",
        **extra,
    )


async def wait_ready(port: int, proc: asyncio.subprocess.Process, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if proc.returncode is not None:
                raise AssertionError(f"process exited {proc.returncode}: {_tail(proc)}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise AssertionError(f"port {port} not ready in {timeout}s")


async def stop(proc: asyncio.subprocess.Process, timeout: float = 20) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError("did not stop on SIGTERM in time") from None
    return proc.returncode


async def test_run_embedded_default_end_to_end():
    """What a newcomer does: `towerco-notify run`, paste the token, see an event live."""
    port = free_port()
    proc = await spawn("run", "--http-port", str(port), env=cli_env(), capture_stdout=True)
    tansu_pid = None
    try:
        assert proc.stdout is not None
        banner = ""
        while "send events" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), 90)
            assert line, "daemon exited before its banner"
            banner += line.decode()
        assert f"http://127.0.0.1:{port}/#token=" in banner
        assert "embedded tansu, memory only" in banner and "nothing survives" in banner
        token = re.search(r"demo token\s+:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        bootstrap = re.search(r"Kafka bootstrap\s+:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        tansu_pid = _child_pid(proc.pid)

        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as r:
            assert r.status == 200 and "socket.io.min.js" in await r.text()
        client = await NodeClient.start(f"http://127.0.0.1:{port}", token)
        try:
            await client.connected()
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            await producer.send_and_wait(TOPIC_ALERTS, orjson.dumps(alert("demo", "E-1")))
            await producer.stop()
            line = await client.wait_for(lambda m: m.get("name") == "incident_alert", 30)
            assert line["data"]["tenant_id"] == "demo"
        finally:
            await client.close()
    finally:
        code = await stop(proc)
    assert code == 0
    if tansu_pid:
        await asyncio.sleep(0.2)
        assert not _alive(tansu_pid), "embedded broker left running"


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _child_pid(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = fh.read().split()
            return int(children[0]) if children else None
    return None


async def test_server_mode_refuses_to_start_without_redis():
    proc = await spawn(
        "server", "--kafka-bootstrap", "127.0.0.1:1", env=cli_env(NOTIFY_JWT_SECRET=TEST_SECRET)
    )
    await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 2 and "NOTIFY_REDIS_URL" in _tail(proc)


async def test_bad_settings_exit_with_the_variable_named():
    proc = await spawn("run", env=cli_env(NOTIFY_HTTP_PORT="eighty"))
    await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 2 and "NOTIFY_HTTP_PORT / --http-port = 'eighty'" in _tail(proc)


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_pipeline_and_two_servers_behind_redis(broker, redis_url, produce, token, transports):
    env = cluster_env(broker, redis_url, "mp")
    ports = [free_port(), free_port(), free_port()]
    procs = [
        await spawn("pipeline", "--http-port", str(ports[0]), env=env),
        await spawn("server", "--http-port", str(ports[1]), env=env),
        await spawn("server", "--http-port", str(ports[2]), env=env),
    ]
    clients: list[NodeClient] = []
    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_ready(port, proc)
        tenant = new_tenant()
        for port in ports[1:]:
            c = await NodeClient.start(
                f"http://127.0.0.1:{port}", token(tenant, sites=None), transports
            )
            await c.connected()
            assert (await c.emit("subscribe_kpis", {"site_ids": ["s1"]}))["granted"] == ["s1"]
            clients.append(c)
        for i in range(5):
            await produce(TOPIC_ALERTS, alert(tenant, f"MP-{i}", "major", site="s1"))
        await produce(TOPIC_KPIS, envelope(tenant, {"rssi_dbm": -80}, site="s1"))
        for c in clients:
            got = await c.wait_count(lambda m: m.get("name") == "incident_alert", 5, 30)
            assert [g["data"]["incident"]["incident_id"] for g in got] == [
                f"MP-{i}" for i in range(5)
            ]
            await c.wait_for(lambda m: m.get("name") == "kpi_update", 30)
        # an action on server 2 reaches the client on server 1
        ack = await clients[1].emit(
            "incident_action", {"incident_id": "MP-0", "action": "acknowledge"}
        )
        assert ack["ok"] is True
        update = await clients[0].wait_for(lambda m: m.get("name") == "incident_update", 30)
        assert update["data"]["incident_id"] == "MP-0"
        # history is shared: the HTTP API of either server returns the same ids
        async with aiohttp.ClientSession() as http:
            bodies = []
            for port in ports[1:]:
                async with http.get(
                    f"http://127.0.0.1:{port}/api/v1/notifications",
                    headers={"Authorization": "Bearer " + token(tenant)},
                ) as r:
                    bodies.append(await r.json())
        assert bodies[0] == bodies[1] and len(bodies[0]["notifications"]) == 7

        # a client of server 1 goes away, events happen, it comes back on server 2
        last_id = bodies[0]["next"]
        await clients[0].close()
        for i in range(20):
            await produce(TOPIC_ALERTS, alert(tenant, f"AWAY-{i}", "critical"))
        await clients[1].wait_count(
            lambda m: str(m.get("data", {}).get("incident", {}).get("incident_id", "")).startswith(
                "AWAY"
            ),
            20,
            30,
        )
        back = await NodeClient.start(
            f"http://127.0.0.1:{ports[2]}",
            auth={"token": token(tenant), "last_id": last_id},
            transports=transports,
        )
        clients[0] = back
        await back.connected()
        done = (await back.wait_for(lambda m: m.get("name") == "sync_complete", 30))["data"]
        assert done["recovered"] is True and done["replayed"] == 20
        assert [e["incident"]["incident_id"] for e in back.events("incident_alert")] == [
            f"AWAY-{i}" for i in range(20)
        ]
    finally:
        for c in clients:
            await c.close()
        codes = [await stop(p) for p in procs]
    assert codes == [0, 0, 0]


async def test_pipeline_killed_mid_stream_loses_and_duplicates_nothing(
    broker, redis_url, produce, token
):
    env = cluster_env(broker, redis_url, "kill")
    p_port, s_port = free_port(), free_port()
    pipeline = await spawn("pipeline", "--http-port", str(p_port), env=env)
    server = await spawn("server", "--http-port", str(s_port), env=env)
    tenant, total = new_tenant(), 600
    try:
        await wait_ready(p_port, pipeline)
        await wait_ready(s_port, server)

        async def stream() -> None:
            for i in range(total):
                await produce(TOPIC_ALERTS, alert(tenant, f"K-{i:03d}", "major"))
                await asyncio.sleep(0.01)

        producing = asyncio.create_task(stream())
        # killed once the group consumed and committed (offsets go every second): a group
        # with no commit yet would start the new process at the end (offset reset: latest)
        # and lose what came before, which is not the crash this test is about
        base = f"http://127.0.0.1:{s_port}"
        for _ in range(300):
            if len(await history_of(base, token(tenant))) >= 20:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        assert not producing.done(), "the kill must come mid-stream"
        pipeline.kill()  # SIGKILL mid-stream
        await pipeline.wait()
        pipeline = await spawn("pipeline", "--http-port", str(p_port), env=env)
        await producing
        await wait_ready(p_port, pipeline, 90)

        async def history() -> list[dict]:
            return await history_of(f"http://127.0.0.1:{s_port}", token(tenant))

        events: list[dict] = []
        for _ in range(300):
            events = await history()
            if len(events) >= total:
                break
            await asyncio.sleep(0.2)
        names = [e["incident"]["incident_id"] for e in events]
        assert names == [f"K-{i:03d}" for i in range(total)], "none missing, none twice"
        ids = [tuple(map(int, e["id"].split("-"))) for e in events]
        assert all(a < b for a, b in itertools.pairwise(ids))
    finally:
        await stop(pipeline)
        await stop(server)


ESCALATION_3_LEVELS = """\
policies:
  - name: three-levels
    match: {severities: [critical]}
    levels:
      - {wait: 2s, targets: [{oncall: true}]}
      - {wait: 3s, targets: [{oncall: true}]}
      - {wait: 3s, targets: [{oncall: true}]}
"""


async def _metric_value(port: int, name: str) -> float | None:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


async def escalation_leaders(ports: list[int], tries: int = 50) -> list[int]:
    """The indexes of `ports` whose process holds the escalation leader lock (waits for
    one to take it)."""
    leaders: list[int] = []
    for _ in range(tries):
        values = [await _metric_value(p, "notify_escalation_leader") for p in ports]
        leaders = [i for i, v in enumerate(values) if v == 1.0]
        if leaders:
            break
        await asyncio.sleep(0.2)
    return leaders


async def test_escalation_fires_each_level_once_across_processes_and_a_kill(
    broker, redis_url, token, tmp_path
):
    """Two pipeline processes share Redis; the scheduler holder is killed with SIGKILL
    while a level is pending: the other takes over and every level fires exactly once."""
    (tmp_path / "escalation.yaml").write_text(ESCALATION_3_LEVELS)
    env = cluster_env(broker, redis_url, "esc", NOTIFY_CONFIG_DIR=str(tmp_path))
    ports = [free_port(), free_port(), free_port()]
    procs = [
        await spawn("pipeline", "--http-port", str(ports[0]), env=env),
        await spawn("pipeline", "--http-port", str(ports[1]), env=env),
        await spawn("server", "--http-port", str(ports[2]), env=env),
    ]
    tenant = new_tenant()
    client = None
    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_ready(port, proc)
        leaders = await escalation_leaders(ports[:2])
        assert len(leaders) == 1, "exactly one active scheduler"
        client = await NodeClient.start(
            f"http://127.0.0.1:{ports[2]}", token(tenant, "oc", ["oncall"]), ["websocket"]
        )
        await client.connected()
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        await producer.send_and_wait(
            TOPIC_ALERTS, orjson.dumps(alert(tenant, "X-1")), key=tenant.encode()
        )
        await producer.stop()
        await client.wait_for(lambda m: m.get("name") == "escalation", 20)
        holder = procs[leaders[0]]
        holder.kill()  # SIGKILL while level 2 is pending
        await holder.wait()
        await client.wait_count(lambda m: m.get("name") == "escalation", 3, 40)
        await asyncio.sleep(3.0)
        levels = [e["level"] for e in client.events("escalation")]
        assert levels == [1, 2, 3], levels
        survivor = ports[1 - leaders[0]]
        assert await _metric_value(survivor, "notify_escalation_leader") == 1.0
    finally:
        if client is not None:
            await client.close()
        for proc in procs:
            if proc.returncode is None:
                await stop(proc)


async def test_two_pipelines_one_tenant_ids_reach_clients_in_order(broker, redis_url, token):
    """Two pipeline processes append the same tenant's events concurrently (its messages
    spread over every partition); the server fans out from the history, so clients still
    see ids strictly increasing."""
    env = cluster_env(broker, redis_url, "order")
    ports = [free_port(), free_port(), free_port()]
    procs = [
        await spawn("pipeline", "--http-port", str(ports[0]), env=env),
        await spawn("pipeline", "--http-port", str(ports[1]), env=env),
        await spawn("server", "--http-port", str(ports[2]), env=env),
    ]
    tenant, total = new_tenant(), 200
    clients: list[NodeClient] = []
    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_ready(port, proc)
        for transports in (["websocket"], ["polling"]):
            c = await NodeClient.start(f"http://127.0.0.1:{ports[2]}", token(tenant), transports)
            await c.connected()
            clients.append(c)
        producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=5)
        await producer.start()
        for i in range(total):
            await producer.send(
                TOPIC_ALERTS, orjson.dumps(alert(tenant, f"O-{i}", "info")), partition=i % 4
            )
        await producer.flush()
        await producer.stop()
        for c in clients:
            got = await c.wait_count(lambda m: m.get("name") == "incident_alert", total, 60)
            ids = [tuple(map(int, g["data"]["id"].split("-"))) for g in got]
            assert all(a < b for a, b in itertools.pairwise(ids)), "strictly increasing"
            names = {g["data"]["incident"]["incident_id"] for g in got}
            assert names == {f"O-{i}" for i in range(total)}
    finally:
        for c in clients:
            await c.close()
        for proc in procs:
            await stop(proc)


@pytest.mark.parametrize("mode", ["pipeline", "server"])
async def test_pipeline_and_server_refuse_to_start_without_a_key(mode):
    """Each would make up its own secret: tokens and webhook signatures of one process
    would not verify on another. (The twin above starts `server` with a secret: it gets
    as far as asking for Redis.)"""
    env = cli_env(
        NOTIFY_REDIS_URL="redis://127.0.0.1:6379/13", NOTIFY_KAFKA_BOOTSTRAP="127.0.0.1:1"
    )
    proc = await spawn(mode, env=env)
    await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 2 and "NOTIFY_JWT_SECRET" in _tail(proc)


async def test_run_with_a_real_secret_prints_no_demo_token():
    port = free_port()
    env = cli_env(NOTIFY_JWT_SECRET=TEST_SECRET)
    proc = await spawn("run", "--http-port", str(port), env=env, capture_stdout=True)
    try:
        assert proc.stdout is not None
        banner = ""
        while "send events" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), 90)
            if not line:
                break
            banner += line.decode()
    finally:
        await stop(proc)
    assert f"http://127.0.0.1:{port}/" in banner  # the positive twin: the banner is there
    assert "demo token" not in banner and "#token=" not in banner
    assert TEST_SECRET not in banner + _tail(proc)
