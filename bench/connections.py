"""Idle connections: memory per connection and connect rate, per transport, daemon vs Node.

Opens K connections (official socket.io-client ones with `forceNew: true` for
`websocket` and `polling`, ADR-010's clients for `ws` and `sse`; spread over several Node
processes) to towerco-notify (`run` mode, memory engine) and, for the Socket.IO
transports, to the plain Node socket.io reference, each transport on a fresh server, and
reports the server's resident memory per idle connection and how fast the connections
were accepted (authentication, rooms and the `connection_established` handshake included
for the daemon). A polling connection holds its waiting GET.

    ./.venv/bin/python bench/connections.py                 # K=10000, websocket
    ./.venv/bin/python bench/connections.py --clients 2000 --transport websocket,polling,ws,sse
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time
from typing import Any

from fanout import (  # type: ignore[import-not-found]
    SECRET,
    STREAM_TRANSPORTS,
    TENANT,
    Clients,
    ensure_node_packages,
    markdown_table,
    rss_mb,
    start_daemon,
    start_reference,
)

from notify_core.wire.events import ALL_TOPICS
from pipeline.kafka.topics import ensure_topics
from sio_server.admission.auth import mint_token
from towerco_notify.embedded_broker import EmbeddedBroker, free_port


async def measure(
    name: str,
    proc: asyncio.subprocess.Process,
    url: str,
    auth: dict[str, Any],
    args: Any,
    transport: str,
) -> dict[str, Any]:
    await asyncio.sleep(1.0)
    before = rss_mb(proc.pid)
    t0 = time.monotonic()
    # one Node process after the other (each opens its share at once)
    per = args.clients // args.client_procs
    parts = []
    for _ in range(args.client_procs):
        try:
            parts.append(await Clients.start(url, per, transport, auth, 1))
        except RuntimeError as exc:
            print(f"  {name}: {exc}", flush=True)
            raise
    connect_s = time.monotonic() - t0
    clients = Clients([p for part in parts for p in part.procs])
    await asyncio.sleep(args.settle)
    after = rss_mb(proc.pid)
    row = {
        "target": name,
        "transport": transport,
        "clients": args.clients,
        "connect_per_s": round(args.clients / connect_s),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "kb_per_connection": round((after - before) * 1024 / args.clients, 1),
    }
    print(
        f"  {name:7} {transport:9} K={args.clients} connected in {connect_s:.1f}s "
        f"({row['connect_per_s']}/s), RSS {before:.0f} -> {after:.0f} MiB = "
        f"{row['kb_per_connection']} KiB per idle connection",
        flush=True,
    )
    await clients.close()
    return row


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before reading RSS")
    parser.add_argument("--targets", default="daemon,node")
    parser.add_argument("--daemon-args", default="", help="extra flags for towerco-notify run")
    parser.add_argument(
        "--transport",
        type=lambda s: s.split(","),
        default=["websocket"],
        help="comma-separated: websocket, polling (the Node reference too), ws, sse",
    )
    args = parser.parse_args()
    ensure_node_packages()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it

    broker = EmbeddedBroker()
    await broker.start()
    await ensure_topics(broker.bootstrap, ALL_TOPICS, 4)
    rows = []
    try:
        for transport in args.transport:
            for target in args.targets.split(","):
                if target != "daemon" and transport in STREAM_TRANSPORTS:
                    continue  # the Node reference speaks Socket.IO only
                port = free_port()
                if target == "daemon":
                    proc = await start_daemon(broker.bootstrap, port, args.daemon_args.split())
                    auth: dict[str, Any] = {
                        "token": mint_token(SECRET, TENANT, "bench", ["operator"], ttl_s=3600)
                    }
                else:
                    proc = await start_reference(broker.bootstrap, port)
                    auth = {"tenant": TENANT}
                url = f"http://127.0.0.1:{port}"
                try:
                    rows.append(await measure(target, proc, url, auth, args, transport))
                finally:
                    proc.terminate()
                    try:
                        await asyncio.wait_for(proc.wait(), 60)
                    except TimeoutError:
                        print(f"  {target} did not exit within 60 s of SIGTERM", flush=True)
                        proc.kill()
                        await proc.wait()
    finally:
        await broker.stop()
    print()
    head = [
        "transport", "server", "K", "connect/s", "RSS before → after MiB",
        "KiB per idle connection",
    ]  # fmt: skip
    print(
        markdown_table(
            head,
            [
                [
                    r["transport"],
                    r["target"],
                    r["clients"],
                    r["connect_per_s"],
                    f"{r['rss_before_mb']} → {r['rss_after_mb']}",
                    r["kb_per_connection"],
                ]
                for r in rows
            ],
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
