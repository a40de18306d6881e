"""Recovery and history costs: time to recover N missed events (1 and K clients at once),
history append rate, memory per 100k retained events. Memory engine and Redis.

    ./.venv/bin/python bench/recovery.py                   # N=10000, K=1 and 100, websocket
    ./.venv/bin/python bench/recovery.py --events 10000 --clients 1,100 --transport polling
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.history.store import History, MemoryHistory, RedisHistory  # noqa: E402
from notify_core.obs.readiness import Readiness  # noqa: E402
from sio_server.admission.auth import Authenticator, mint_token  # noqa: E402
from sio_server.app import SocketServer  # noqa: E402

SECRET = "bench-secret-0123456789abcdefghijklmnop"
REDIS_URL = "redis://127.0.0.1:6379/14"


def event(tenant: str, n: int) -> dict[str, Any]:
    return {
        "id": None,
        "type": "incident_alert",
        "tenant_id": tenant,
        "timestamp": "2026-11-25T10:00:00.000Z",
        "site_id": f"site-{n % 500:04d}",
        "priority": "major",
        "requires_acknowledgment": True,
        "incident": {
            "incident_id": f"INC-{n}",
            "title": "Rectifier module failure",
            "description": "Rectifier 2 of 4 failed at shelter A",
            "severity": "major",
            "site_id": f"site-{n % 500:04d}",
        },
    }


async def append_rate(history: History, n: int) -> float:
    tenant = "rate" + uuid.uuid4().hex[:6]
    start = time.perf_counter()
    for i in range(n):
        await history.append(event(tenant, i), f"k{i}")
    return n / (time.perf_counter() - start)


async def recover(history: History, n: int, clients: list[int], transport: str) -> list[str]:
    tenant = "rec" + uuid.uuid4().hex[:6]
    first = await history.append(event(tenant, -1), None)
    for i in range(n):
        await history.append(event(tenant, i), None)
    server = SocketServer(Authenticator(SECRET), history, Readiness(), "127.0.0.1", 0, [])
    await server.start()
    lines = []
    try:
        for k in clients:
            cfg = {
                "url": f"http://127.0.0.1:{server.port}",
                "count": k,
                "transports": [transport],
                "last_id": first,
                "token": mint_token(SECRET, tenant, "bench", ["operator"]),
            }
            proc = await asyncio.create_subprocess_exec(
                "node",
                str(ROOT / "bench" / "node" / "recover.mjs"),
                json.dumps(cfg),
                cwd=str(ROOT / "bench" / "node"),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 600)
            res = json.loads(out)
            per = sorted(r["ms"] for r in res["results"])
            ok = all(r["got"] == n and r["replayed"] == n for r in res["results"])
            lines.append(
                f"  recover {n} events, K={k:<4} {transport}: all done in "
                f"{res['total_ms'] / 1000:.2f}s; per client p50 {per[len(per) // 2]} ms, "
                f"max {per[-1]} ms; complete={ok}"
            )
            print(lines[-1], flush=True)
    finally:
        await server.stop()
    return lines


async def memory_per_100k(kind: str, history: History, redis: Redis | None) -> str:
    tenant = "mem" + uuid.uuid4().hex[:6]
    n = 100_000
    if kind == "memory":
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            await history.append(event(tenant, i), None)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    else:
        assert redis is not None and isinstance(history, RedisHistory)
        for i in range(n):
            await history.append(event(tenant, i), None)
        used = int(await redis.memory_usage(history.stream_key(tenant), samples=0) or 0)
    return f"  {kind}: {used / 2**20:.1f} MiB per 100k retained events ({used / n:.0f} B/event)"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", default="1,100")
    parser.add_argument("--transport", default="websocket", choices=["websocket", "polling"])
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    mem = MemoryHistory(maxlen=200_000)
    red = RedisHistory(redis, "bench:", maxlen=200_000)
    print(
        f"history append rate: memory {await append_rate(mem, 20000):,.0f}/s, "
        f"redis {await append_rate(red, 20000):,.0f}/s (one producer, awaited appends)"
    )
    print(await memory_per_100k("memory", MemoryHistory(maxlen=200_000), None))
    print(await memory_per_100k("redis", red, redis))
    for name, history in (("memory", mem), ("redis", red)):
        print(f"{name} engine:")
        await recover(history, args.events, clients, args.transport)
    await redis.flushdb()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
