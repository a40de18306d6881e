"""The suite's Redis: the local server (db 13), or with `TOWERCO_TEST_REDIS=cluster` a
3-master Redis Cluster the session starts itself (Debian's redis-server with
`--cluster-enabled yes`, joined by `redis-cli --cluster create`) and removes at the end.

Tests get their clients from `client(url)`, and the daemons they start are told
`NOTIFY_REDIS_CLUSTER` from `CLUSTER`, so the same tests run on both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from notify_core.redis.factory import connect, connect_sync

CLUSTER = os.environ.get("TOWERCO_TEST_REDIS", "").lower() == "cluster"
MASTERS = 3


def client(url: str) -> Redis:
    """A client of the suite's Redis (a cluster client on the cluster)."""
    return connect(url, CLUSTER)


def _free_port() -> int:
    """A port whose cluster-bus twin (+10000) is free as well."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 >= 65536:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class LocalCluster:
    def __init__(self, masters: int = MASTERS) -> None:
        self.ports = [_free_port() for _ in range(masters)]
        self.dir = Path(tempfile.mkdtemp(prefix="towerco-cluster-"))
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    async def start(self) -> None:
        server = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if not server or not cli:
            raise RuntimeError("TOWERCO_TEST_REDIS=cluster needs redis-server and redis-cli")
        for port in self.ports:
            self._spawn(server, port)
        for port in self.ports:
            await _until_up(port)
        hosts = [f"127.0.0.1:{p}" for p in self.ports]
        create = await asyncio.create_subprocess_exec(
            cli, "--cluster", "create", *hosts, "--cluster-replicas", "0", "--cluster-yes",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await create.communicate()
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {out.decode()[-2000:]}")
        for port in self.ports:  # every node agrees the cluster is whole
            await _until_state_ok(port)

    def _spawn(self, server: str, port: int) -> None:
        """A node (it outlives `start`: a plain process, not an asyncio one)."""
        node = self.dir / str(port)
        node.mkdir()
        self._procs.append(
            subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--dir", str(node),
                 "--logfile", str(node / "redis.log")],
            )
        )  # fmt: skip

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


async def until_answers(redis: Redis, what: str, tries: int = 100, every_s: float = 0.05) -> None:
    """PING until `redis` answers (a server just started); raises naming `what` if not."""
    for _ in range(tries):
        try:
            await redis.ping()
            return
        except Exception:
            await asyncio.sleep(every_s)
    raise RuntimeError(f"{what} did not answer PING")


async def _until_up(port: int) -> None:
    probe = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
    try:
        await until_answers(probe, f"redis-server on port {port}")
    finally:
        await probe.aclose()


async def _until_state_ok(port: int) -> None:
    probe = Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(200):
            info = (await probe.execute_command("CLUSTER", "INFO")).decode()
            if "cluster_state:ok" in info:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the cluster did not reach cluster_state:ok (node {port})")
    finally:
        await probe.aclose()


def _everywhere() -> dict[str, str]:
    return {"target_nodes": RedisCluster.ALL_NODES} if CLUSTER else {}


async def pause_writes(redis: Redis, ms: int) -> None:
    """`CLIENT PAUSE <ms> WRITE` on the one Redis, or on every cluster node."""
    await redis.client_pause(ms, all=False, **_everywhere())  # type: ignore[call-arg]


async def unpause(redis: Redis) -> None:
    await redis.client_unpause(**_everywhere())  # type: ignore[call-arg]


def sync_client(url: str) -> SyncRedis:
    """A synchronous client of the suite's Redis (APScheduler's job store)."""
    return connect_sync(url, CLUSTER)
