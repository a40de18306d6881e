"""The response report over a year of incidents (notify_core/reports/summary.py `collect` and
`response_report`), memory engine and Redis.

    python bench/reports.py [--incidents 100000] [--redis-incidents 10000] [--redis-url URL]

With Redis, the year twice: the live store alone (what it keeps: `--redis-incidents`), and
the archive (notify_core/reports/archive.py) holding all `--incidents` records, the live
store its newest `--redis-incidents` as the daemon keeps them, plus the archiver's rate.

Each incident opened within the year at one of 2 000 sites, most acknowledged and resolved,
one in four paged (a `notified` timeline entry). Prints the time of the report per group-by
(p50 and the slowest of 5 runs).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.reports.summary import collect, response_report  # noqa: E402
from notify_core.state.incidents import IncidentState, MemoryIncidentStore  # noqa: E402
from notify_core.state.timeline import MemoryTimeline  # noqa: E402

YEAR_MS = 365 * 86400 * 1000


async def fill(incidents, timeline, n: int, start_ms: int) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(9)
    for i in range(n):
        opened = start_ms + rnd.randrange(YEAR_MS)
        acked = opened + rnd.randrange(30_000, 3_600_000) if rnd.random() < 0.8 else None
        resolved = opened + rnd.randrange(600_000, 86_400_000) if rnd.random() < 0.9 else None
        state = IncidentState(
            f"site-{i % 2000:04d}",
            rnd.choice(["critical", "major", "minor"]),
            "resolved" if resolved else ("acknowledged" if acked else "open"),
            resolved_at_ms=resolved,
            title=f"incident {i}",
            opened_at_ms=opened,
            acknowledged_by="oc" if acked else None,
            acknowledged_at_ms=acked,
        )
        await incidents.put("t", f"I-{i}", state)
        if i % 4 == 0:
            await timeline.add("t", f"I-{i}", "escalation_started", policy="p")
            await timeline.add("t", f"I-{i}", "notified", level=1)


async def timed(label: str, incidents, timeline, start_ms: int) -> None:  # type: ignore[no-untyped-def]
    for group in ("site", "user"):
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            items = await collect(incidents, timeline, lambda t, s: None, "t", start_ms,
                                  start_ms + YEAR_MS + 1)  # fmt: skip
            response_report(items, group)  # type: ignore[arg-type]
            runs.append(time.perf_counter() - t0)
        print(f"  {label}, {len(items)} incidents, by {group}: p50 {statistics.median(runs):.2f} s,"
              f" slowest {max(runs):.2f} s")  # fmt: skip


async def archived(redis, prefix: str, n: int, live: int, start_ms: int) -> None:  # type: ignore[no-untyped-def]
    """A year in the archive: the archiver turns `n` marks into records (timed), then
    the report reads the archive and the live store's newest `live`."""
    from notify_core.reports.archive import Archiver, RedisArchive
    from notify_core.state.incidents import RedisIncidentStore
    from notify_core.state.timeline import RedisTimeline

    store, lines, archive = (
        RedisIncidentStore(redis, prefix),
        RedisTimeline(redis, prefix),
        RedisArchive(redis, prefix),
    )
    await fill(store, lines, n, start_ms)
    for i in range(n):
        await archive.mark("t", f"I-{i}")
    archiver = Archiver(archive, store, lines, lambda t, s: None)
    t0 = time.perf_counter()
    while await archiver.round():
        pass
    took = time.perf_counter() - t0
    print(f"  archiver: {n} marks in {took:.1f} s ({n / took:.0f} records/s)")
    # what the live store keeps: the newest `live` resolved ones (and every open one)
    from notify_core.redis.keys import RedisKeys

    resolved_index = RedisKeys(prefix).incident_index("t", True)
    await redis.zremrangebyrank(resolved_index, 0, -live - 1)

    async def report(group: str) -> int:
        items = await collect(store, lines, lambda t, s: None, "t", start_ms,
                              start_ms + YEAR_MS + 1, archive=archive)  # fmt: skip
        response_report(items, group)  # type: ignore[arg-type]
        return len(items)

    for group in ("site", "user"):
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            count = await report(group)
            runs.append(time.perf_counter() - t0)
        print(f"  Redis with the archive, {count} incidents, by {group}:"
              f" p50 {statistics.median(runs):.2f} s, slowest {max(runs):.2f} s")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--redis-incidents", type=int, default=10_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    start_ms = int(time.time() * 1000) - YEAR_MS
    incidents, timeline = MemoryIncidentStore(), MemoryTimeline(args.incidents)
    await fill(incidents, timeline, args.incidents, start_ms)
    await timed("memory", incidents, timeline, start_ms)
    from redis.asyncio import Redis

    from notify_core.state.incidents import RedisIncidentStore
    from notify_core.state.timeline import RedisTimeline

    redis = Redis.from_url(args.redis_url)
    prefix = f"benchrep{uuid.uuid4().hex[:6]}:"
    try:
        store, lines = RedisIncidentStore(redis, prefix), RedisTimeline(redis, prefix)
        await fill(store, lines, args.redis_incidents, start_ms)
        await timed("Redis", store, lines, start_ms)
        await archived(redis, prefix + "a:", args.incidents, args.redis_incidents, start_ms)
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
