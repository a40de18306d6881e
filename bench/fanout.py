"""Fan-out benchmark: Kafka -> server -> K socket.io-client connections, daemon vs Node.

Produces incident alerts at rate R into Kafka (a tansu broker started here); the same
K official Node clients (`forceNew: true`) connect to towerco-notify (`run` mode, memory
engine) and then to a plain Node socket.io server fed from the same topic with kafkajs.
Reports delivered msg/s, Kafka-to-client latency p50/p99, loss, and server CPU per
delivered message, side by side with the ratio.

    ./dev bench                                  # K=100,1000 at 20,50,100 alerts/s, websocket
    ./dev bench --clients 1000 --rates 50 --transport polling --duration 10
    ./dev bench --clients 1000 --rates 20,50 --transport websocket,ws,sse --targets daemon
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.wire.events import ALL_TOPICS, TOPIC_ALERTS  # noqa: E402
from pipeline.kafka.topics import ensure_topics  # noqa: E402
from sio_server.admission.auth import mint_token  # noqa: E402
from towerco_notify.embedded_broker import EmbeddedBroker, free_port  # noqa: E402

NODE = ROOT / "bench" / "node"
SECRET = "bench-secret-0123456789abcdefghijklmnop"
TENANT = "bench"
SOCKETIO_TRANSPORTS = ("websocket", "polling")
STREAM_TRANSPORTS = ("ws", "sse")  # the daemon's own: the Node reference does not speak them


def ensure_node_packages() -> None:
    """socket.io, socket.io-client and kafkajs for the clients and the reference server."""
    if all((NODE / "node_modules" / pkg).is_dir() for pkg in ("socket.io-client", "ws")):
        return
    print("installing the benchmark's Node packages (npm ci in bench/node)...", flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE, check=True
    )


def markdown_table(head: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table, as docs/performance.md holds them."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def start_broker() -> tuple[EmbeddedBroker, AIOKafkaProducer]:
    """A tansu broker with the daemon's topics, and a producer for the alerts."""
    broker = EmbeddedBroker()
    await broker.start()
    await ensure_topics(broker.bootstrap, ALL_TOPICS, 4)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, linger_ms=1)
    await producer.start()
    return broker, producer


async def start_daemon(
    bootstrap: str, port: int, extra: list[str], mode: str = "run"
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    # thousands of clients share the bench's one token: lift the per-user/tenant caps
    env["NOTIFY_MAX_CONNECTIONS_PER_USER"] = env["NOTIFY_MAX_CONNECTIONS_PER_TENANT"] = "1000000"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "towerco_notify.cli",
        mode,
        "--kafka-bootstrap",
        bootstrap,
        "--http-port",
        str(port),
        "--jwt-secret",
        SECRET,
        "--app-id",
        f"bench-{uuid.uuid4().hex[:6]}",
        "--kafka-offset-reset",
        "latest",
        "--log-level",
        "WARNING",
        *extra,
        env=env,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=sys.stderr,
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return proc
            await asyncio.sleep(0.1)
    raise RuntimeError("daemon not ready")


async def start_reference(
    bootstrap: str, port: int, fetch_wait_ms: int = 20
) -> asyncio.subprocess.Process:
    cfg = {
        "port": port,
        "bootstrap": bootstrap,
        "topic": TOPIC_ALERTS,
        "group": f"ref-{uuid.uuid4().hex[:6]}",
        "fetch_wait_ms": fetch_wait_ms,
    }
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(NODE / "ref_server.mjs"),
        json.dumps(cfg),
        cwd=str(NODE),
        stdout=asyncio.subprocess.PIPE,
        stderr=sys.stderr,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if b"ready" not in line:
        raise RuntimeError(f"reference server failed: {line!r}")
    return proc


class Clients:
    def __init__(self, procs: list[asyncio.subprocess.Process]) -> None:
        self.procs = procs

    def cpu_seconds(self) -> float:
        """The client processes' CPU so far (user + system)."""
        return sum(cpu_seconds(p.pid) for p in self.procs if p.returncode is None)

    @classmethod
    async def start(
        cls,
        url: str,
        count: int,
        transport: str,
        auth: dict[str, Any],
        processes: int,
        keepalive: bool = False,
    ) -> Clients:
        procs = []
        per = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
        # Socket.IO's transports through socket.io-client; ADR-010's plain WebSocket and
        # SSE through stream_clients.mjs (the same report protocol)
        script = "stream_clients.mjs" if transport in STREAM_TRANSPORTS else "clients.mjs"
        for n in per:
            cfg = {
                "url": url,
                "count": n,
                "transports": [transport],
                "transport": transport,
                "auth": auth,
                "token": auth.get("token"),
                "tenant": TENANT,
                "user": "bench",
                "event": "incident_alert",
                "keepalive": keepalive,
            }
            procs.append(
                await asyncio.create_subprocess_exec(
                    "node",
                    str(NODE / script),
                    json.dumps(cfg),
                    cwd=str(NODE),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=sys.stderr,
                )
            )
        self = cls(procs)
        for proc in procs:
            ready = await self._line(proc, 180)
            if ready.get("failed"):
                raise RuntimeError(f"clients failed to connect: {ready}")
        return self

    @staticmethod
    async def _line(proc: asyncio.subprocess.Process, timeout: float = 30) -> dict[str, Any]:
        assert proc.stdout is not None
        return json.loads(await asyncio.wait_for(proc.stdout.readline(), timeout))

    async def report(self) -> dict[str, Any]:
        reports = []
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"report\n")
            await proc.stdin.drain()
            reports.append(await self._line(proc))
        received = sum(r["received"] for r in reports)
        # per-process percentiles; report the worst process (conservative)
        worst = max(reports, key=lambda r: r["p99"] or 0)
        return {
            "received": received,
            "p50": worst["p50"],
            "p99": worst["p99"],
            "max": max((r["max"] or 0) for r in reports),
            "first_p50": worst.get("first_p50"),
            "first_p99": worst.get("first_p99"),
        }

    async def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.write(b"quit\n")
                await proc.stdin.drain()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()


async def produce(producer: AIOKafkaProducer, rate: float, duration: float) -> int:
    sent, start = 0, time.monotonic()
    while time.monotonic() - start < duration:
        due = start + sent / rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        env = {
            "tenant_id": TENANT,
            "timestamp": ts,
            "payload": {
                "incident_id": f"B-{sent}",
                "title": "Rectifier module failure",
                "description": "Rectifier 2 of 4 failed at shelter A",
                "severity": "critical",
            },
        }
        await producer.send(TOPIC_ALERTS, orjson.dumps(env), key=TENANT.encode())
        sent += 1
    await producer.flush()
    return sent


_QS = {"p50": 0.5, "p99": 0.99}


async def emit_latency_buckets(url: str) -> dict[float, float] | None:
    """The daemon's cumulative `notify_kafka_to_emit_seconds` buckets (le -> count), or None
    for a server without them (the Node reference)."""
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"{url}/metrics") as resp,
        ):
            if resp.status != 200:
                return None
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError):  # Node's server leaves the request open
        return None
    buckets = {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "notify_kafka_to_emit_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    return buckets or None


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> Any:
    """The upper bound (ms) of the histogram bucket holding quantile `q` of what was
    observed between the two scrapes: coarse, but it separates the daemon's own time
    (Kafka record to emit call) from the fan-out and the clients."""
    total = after[float("inf")] - before.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for le in sorted(after):
        if after[le] - before.get(le, 0.0) >= q * total:
            return "inf" if le == float("inf") else round(le * 1000, 1)
    return None


async def run_target(
    name: str,
    pid: int,
    url: str,
    auth: dict[str, Any],
    producer: AIOKafkaProducer,
    args: argparse.Namespace,
    transport: str,
) -> list[dict[str, Any]]:
    rows = []
    for k in args.clients:
        clients = await Clients.start(url, k, transport, auth, args.client_procs, args.keepalive)
        try:
            await asyncio.sleep(1.0)
            await clients.report()  # reset
            if args.idle > 0:
                rows.append(await idle_row(name, pid, transport, k, args.idle))
            scrape = name == "daemon"  # the reference has no metrics endpoint
            for rate in args.rates:
                emits0 = await emit_latency_buckets(url) if scrape else None
                cpu0, t0 = cpu_seconds(pid), time.monotonic()
                client_cpu0 = clients.cpu_seconds()
                sent = await produce(producer, rate, args.duration)
                await asyncio.sleep(args.drain)
                cpu1, elapsed = cpu_seconds(pid), time.monotonic() - t0
                client_cpu = clients.cpu_seconds() - client_cpu0
                rep = await clients.report()
                emits1 = await emit_latency_buckets(url) if scrape else None
                inside = {"p50": None, "p99": None}
                if emits0 is not None and emits1 is not None:
                    inside = {q: bucket_quantile(emits0, emits1, v) for q, v in _QS.items()}
                expected = sent * k
                row = {
                    "target": name,
                    "transport": transport,
                    "clients": k,
                    "rate": rate,
                    "sent": sent,
                    "expected": expected,
                    "received": rep["received"],
                    "loss_pct": round(100 * (1 - rep["received"] / expected), 2) if expected else 0,
                    "delivered_per_s": round(rep["received"] / args.duration),
                    "p50_ms": rep["p50"],
                    "p99_ms": rep["p99"],
                    "max_ms": rep["max"],
                    # the first of the K deliveries of each alert: Kafka, server, one write
                    "first_p50_ms": rep["first_p50"],
                    "first_p99_ms": rep["first_p99"],
                    # the daemon's own share: Kafka record time to the emit call (bucket
                    # bound from its histogram; the Node reference has none)
                    "to_emit_p50_ms_le": inside["p50"],
                    "to_emit_p99_ms_le": inside["p99"],
                    "cpu_us_per_msg": round(1e6 * (cpu1 - cpu0) / max(1, rep["received"]), 1),
                    "cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1),
                    # the Node client processes' CPU per message: with K clients in one
                    # process, one alert costs it K times this, which spreads the K
                    # deliveries over that long whatever the server does
                    "client_us_per_msg": round(1e6 * client_cpu / max(1, rep["received"]), 1),
                    "rss_mb": round(rss_mb(pid), 1),
                }
                rows.append(row)
                print(
                    f"  {name:7} {transport:9} K={k:<5} R={rate:<5} "
                    f"delivered/s={row['delivered_per_s']:<7} "
                    f"loss={row['loss_pct']:>6}% p50={row['p50_ms']}ms p99={row['p99_ms']}ms "
                    f"first-delivery p50/p99={row['first_p50_ms']}/{row['first_p99_ms']}ms "
                    + (
                        f"kafka-to-emit p50/p99<={inside['p50']}/{inside['p99']}ms "
                        if inside["p50"] is not None
                        else ""
                    )
                    + f"cpu/msg={row['cpu_us_per_msg']}us cpu={row['cpu_pct']}% "
                    f"clients cpu/msg={row['client_us_per_msg']}us",
                    flush=True,
                )
        finally:
            await clients.close()
    return rows


async def idle_row(name: str, pid: int, transport: str, k: int, seconds: float) -> dict[str, Any]:
    """The server's CPU with K connected clients and no traffic (engine.io's pings every
    25 s included when `seconds` spans them)."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    pct = round(100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0), 2)
    print(f"  {name:7} {transport:9} K={k:<5} idle for {seconds:g}s: cpu={pct}%", flush=True)
    return {"target": name, "transport": transport, "clients": k, "rate": 0, "idle_cpu_pct": pct}


def idle_table(rows: list[dict[str, Any]]) -> str:
    idle = sorted(
        (r for r in rows if "idle_cpu_pct" in r),
        key=lambda r: (r["transport"], r["clients"], r["target"]),
    )
    return markdown_table(
        ["transport", "K", "server", "idle CPU % of a core"],
        [[r["transport"], r["clients"], r["target"], r["idle_cpu_pct"]] for r in idle],
    )


def versus_websocket_table(rows: list[dict[str, Any]], transport: str) -> str:
    """One of the daemon's own transports (ws, sse) against its Socket.IO WebSocket, the
    target it is measured by (the Node reference speaks neither)."""
    by = {(r["transport"], r["clients"], r["rate"]): r for r in rows if r["target"] == "daemon"}
    head = [
        "K", "R/s", f"{transport} msg/s", "websocket msg/s", f"{transport} p50/p99 ms",
        "websocket p50/p99 ms", f"{transport} µs/msg", "websocket µs/msg", "ratio",
        f"{transport} loss", "websocket loss",
    ]  # fmt: skip
    cells = []
    for (t, k, rate), d in sorted(by.items(), key=lambda x: (x[0][1], x[0][2])):
        w = by.get(("websocket", k, rate))
        if t != transport or w is None:
            continue
        ratio = f"{d['cpu_us_per_msg'] / w['cpu_us_per_msg']:.2f}" if w["cpu_us_per_msg"] else "-"
        cells.append(
            [
                k,
                rate,
                d["delivered_per_s"],
                w["delivered_per_s"],
                f"{d['p50_ms']}/{d['p99_ms']}",
                f"{w['p50_ms']}/{w['p99_ms']}",
                d["cpu_us_per_msg"],
                w["cpu_us_per_msg"],
                ratio,
                f"{d['loss_pct']}%",
                f"{w['loss_pct']}%",
            ]
        )
    return markdown_table(head, cells)


def transports_table(rows: list[dict[str, Any]]) -> str:
    """The daemon's transports side by side, per K and rate (one run, same clients' kind)."""
    kinds = sorted({r["transport"] for r in rows if r["target"] == "daemon"})
    head = ["K", "R/s"]
    for t in kinds:
        head += [f"{t} msg/s", f"{t} p50/p99 ms", f"{t} µs/msg", f"{t} loss"]
    by = {(r["transport"], r["clients"], r["rate"]): r for r in rows if r["target"] == "daemon"}
    cells = []
    for k, rate in sorted({(r["clients"], r["rate"]) for r in rows if r["target"] == "daemon"}):
        row: list[Any] = [k, rate]
        for t in kinds:
            d = by.get((t, k, rate))
            row += (
                [
                    d["delivered_per_s"],
                    f"{d['p50_ms']}/{d['p99_ms']}",
                    d["cpu_us_per_msg"],
                    f"{d['loss_pct']}%",
                ]
                if d
                else ["-"] * 4
            )
        cells.append(row)
    return markdown_table(head, cells)


def table(rows: list[dict[str, Any]]) -> str:
    head = [
        "K", "R/s", "daemon msg/s", "node msg/s", "ratio", "daemon p50/p99 ms",
        "node p50/p99 ms", "daemon µs/msg", "node µs/msg", "daemon loss", "node loss",
    ]  # fmt: skip
    cells = []
    by = {(r["target"], r["clients"], r["rate"]): r for r in rows}
    for (target, k, rate), d in sorted(by.items(), key=lambda x: (x[0][1], x[0][2])):
        if target != "daemon":
            continue
        n = by.get(("node", k, rate))
        ratio = (
            f"{d['delivered_per_s'] / n['delivered_per_s']:.2f}"
            if n and n["delivered_per_s"]
            else "-"
        )
        node_rate = n["delivered_per_s"] if n else "-"
        node_lat = f"{n['p50_ms']}/{n['p99_ms']}" if n else "-"
        node_cpu = n["cpu_us_per_msg"] if n else "-"
        node_loss = n["loss_pct"] if n else "-"
        cells.append(
            [
                k,
                rate,
                d["delivered_per_s"],
                node_rate,
                ratio,
                f"{d['p50_ms']}/{d['p99_ms']}",
                node_lat,
                d["cpu_us_per_msg"],
                node_cpu,
                f"{d['loss_pct']}%",
                f"{node_loss}%",
            ]
        )
    return markdown_table(head, cells)


def write_plot(rows: list[dict[str, Any]], path: Path) -> bool:
    """Latency percentiles against delivered rate, one line per server and K (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no plot: pip install -e '.[bench]' for matplotlib)")
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    series: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        series.setdefault((f"{r['target']} {r['transport']}", r["clients"]), []).append(r)
    for (target, k), rs in sorted(series.items()):
        rs.sort(key=lambda r: r["rate"])
        x = [r["rate"] * k for r in rs]  # offered msg/s
        style = "-" if target.startswith("daemon") else "--"
        for q, marker in (("p50_ms", "o"), ("p99_ms", "^")):
            ax.plot(
                x,
                [max(1, r[q] or 1) for r in rs],
                style,
                marker=marker,
                label=f"{target} K={k} {q.split('_')[0]}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered messages/s (alerts/s x clients)")
    ax.set_ylabel("Kafka → client latency, ms")
    ax.axhline(1000, color="grey", linewidth=0.8, linestyle=":")
    kinds = ",".join(sorted({r["transport"] for r in rows}))
    vs = " vs Node socket.io" if any(r["target"] == "node" for r in rows) else ""
    ax.set_title(f"towerco-notify{vs} ({kinds})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clients", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000]
    )
    parser.add_argument(
        "--rates", type=lambda s: [float(x) for x in s.split(",")], default=[20, 50, 100]
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per rate")
    parser.add_argument("--drain", type=float, default=2.0, help="seconds to wait after producing")
    parser.add_argument(
        "--transport",
        type=lambda s: s.split(","),
        default=["websocket"],
        help="comma-separated: websocket, polling (Socket.IO, against the Node reference too),"
        " ws (ADR-010's plain WebSocket), sse (Server-Sent Events): the daemon's transports"
        " side by side in one run",
    )
    parser.add_argument("--targets", default="daemon,node")
    parser.add_argument(
        "--client-procs", type=int, default=1, help="Node processes for the clients"
    )
    parser.add_argument("--daemon-args", default="", help="extra flags for towerco-notify run")
    parser.add_argument(
        "--keepalive",
        action="store_true",
        help="polling clients reuse one HTTP connection between polls, as browsers do (the"
        " Node client's default is a new TCP connection per request)",
    )
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        default=20,
        help="Kafka fetch wait of both servers (the daemon's NOTIFY_FETCH_WAIT_MS, kafkajs's"
        " maxWaitTimeInMs): the latency floor when the broker holds a fetch that long",
    )
    parser.add_argument("--plot", default="", help="PNG path (default: next to the raw results)")
    parser.add_argument(
        "--idle",
        type=float,
        default=0.0,
        help="seconds of no traffic measured per server and K before the rates (30 spans a"
        " ping round)",
    )
    args = parser.parse_args()
    unknown = set(args.transport) - {*SOCKETIO_TRANSPORTS, *STREAM_TRANSPORTS}
    if unknown:
        parser.error(f"--transport: unknown {sorted(unknown)}")
    if set(args.transport) & set(STREAM_TRANSPORTS) and "websocket" not in args.transport:
        args.transport.append("websocket")  # what ws and sse are measured against
    ensure_node_packages()

    broker, producer = await start_broker()
    rows: list[dict[str, Any]] = []
    procs: list[asyncio.subprocess.Process] = []
    try:
        targets = args.targets.split(",")
        if "daemon" in targets:
            port = free_port()
            proc = await start_daemon(
                broker.bootstrap,
                port,
                ["--fetch-wait-ms", str(args.fetch_wait_ms), *args.daemon_args.split()],
            )
            procs.append(proc)
            token = mint_token(SECRET, TENANT, "bench", ["operator"], ttl_s=3600)
            print(f"daemon (pid {proc.pid}) on :{port}", flush=True)
            for transport in args.transport:
                rows += await run_target(
                    "daemon",
                    proc.pid,
                    f"http://127.0.0.1:{port}",
                    {"token": token},
                    producer,
                    args,
                    transport,
                )
            proc.terminate()
            await proc.wait()
        socketio = [t for t in args.transport if t in SOCKETIO_TRANSPORTS]
        if "node" in targets and socketio:
            port = free_port()
            proc = await start_reference(broker.bootstrap, port, args.fetch_wait_ms)
            procs.append(proc)
            print(f"node reference (pid {proc.pid}) on :{port}", flush=True)
            for transport in socketio:
                rows += await run_target(
                    "node",
                    proc.pid,
                    f"http://127.0.0.1:{port}",
                    {"tenant": TENANT},
                    producer,
                    args,
                    transport,
                )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 10)
        await producer.stop()
        await broker.stop()
    print()
    kinds = ",".join(args.transport)
    print(f"transport={kinds} duration={args.duration}s per rate, machine: {os.cpu_count()} cores")
    traffic = [r for r in rows if "idle_cpu_pct" not in r]
    for transport in args.transport:
        if transport in SOCKETIO_TRANSPORTS:
            print(f"\n{transport}: daemon vs Node socket.io")
            print(table([r for r in traffic if r["transport"] == transport]))
    for transport in args.transport:
        if transport in STREAM_TRANSPORTS:
            print(f"\n{transport}: against the daemon's Socket.IO WebSocket")
            print(versus_websocket_table(traffic, transport))
    if args.idle > 0:
        print("\nidle: K clients connected, no traffic")
        print(idle_table(rows))
    if len(args.transport) > 1:
        print("\nthe daemon's transports side by side")
        print(transports_table(traffic))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = (
        out / f"fanout-{kinds.replace(',', '-')}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    )
    path.write_text(json.dumps(rows, indent=2))
    print(f"\nraw results: {path}")
    plot = Path(args.plot) if args.plot else path.with_suffix(".png")
    if traffic and write_plot(traffic, plot):
        print(f"latency plot: {plot}")


if __name__ == "__main__":
    asyncio.run(main())
