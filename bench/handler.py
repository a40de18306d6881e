"""The batch handler alone: KPI messages straight into `MessageHandler.handle_batch`.

No broker, no Faust and no consumer thread: the shipped thresholds, the real stores
(memory, or Redis with its write-behind and snapshots, as the Redis engine wires them),
batches of `--batch` messages like a fetch. Less noisy than `thresholds.py` for comparing
two versions of the hot path (run it from each checkout, interleaved); what it leaves out
(the fetch, the GIL shared with the consumer thread) is what `thresholds.py` measures.

    ./.venv/bin/python bench/handler.py                          # memory engine
    ./.venv/bin/python bench/handler.py --redis-url redis://127.0.0.1:6379/13
    ./.venv/bin/python bench/handler.py --redis-url ... --min-replicas 1   # + WAIT per batch
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.history.store import MemoryHistory, RedisHistory  # noqa: E402
from notify_core.in_force import fixed  # noqa: E402
from notify_core.redis.replication import ReplicaConfirm  # noqa: E402
from notify_core.redis.write_behind import WriteBehind  # noqa: E402
from notify_core.state.incidents import MemoryIncidentStore, ReadAhead, RedisIncidentStore  # noqa: E402
from notify_core.state.snapshots import MemorySnapshots, RedisSnapshots  # noqa: E402
from notify_core.thresholds.rules_file import load_rules  # noqa: E402
from notify_core.wire.events import TOPIC_KPIS  # noqa: E402
from pipeline.handlers import MessageHandler  # noqa: E402
from pipeline.kpi_alerts import DictStore, KpiAlerts  # noqa: E402
from pipeline.publisher import Publisher  # noqa: E402

HEALTHY = {
    "availability_pct": (99.7, 100.0),
    "rssi_dbm": (-70.0, -60.0),
    "packet_loss_pct": (0.0, 0.5),
}
BREACHING = {
    "availability_pct": (80.0, 90.0),
    "rssi_dbm": (-110.0, -101.0),
    "packet_loss_pct": (6.0, 12.0),
}


def messages(n: int, sites: int, breaching_pct: float) -> list[Any]:
    rng = random.Random(2)
    bad = {s for s in range(sites) if rng.random() * 100 < breaching_pct}
    out = []
    for i in range(n):
        ranges = BREACHING if i % sites in bad else HEALTHY
        env = {
            "tenant_id": "bench",
            "site_id": f"site-{i % sites:04d}",
            "timestamp": f"2026-11-25T10:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}Z",
            "payload": {k: round(rng.uniform(*r), 2) for k, r in ranges.items()},
        }
        out.append((TOPIC_KPIS, orjson.dumps(env), 1_764_064_800_000 + i, i % 4, i // 4))
    return out


async def run(args: argparse.Namespace) -> None:
    path = ROOT / "config" / "thresholds.yaml"
    alerts_rules = fixed(load_rules(path))
    redis: Any = None
    replicas: ReplicaConfirm | None = None

    async def emit(event: dict[str, Any], rooms: list[str]) -> None:
        return None

    async def deadletter(raw: bytes) -> None:
        return None

    if args.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(args.redis_url)
        prefix = f"benchhandler{uuid.uuid4().hex[:6]}:"
        writes: WriteBehind | None = WriteBehind(redis)
        history: Any = RedisHistory(redis, prefix, args.messages * args.reps + 10)
        publisher = Publisher(
            history, emit, snapshots=RedisSnapshots(redis, prefix, writes), writes=writes
        )
        incidents: Any = ReadAhead(RedisIncidentStore(redis, prefix, writes))
        replicas = ReplicaConfirm(redis, prefix, args.min_replicas, 1000)
    else:
        writes = None
        history = MemoryHistory(args.messages * args.reps + 10)
        publisher = Publisher(history, emit, snapshots=MemorySnapshots())
        incidents = ReadAhead(MemoryIncidentStore())
    alerts = KpiAlerts(alerts_rules, DictStore(), publisher, incidents)
    handler = MessageHandler(
        publisher, incidents, deadletter, alerts, None, writes=writes, replicas=replicas
    )
    batch = messages(args.messages * args.reps, args.sites, args.breaching)
    gc.freeze()
    engine = "Redis" if redis is not None else "memory"
    if replicas is not None and replicas.enabled:
        engine += f", {args.min_replicas} replica(s) confirming each batch"
    print(f"{args.messages} KPI messages per run in batches of {args.batch}, {engine} engine")
    try:
        for rep in range(args.reps):
            part = batch[rep * args.messages : (rep + 1) * args.messages]
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(0, len(part), args.batch):
                gc.disable()  # as the pipeline does during a batch
                await handler.handle_batch(part[i : i + args.batch])
                gc.enable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"  run {rep + 1}: {wall / len(part) * 1e6:.1f} us/msg wall, "
                f"{cpu / len(part) * 1e6:.1f} us/msg CPU ({len(part) / wall:,.0f} msgs/s)",
                flush=True,
            )
    finally:
        if redis is not None:
            async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
                await redis.delete(key)
            await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=60_000, help="per run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--sites", type=int, default=2_000)
    parser.add_argument("--breaching", type=float, default=2.0, help="percent of sites")
    parser.add_argument("--redis-url", help="the Redis engine (else memory)")
    parser.add_argument(
        "--min-replicas", type=int, default=0, help="NOTIFY_REDIS_MIN_REPLICAS (needs replicas)"
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
