"""The heartbeat watch's sweep: one tick over `--monitors` heartbeats in Redis.

    python bench/heartbeats.py [--monitors 10000] [--tenants 10] [--redis-url URL]

Every monitor pinged once, then timed: a tick where all are healthy (the steady state),
and the tick that opens every incident after a silence (the sink counts records after
`--sink-ms`, standing in for the broker's acknowledgement of each send).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.heartbeats.config import Heartbeat, Heartbeats  # noqa: E402
from notify_core.heartbeats.policy import HeartbeatStore  # noqa: E402
from notify_core.heartbeats.watch import HeartbeatWatch  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument(
        "--sink-ms", type=float, default=2.0, help="the broker's answer to one send (simulated)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    logging.getLogger("notify_core.heartbeats.watch").setLevel(logging.ERROR)  # 10 000 warnings
    logging.basicConfig()  # but a failed check is shown
    from notify_core.redis.factory import connect

    redis = connect(args.redis_url)  # the daemon's pool (it waits for a free connection)
    prefix = f"benchhb{uuid.uuid4().hex[:6]}:"
    configured = Heartbeats()
    for i in range(args.monitors):
        tenant = f"t{i % args.tenants}"
        hb = Heartbeat(name=f"m{i}", tenant=tenant, kind="http", timeout=60, key_env="X")
        configured[(tenant, hb.name)] = hb
    store = HeartbeatStore(redis, prefix)
    now = [time.time()]
    for tenant, name in configured:
        await store.ping(tenant, name, int(now[0] * 1000))
    opened = [0]

    async def sink(records: list[tuple[str, bytes, bytes]]) -> None:
        await asyncio.sleep(args.sink_ms / 1000)  # a produce and its acknowledgement
        opened[0] += len(records)

    async def no_kpi(tenant: str, site: str | None) -> int | None:
        return None

    watch = HeartbeatWatch(lambda: configured, store, no_kpi, sink, clock=lambda: now[0])
    try:
        for label in ("all healthy", "all healthy"):
            start = time.perf_counter()
            await watch.tick()
            print(f"  tick, {label}: {(time.perf_counter() - start) * 1e3:.0f} ms")
        now[0] += 120
        start = time.perf_counter()
        await watch.tick()
        took = (time.perf_counter() - start) * 1e3
        print(f"  tick opening {opened[0]} incidents: {took:.0f} ms")
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
