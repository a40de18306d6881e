"""Escalation timers with the Redis job store: scheduling rate and due-to-delivery delay.

    ./.venv/bin/python bench/escalation.py --incidents 2000 --wait 3

N critical incidents are raised as fast as the engine takes them (each writes its state
and an APScheduler job to Redis); every one has a single level due `--wait` seconds
later. Reports incidents scheduled/s, levels fired/s, and the delay between each level's
due time and its delivery (p50/p99/max). Delivery goes to an in-memory publisher, so
what is measured is the scheduler, the job store and the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from escalation import jobs  # noqa: E402
from escalation.engine import EscalationEngine  # noqa: E402
from escalation.policy import Policy  # noqa: E402
from escalation.scheduler import TimerScheduler  # noqa: E402
from escalation.store import RedisEscalationStore  # noqa: E402
from notify_core.redis.factory import connect_sync  # noqa: E402
from notify_core.state.timeline import RedisTimeline  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/14"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=2000)
    parser.add_argument("--wait", type=float, default=3.0)
    args = parser.parse_args()
    prefix = f"bench-esc-{uuid.uuid4().hex[:6]}:"
    redis = Redis.from_url(REDIS_URL)
    delays: list[float] = []
    due_at: dict[str, float] = {}

    async def publish(event: dict[str, Any], key: str | None) -> str | None:
        delays.append(time.time() - due_at[event["incident_id"]])
        return "0-1"

    policy = Policy.model_validate(
        {"name": "b", "levels": [{"wait": args.wait, "targets": [{"oncall": True}]}]}
    )
    scheduler = TimerScheduler(connect_sync(REDIS_URL), prefix)
    engine = EscalationEngine(
        lambda: [policy],
        RedisEscalationStore(redis, prefix),
        RedisTimeline(redis, prefix),
        publish,
        scheduler,
    )
    jobs.install(engine, scheduler.deployment)
    await scheduler.start()
    scheduler.activate()
    t0 = time.perf_counter()
    for i in range(args.incidents):
        incident = f"INC-{i}"
        due_at[incident] = time.time() + args.wait
        await engine.on_alert("bench", incident, "s1", "critical", "bench")
    scheduled_s = time.perf_counter() - t0
    print(
        f"scheduled {args.incidents} incidents in {scheduled_s:.2f}s = "
        f"{args.incidents / scheduled_s:,.0f}/s (state + APScheduler job in Redis)"
    )
    deadline = time.time() + args.wait + 120
    first = None
    while len(delays) < args.incidents and time.time() < deadline:
        if delays and first is None:
            first = time.perf_counter()
        await asyncio.sleep(0.05)
    fired_s = time.perf_counter() - (first or time.perf_counter())
    ordered = sorted(delays)
    print(f"fired {len(delays)} levels; {len(delays) / max(fired_s, 1e-9):,.0f}/s while firing")
    print(
        f"due -> delivery delay: p50 {statistics.median(ordered) * 1000:.0f} ms, "
        f"p99 {ordered[int(0.99 * (len(ordered) - 1))] * 1000:.0f} ms, "
        f"max {ordered[-1] * 1000:.0f} ms"
    )
    await scheduler.stop()
    async for key in redis.scan_iter(match=f"{prefix}*"):
        await redis.delete(key)
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
