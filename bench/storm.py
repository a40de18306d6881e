"""A storm: 5 000 critical incidents in 10 s at 50 sites, through the escalation engine
with a `group_by: [site]` policy (Redis stores and job store, as in production).

    ./.venv/bin/python bench/storm.py [--incidents 5000] [--seconds 10] [--sites 50]

Prints the pages sent (one chain per site: each page lists the site's incidents) against
the pages the same storm makes without grouping (one chain per incident), and the time
from a site's first incident to its first page (group_wait + the first level's wait is the
floor).
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


async def storm(args: argparse.Namespace, grouped: bool) -> dict[str, Any]:
    prefix = f"bench-storm-{uuid.uuid4().hex[:6]}:"
    redis = Redis.from_url(REDIS_URL)
    pages: list[dict[str, Any]] = []
    first_at: dict[str, float] = {}

    async def publish(event: dict[str, Any], key: str | None) -> str | None:
        if event["type"] == "escalation":
            pages.append({"site": event.get("site_id"), "at": time.time(), "n": len(
                event.get("incidents") or [event["incident_id"]])})  # fmt: skip
        return "0-1"

    spec: dict[str, Any] = {
        "name": "storm",
        "levels": [{"wait": args.wait, "targets": [{"oncall": True}]}],
    }
    if grouped:
        spec |= {"group_by": ["site"], "group_wait": args.group_wait}
    scheduler = TimerScheduler(connect_sync(REDIS_URL), prefix)
    engine = EscalationEngine(
        lambda: [Policy.model_validate(spec)],
        RedisEscalationStore(redis, prefix),
        RedisTimeline(redis, prefix),
        publish,
        scheduler,
    )
    jobs.install(engine, scheduler.deployment)
    await scheduler.start()
    scheduler.activate()
    gap = args.seconds / args.incidents
    start = time.time()
    for i in range(args.incidents):
        site = f"site-{i % args.sites:02d}"
        first_at.setdefault(site, time.time())
        await engine.on_alert("bench", f"INC-{i}", site, "critical", f"alarm {i}")
        lag = start + (i + 1) * gap - time.time()
        if lag > 0:
            await asyncio.sleep(lag)
    raised_s = time.time() - start
    want = args.sites if grouped else args.incidents
    deadline = time.time() + args.wait + args.group_wait + 60
    while len(pages) < want and time.time() < deadline:  # noqa: ASYNC110 (a bench)
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # anything more would be an extra page
    await scheduler.stop()
    jobs.uninstall(engine, scheduler.deployment)
    async for key in redis.scan_iter(match=f"{prefix}*"):
        await redis.delete(key)
    await redis.aclose()
    firsts: dict[str, float] = {}
    for p in pages:
        firsts.setdefault(p["site"], p["at"])
    to_first = sorted(firsts[s] - first_at[s] for s in firsts)
    return {
        "pages": len(pages),
        "listed": sum(p["n"] for p in pages),
        "raised_s": raised_s,
        "first_p50": statistics.median(to_first),
        "first_max": to_first[-1],
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--incidents", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--group-wait", type=float, default=30.0)
    ap.add_argument("--wait", type=float, default=5.0, help="the first level's wait")
    args = ap.parse_args()
    print(
        f"{args.incidents} criticals in {args.seconds:g}s at {args.sites} sites; level 1 after "
        f"{args.wait:g}s, group_wait {args.group_wait:g}s"
    )
    for grouped in (True, False):
        r = await storm(args, grouped)
        label = "group_by [site]" if grouped else "no grouping    "
        print(
            f"  {label}: {r['pages']} pages listing {r['listed']} incidents "
            f"(raised in {r['raised_s']:.1f}s); first page per site after "
            f"p50 {r['first_p50']:.1f}s, max {r['first_max']:.1f}s"
        )


if __name__ == "__main__":
    asyncio.run(main())
