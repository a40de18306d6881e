"""A real Sentinel set from Debian's redis-server: a master, one replica and three
Sentinels (quorum 2) that fail over a second after the master stops answering. No
persistence: what the replica had not received when the master died is gone, which is the
loss `NOTIFY_REDIS_MIN_REPLICAS` exists to prevent.

A Sentinel will not promote a replica whose link to the master has been down for more than
ten times `down-after-milliseconds` (plus the time since the master went down), and the
tests cut the replica's link a while before they kill the master: how long depends on the
machine (on a loaded CI, more than twenty seconds). So `fail_over` first raises
`down-after-milliseconds` to what the time since the cut needs, and the cut replica stays
the one to promote however long the test took to get there."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from tests.redis_cluster import until_answers
from towerco_notify.embedded_broker import free_port

SERVICE = "notify"
DOWN_AFTER_MS = 1000


class SentinelSet:
    def __init__(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is not installed")
        self.server = server
        self.dir = Path(tempfile.mkdtemp(prefix="towerco-sentinel-"))
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self._cut_at: float | None = None  # when cut_replica cut the replica off

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _redis(self, port: int, *extra: str) -> None:
        log = self.dir / f"{port}.log"
        self.procs[port] = subprocess.Popen(
            [self.server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(log),
             # a replica's full sync starts at once (the default waits 5 s for others)
             "--repl-diskless-sync-delay", "0", *extra]
        )  # fmt: skip

    def _sentinel(self, port: int, conf: Path) -> None:
        log = str(self.dir / f"s{port}.log")
        self.procs[port] = subprocess.Popen(
            [self.server, str(conf), "--sentinel", "--logfile", log]
        )

    async def start(self) -> None:
        self._redis(self.master_port)
        master = Redis(port=self.master_port)
        try:
            await until_answers(master, "the master")
            # the replica signs in as its own user: switching it off cuts replication while
            # the replica stays up and answers the Sentinels (a frozen one would not)
            await master.execute_command("ACL", "SETUSER", "repl", "on", ">repl-pw", "~*", "+@all")
        finally:
            await master.aclose()
        self._redis(
            self.replica_port,
            "--replicaof", "127.0.0.1", str(self.master_port),
            "--masteruser", "repl", "--masterauth", "repl-pw",
        )  # fmt: skip
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            self._sentinel(port, conf)
        await self.until_replicas(self.master_port, 1)
        await self.until_sentinels_ready()

    async def until_sentinels_ready(self, timeout_s: float = 30) -> None:
        """Until every Sentinel knows the replica and the two other Sentinels. Both are
        learnt from the master (its INFO every 10 s, hellos on its channel every 2 s): a
        Sentinel that had not learnt them before the replica is cut off or the master dies
        never can, and then it has no replica to promote or no quorum to agree with."""
        for port in self.sentinel_ports:
            sentinel = Redis(port=port, decode_responses=True)
            try:
                for _ in range(int(timeout_s / 0.1)):
                    replicas = await sentinel.sentinel_slaves(SERVICE)
                    others = await sentinel.sentinel_sentinels(SERVICE)
                    known = {int(r["port"]) for r in replicas}
                    if self.replica_port in known and len(others) == 2:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"Sentinel {port} did not learn the replica and its peers")
            finally:
                await sentinel.aclose()

    async def until_replicas(self, port: int, n: int, timeout_s: float = 20) -> None:
        """Until the server on `port` is a master with `n` replicas online."""
        probe = Redis(port=port)
        try:
            for _ in range(int(timeout_s / 0.1)):
                try:
                    info = await probe.info("replication")
                    online = [
                        k for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                        and v.get("state") == "online"
                    ]  # fmt: skip
                    if info.get("role") == "master" and len(online) >= n:
                        return
                except Exception:
                    pass
                await asyncio.sleep(0.1)
            raise RuntimeError(f"redis on {port} has no {n} online replica(s)")
        finally:
            await probe.aclose()

    async def cut_replica(self) -> None:
        """The replica stops receiving: its user is switched off and its link cut, so it
        cannot sync again; it stays up, so the Sentinels can still promote it."""
        master = Redis(port=self.master_port)
        try:
            await master.execute_command("ACL", "SETUSER", "repl", "off")
            await master.execute_command("CLIENT", "KILL", "TYPE", "replica")
        finally:
            await master.aclose()
        self._cut_at = time.monotonic()

    async def _keep_cut_replica_eligible(self) -> float:
        """Promotion needs the replica's link down for at most 9 x down-after before the
        master goes down (10 x, less the down-after that detection takes): raise it for the
        time since the cut, plus 10 s for the kill and the election. Returns the
        down-after in force, in seconds."""
        if self._cut_at is None:
            return DOWN_AFTER_MS / 1000
        needed_ms = int((time.monotonic() - self._cut_at + 10) * 1000 / 9)
        if needed_ms <= DOWN_AFTER_MS:
            return DOWN_AFTER_MS / 1000
        for port in self.sentinel_ports:
            sentinel = Redis(port=port)
            try:
                await sentinel.execute_command(
                    "SENTINEL", "SET", SERVICE, "down-after-milliseconds", str(needed_ms)
                )
            finally:
                await sentinel.aclose()
        return needed_ms / 1000

    async def fail_over(self) -> None:
        """The master dies (SIGKILL) and the Sentinels promote the lagging replica; the old
        master comes back (empty) as a replica of the new one."""
        down_after_s = await self._keep_cut_replica_eligible()
        old = self.procs[self.master_port]
        old.kill()
        old.wait()
        probe = Redis(port=self.replica_port)
        try:
            for _ in range(int((30 + 3 * down_after_s) * 10)):  # detection takes down-after
                try:
                    if (await probe.info("replication")).get("role") == "master":
                        break
                except Exception:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the Sentinels did not promote the replica")
        finally:
            await probe.aclose()
        self._redis(self.master_port)  # Sentinel turns it into a replica of the new master

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not os.environ.get("TOWERCO_KEEP_SENTINEL"):
            shutil.rmtree(self.dir, ignore_errors=True)
