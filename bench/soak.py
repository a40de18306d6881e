"""Soak: memory over a long run at a steady rate with connection churn.

Feeds incident alerts at R/s for D minutes while K socket.io-client connections churn
(every few seconds a share of them disconnect and are replaced). `--feed redis` (default)
runs `towerco-notify server` and appends the alerts to its Redis tenant stream, the way
pipelines do, so the run measures the serving side for as long as asked; `--feed kafka` runs
`run` mode fed through Kafka, with its state in Redis (`--engine memory`: the embedded
engine, whose bounded stores fill for hours at one new incident per alert), the whole path
(the embedded tansu broker slows down as its log grows: after ~12 minutes at 20/s its CPU
and the Kafka-to-emit latency climb; docs/performance.md).
Every interval it prints the daemon's RSS, delivered msg/s, latency and connects, then the
RSS trend after warm-up (flat means no leak).

    ./.venv/bin/python bench/soak.py                           # 30 min, K=500, 25/s, Redis feed
    ./.venv/bin/python bench/soak.py --minutes 5 --clients 200 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from fanout import (  # type: ignore[import-not-found]
    NODE,
    SECRET,
    TENANT,
    cpu_seconds,
    ensure_node_packages,
    produce,
    rss_mb,
    start_daemon,
)
from redis.asyncio import Redis

from notify_core.history.store import RedisHistory
from notify_core.wire import events
from notify_core.wire.events import ALL_TOPICS, Envelope, IncidentPayload
from pipeline.kafka.topics import ensure_topics
from sio_server.admission.auth import mint_token
from towerco_notify.embedded_broker import EmbeddedBroker, free_port


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=25.0, help="alerts/s")
    parser.add_argument("--churn", type=int, default=25, help="connections replaced per tick")
    parser.add_argument("--churn-ms", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds per sample")
    parser.add_argument("--out", default="", help="write the samples as JSON here")
    parser.add_argument("--feed", choices=["redis", "kafka"], default="redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument(
        "--engine",
        choices=["redis", "memory"],
        default="redis",
        help="with --feed kafka: where the daemon keeps history and incident state (the"
        " embedded memory engine's bounded stores fill for hours at a new incident per alert)",
    )
    parser.add_argument(
        "--daemon-args",
        default="",
        help="extra daemon flags, e.g. '--ack-tracking-pairs 10000' so that the bounded"
        " delivery-confirmation table fills within the run",
    )
    args = parser.parse_args()
    ensure_node_packages()
    # `kill` stops the run like Ctrl-C: the daemon, broker and clients are stopped too
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with contextlib.AsyncExitStack() as stack:  # whatever started is stopped
        samples = await soak(args, stack)
    warm = samples[len(samples) // 3 :] or samples
    if len(warm) >= 2:
        span = max(1e-9, warm[-1]["t_min"] - warm[0]["t_min"])
        slope = (warm[-1]["rss_mb"] - warm[0]["rss_mb"]) / span
        low, high = min(x["rss_mb"] for x in warm), max(x["rss_mb"] for x in warm)
        print(
            f"RSS after warm-up: {low} to {high} MiB, "
            f"trend {slope:+.2f} MiB/min over {span:.1f} min"
        )
    if args.out:
        await asyncio.to_thread(Path(args.out).write_text, json.dumps(samples, indent=2))


async def soak(args: argparse.Namespace, stack: contextlib.AsyncExitStack) -> list[dict[str, Any]]:
    broker = EmbeddedBroker()
    await broker.start()
    stack.push_async_callback(broker.stop)
    await ensure_topics(broker.bootstrap, ALL_TOPICS, 4)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, linger_ms=1)
    await producer.start()
    stack.push_async_callback(producer.stop)
    port = free_port()
    prefix = f"soak{uuid.uuid4().hex[:6]}:"
    history = None
    if args.feed == "redis":
        redis = Redis.from_url(args.redis_url)
        stack.push_async_callback(redis.aclose)
        history = RedisHistory(redis, prefix, 10_000, None)
        extra = ["--redis-url", args.redis_url, "--redis-prefix", prefix, *args.daemon_args.split()]
        daemon = await start_daemon(broker.bootstrap, port, extra, mode="server")
    else:  # the daemon's own state in Redis too, unless asked for the embedded engine
        extra = [] if args.engine == "memory" else ["--redis-url", args.redis_url]
        extra += ["--redis-prefix", prefix, *args.daemon_args.split()]
        daemon = await start_daemon(broker.bootstrap, port, extra)
    stack.push_async_callback(_stop_process, daemon)

    total = 0  # across intervals: each alert gets its own dedupe key

    async def feed(rate: float, duration: float) -> int:
        nonlocal total
        if history is None:
            return int(await produce(producer, rate, duration))
        sent, start = 0, time.monotonic()
        while time.monotonic() - start < duration:
            if (delay := start + sent / rate - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            env = Envelope.model_validate(
                {"tenant_id": TENANT, "timestamp": datetime.now(UTC), "payload": {}}
            )
            payload = IncidentPayload(
                incident_id=f"S-{total}", title="Rectifier module failure", severity="critical"
            )
            await history.append(events.incident_alert(env, payload), f"soak-{total}")
            sent += 1
            total += 1
        return sent

    token = mint_token(SECRET, TENANT, "bench", ["operator"], ttl_s=24 * 3600)
    cfg = {
        "url": f"http://127.0.0.1:{port}",
        "count": args.clients,
        "auth": {"token": token},
        "event": "incident_alert",
        "churn": args.churn,
        "churn_ms": args.churn_ms,
    }
    clients = await asyncio.create_subprocess_exec(
        "node",
        str(NODE / "churn_clients.mjs"),
        json.dumps(cfg),
        cwd=str(NODE),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    stack.push_async_callback(_stop_process, clients)
    assert clients.stdin is not None and clients.stdout is not None

    async def report() -> dict[str, Any]:
        assert clients.stdin is not None and clients.stdout is not None
        clients.stdin.write(b"report\n")
        await clients.stdin.drain()
        return dict(json.loads(await clients.stdout.readline()))

    await clients.stdout.readline()  # ready
    await asyncio.sleep(5)
    await report()
    samples: list[dict[str, Any]] = []
    end = time.monotonic() + args.minutes * 60
    print(f"soak: K={args.clients}, {args.rate} alerts/s, churn {args.churn}/{args.churn_ms}ms")
    while time.monotonic() < end:
        cpu0 = cpu_seconds(daemon.pid)
        sent = await feed(args.rate, args.interval)
        rep = await report()
        s = {
            "t_min": round(args.minutes - (end - time.monotonic()) / 60, 2),
            "rss_mb": round(rss_mb(daemon.pid), 1),
            "sent": sent,
            "delivered_per_s": round(rep["received"] / args.interval),
            "p50_ms": rep["p50"],
            "p99_ms": rep["p99"],
            "connects": rep["connects"],
            "cpu_pct": round(100 * (cpu_seconds(daemon.pid) - cpu0) / args.interval, 1),
            # the bounded table that grows until full; anything else growing is a leak
            "ack_pairs": await _gauge(port, "notify_ack_tracked_pairs"),
        }
        samples.append(s)
        print(json.dumps(s), flush=True)
    return samples


async def _gauge(port: int, name: str) -> float | None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def _stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        if proc.stdin is not None and not proc.stdin.is_closing():  # the Node clients
            proc.stdin.write(b"quit\n")
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
        else:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
