"""`towerco-notify report --since 7d --tenant T [--group-by site] [--json]`: the response
report (`GET /api/v1/reports/response`) from the daemon's Redis, at a shell, without a
token or a running server."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from notify_core.redis import factory as redis_factory
from notify_core.reports.summary import GROUP_BY, collect, response_report
from notify_core.sites_config import SITES_FILE, Inventory, load_sites
from notify_core.thresholds.rules import parse_duration


def add_parser(sub: Any) -> None:
    rep = sub.add_parser(
        "report",
        help="time to acknowledge and resolve, from the daemon's Redis",
        description=__doc__,
    )
    redis_factory.add_arguments(rep, "the daemon's Redis")
    rep.add_argument("--tenant", required=True)
    rep.add_argument("--since", default="7d", help="how far back: 12h, 7d (default 7d)")
    rep.add_argument("--group-by", default="site", choices=GROUP_BY)
    rep.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    rep.add_argument(
        "--config-dir",
        type=Path,
        default=Path(os.environ.get("NOTIFY_CONFIG_DIR", "config")),
        help="where sites.yaml gives regions [NOTIFY_CONFIG_DIR]",
    )


def run(args: argparse.Namespace) -> int:
    if not args.redis_url:
        print("towerco-notify report: give --redis-url or NOTIFY_REDIS_URL", file=sys.stderr)
        return 2
    try:
        span = parse_duration(args.since)
    except ValueError as exc:
        print(f"towerco-notify report: --since: {exc}", file=sys.stderr)
        return 2
    path = args.config_dir / SITES_FILE
    sites = load_sites(path) if path.exists() else Inventory()
    groups = asyncio.run(_groups(args, span, sites))
    if args.json:
        print(orjson.dumps({"group_by": args.group_by, "groups": groups}).decode())
        return 0
    head = f"{args.group_by:<20} {'incidents':>9} {'acked':>6} {'resolved':>8} {'pages':>6}"
    print(head + f" {'mtta p50':>9} {'mtta p90':>9} {'mttr p50':>9}")
    for g in groups:
        tta, ttr = g["mtta_s"], g["mttr_s"]
        print(
            f"{g['key'][:20]:<20} {g['incidents']:>9} {g['acknowledged']:>6} "
            f"{g['resolved']:>8} {g['pages']:>6} {_s(tta['p50'])} {_s(tta['p90'])} {_s(ttr['p50'])}"
        )
    return 0


def _s(value: float | None) -> str:
    return f"{'-':>9}" if value is None else f"{value:>8.0f}s"


async def _groups(args: argparse.Namespace, span: float, sites: Inventory) -> list[dict[str, Any]]:
    from notify_core.reports.archive import RedisArchive
    from notify_core.state.incidents import RedisIncidentStore
    from notify_core.state.timeline import RedisTimeline

    redis = redis_factory.connect(args.redis_url, args.redis_cluster)
    try:
        await redis_factory.initialize(redis)
        now_ms = int(time.time() * 1000)
        items = await collect(
            RedisIncidentStore(redis, args.redis_prefix),
            RedisTimeline(redis, args.redis_prefix),
            sites.region,
            args.tenant,
            now_ms - int(span * 1000),
            now_ms,
            archive=RedisArchive(redis, args.redis_prefix),
        )
        return response_report(items, args.group_by)
    finally:
        await redis.aclose()
