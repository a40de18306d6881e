"""Chaos at a steady load: faults one after another while alerts flow, and per fault how
many events clients lost, how many they got twice, and how long until every client was
live again.

    ./.venv/bin/python bench/chaos.py                       # 20 clients, 20 alerts/s
    ./.venv/bin/python bench/chaos.py --clients 50 --rate 50 --transport polling

Everything is real and local: a Redis of its own (AOF, fsync always, so a SIGKILL loses no
acknowledged write), tansu on S3 (moto's `moto_server`, so topics outlive a broker
restart), one `pipeline` and two `server` processes, and official socket.io-client
connections (bench/node/chaos_clients.mjs) that reconnect to the other server and resume
from their last id, as the dashboard does. The faults: Redis SIGKILLed and restarted,
Redis paused (CLIENT PAUSE), a server SIGKILLed (restarted), the pipeline SIGKILLed
(restarted), the broker stopped and started.

"Lost": (client, event) pairs produced in a fault's window that the client never got;
"twice": pairs it got more than once; "longest silence": over clients, the longest time a
client went without a new event of the window (from the fault on; at a steady rate r the
floor is about 1/r), which is how long the fault kept it from being live.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sio_server.admission.auth import mint_token  # noqa: E402
from towerco_notify.embedded_broker import EmbeddedBroker, free_port  # noqa: E402

SECRET = "chaos-bench-secret-0123456789abcdefghij"
BIN = Path(sys.executable).with_name("towerco-notify")


class Proc:
    """A child process that can be SIGKILLed and started again the same way."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


async def ready(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"port {port} not ready in {timeout}s")


async def redis_command(port: int, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "redis-cli", "-p", str(port), *args, stdout=asyncio.subprocess.DEVNULL
    )
    await proc.wait()


class Stack:
    def __init__(self, work: Path, clients: int, transport: str, storage: str) -> None:
        self.storage = storage
        self.work = work
        self.redis_port, self.s3_port, self.broker_port = free_port(), free_port(), free_port()
        self.p_port, self.s_ports = free_port(), [free_port(), free_port()]
        self.clients, self.transport = clients, transport
        s3 = f"http://127.0.0.1:{self.s3_port}"
        self.s3_env = {
            **os.environ,
            "AWS_ENDPOINT": s3,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        (work / "redis").mkdir()
        self.redis = Proc(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--dir", str(work / "redis"), "--appendonly", "yes", "--appendfsync", "always",
             "--save", ""],
            dict(os.environ), work,
        )  # fmt: skip
        moto = Path(sys.executable).with_name("moto_server")
        self.moto = Proc(
            "moto", [str(moto), "-H", "127.0.0.1", "-p", str(self.s3_port)], dict(os.environ), work
        )
        self.broker = self._broker()
        env = {
            **os.environ,
            "NOTIFY_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.broker_port}",
            "NOTIFY_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "NOTIFY_JWT_SECRET": SECRET,
            "NOTIFY_APP_ID": f"chaos-{uuid.uuid4().hex[:6]}",
            "NOTIFY_TANSU_COMPAT": "true",
            "NOTIFY_KAFKA_OFFSET_RESET": "earliest",
            "NOTIFY_MAX_CONNECTIONS_PER_USER": "100000",
            "NOTIFY_LOG_LEVEL": "WARNING",
        }
        self.pipeline = Proc("pipeline", [str(BIN), "pipeline", "--http-port", str(self.p_port)],
                             env, work)  # fmt: skip
        self.servers = [
            Proc(f"server{n}", [str(BIN), "server", "--http-port", str(port)], env, work)
            for n, port in enumerate(self.s_ports)
        ]

    def _broker(self) -> EmbeddedBroker:
        storage = "s3://tansu/" if self.storage == "s3" else "memory://tansu/"
        return EmbeddedBroker(port=self.broker_port, storage=storage, env=self.s3_env)

    async def start(self) -> None:
        self.redis.start()
        self.moto.start()
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the broker's bucket
                try:
                    async with http.put(f"http://127.0.0.1:{self.s3_port}/tansu") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        await self.broker.start()
        self.pipeline.start()
        for server in self.servers:
            server.start()
        await ready(self.p_port)
        for port in self.s_ports:
            await ready(port)

    async def stop(self) -> None:
        for proc in [*self.servers, self.pipeline]:
            proc.stop()
        await self.broker.stop()
        self.moto.stop()
        self.redis.stop()

    # -- the faults -----------------------------------------------------------------
    async def redis_killed(self) -> None:
        self.redis.kill()
        await asyncio.sleep(2)
        self.redis.start()

    async def redis_paused(self) -> None:
        await redis_command(self.redis_port, "CLIENT", "PAUSE", "3000", "ALL")

    async def server_killed(self) -> None:
        self.servers[0].kill()
        await asyncio.sleep(1)
        self.servers[0].start()

    async def pipeline_killed(self) -> None:
        self.pipeline.kill()
        await asyncio.sleep(1)
        self.pipeline.start()

    async def broker_restarted(self) -> None:
        await self.broker.stop()
        await asyncio.sleep(2)
        self.broker = self._broker()
        await self.broker.start()


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="towerco-chaos-"))
    stack = Stack(work, args.clients, args.transport, args.storage)
    tenant = "chaos" + uuid.uuid4().hex[:6]
    token = mint_token(SECRET, tenant, "bench", ["operator"], None, 7200)
    await stack.start()
    cfg = {
        "urls": [f"http://127.0.0.1:{p}" for p in stack.s_ports],
        "count": args.clients,
        "token": token,
        "transports": [args.transport],
        "retry_ms": 300,
    }
    node = await asyncio.create_subprocess_exec(
        "node", str(ROOT / "bench" / "node" / "chaos_clients.mjs"), json.dumps(cfg),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT / "bench" / "node"), limit=1 << 26,
    )  # fmt: skip
    assert node.stdout is not None
    await asyncio.wait_for(node.stdout.readline(), 60)  # every client connected
    producer = AIOKafkaProducer(
        bootstrap_servers=f"127.0.0.1:{stack.broker_port}", acks="all", request_timeout_ms=60000
    )
    await producer.start()
    produced: list[tuple[str, float]] = []  # incident id, wall time (ms) it was sent
    stop = asyncio.Event()
    # one send at a time: concurrent sends make multi-record batches, whose end offsets
    # tansu misreports (NOTIFY_TANSU_COMPAT); a source that is down for a while queues up
    outbox: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def sender() -> None:
        while (value := await outbox.get()) is not None:
            await producer.send_and_wait("towerco.incidents.alerts", value, key=tenant.encode())

    async def produce() -> None:
        n = 0
        while not stop.is_set():
            ident = f"C-{n:06d}"
            value = {
                "tenant_id": tenant,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "payload": {"incident_id": ident, "title": "chaos", "severity": "major"},
            }
            produced.append((ident, time.time() * 1000))
            outbox.put_nowait(orjson.dumps(value))
            n += 1
            await asyncio.sleep(1 / args.rate)

    faults: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("Redis SIGKILL + restart", stack.redis_killed),
        ("Redis CLIENT PAUSE 3 s", stack.redis_paused),
        ("server SIGKILL + restart", stack.server_killed),
        ("pipeline SIGKILL + restart", stack.pipeline_killed),
        ("broker stop + start (S3)", stack.broker_restarted),
    ]
    if args.storage != "s3":  # a memory broker's topics do not survive its restart
        faults = faults[:-1]
    faults = [f for f in faults if not args.only or any(o in f[0] for o in args.only)]
    producing = asyncio.create_task(produce())
    sending = asyncio.create_task(sender())
    marks: list[tuple[str, float]] = [("(none: steady load)", time.time() * 1000)]
    try:
        await asyncio.sleep(args.settle)
        for name, fault in faults:
            marks.append((name, time.time() * 1000))
            print(f"[chaos] {name}", flush=True)
            await fault()
            await asyncio.sleep(args.settle)
        stop.set()
        await producing
        outbox.put_nowait(None)
        await sending
        await asyncio.sleep(args.drain)
        assert node.stdin is not None and node.stdout is not None
        node.stdin.write(b"report\n")
        await node.stdin.drain()
        report = json.loads(await node.stdout.readline())
        if args.keep:
            await inspect(stack, tenant)
    finally:
        stop.set()
        await producer.stop()
        if node.returncode is None:
            node.kill()
        await stack.stop()
        if args.keep:
            print(f"[chaos] logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(report, produced, marks, args)


async def inspect(stack: Stack, tenant: str) -> None:
    """What the history holds and what the pipeline counted (for a run that looks wrong)."""
    xlen = await asyncio.create_subprocess_exec(
        "redis-cli", "-p", str(stack.redis_port), "XLEN", f"towerco:history:{{{tenant}}}",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await xlen.communicate()
    print(f"[chaos] history entries: {out.decode().strip()}")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{stack.p_port}/metrics") as resp,
    ):
        for line in (await resp.text()).splitlines():
            if line.startswith(("notify_events", "notify_dead_letters", "notify_duplicates")):
                print(f"[chaos] pipeline {line}")


def print_table(
    report: dict[str, Any],
    produced: list[tuple[str, float]],
    marks: list[tuple[str, float]],
    args: argparse.Namespace,
) -> None:
    clients = [{k: (n, t) for k, n, t in c} for c in report["clients"]]
    ends = [t for _, t in marks[1:]] + [float("inf")]
    print(f"\n{args.clients} clients ({args.transport}), {args.rate} alerts/s, "
          f"{len(produced)} alerts, {report['connects']} connects, "
          f"{report['recovered_false']} resumes answered recovered:false\n")  # fmt: skip
    print("| fault | events in window | lost | twice | longest silence |")
    print("|---|---|---|---|---|")
    for (name, start), end in zip(marks, ends, strict=True):
        window = [(k, t) for k, t in produced if start <= t < end]
        lost = sum(1 for c in clients for k, _ in window if k not in c)
        twice = sum(1 for c in clients for k, _ in window if c.get(k, (0, 0))[0] > 1)
        silences = []
        for c in clients:
            got = sorted(c[k][1] for k, _ in window if k in c)
            if got:
                marks_at = [start, *got]
                silences.append(max(b - a for a, b in itertools.pairwise(marks_at)))
        worst = f"{max(silences) / 1000:.1f} s" if len(silences) == len(clients) else "never"
        print(f"| {name} | {len(window)} | {lost} | {twice} | {worst} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second")
    parser.add_argument("--transport", default="websocket", choices=["websocket", "polling"])
    parser.add_argument("--settle", type=float, default=8.0, help="seconds between faults")
    parser.add_argument("--drain", type=float, default=15.0, help="seconds to let it catch up")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    parser.add_argument("--storage", default="s3", choices=["s3", "memory"], help="the broker's")
    parser.add_argument("--only", nargs="*", help="faults whose name holds one of these")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
