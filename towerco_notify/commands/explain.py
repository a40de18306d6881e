"""`towerco-notify explain`: why a value alerts, and whether an incident would be quiet now.

Thresholds: the effective rule of one KPI (defaults -> tenant -> site) and the level one
value yields. Suppression: the one decision the pipeline and the escalation engine make
(`notify_core.suppression.policy`), on config/suppression.yaml and, with `--redis-url`, on the
live windows, silences and site statuses of a running deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from notify_core.clock import iso_s
from notify_core.config_yaml import ConfigInvalid
from notify_core.in_force import fixed
from notify_core.redis import factory as redis_factory
from notify_core.suppression.config import SUPPRESSION_FILE, load_suppression
from notify_core.suppression.policy import Notice
from notify_core.suppression.store import SuppressionStore
from notify_core.thresholds.rules import THRESHOLDS_FILE, Rule
from notify_core.thresholds.rules_file import load_rules
from towerco_notify.config_files import DEFAULT_CONFIG_DIR, effective_config_dir


def add_parser(sub: Any) -> None:
    exp = sub.add_parser(
        "explain",
        help="show the effective rule for a value, and whether an incident is suppressed",
        description="Resolve defaults -> tenant -> site for one KPI and evaluate one value "
        "against it (--kpi, --value); say whether an incident at a site would be suppressed "
        "now, by what and until when (maintenance status or window, silence, inhibition).",
    )
    exp.add_argument(
        "--config-dir",
        default=os.environ.get("NOTIFY_CONFIG_DIR"),
        help="default: NOTIFY_CONFIG_DIR, else ./config, else the shipped examples",
    )
    exp.add_argument("--tenant", required=True)
    exp.add_argument("--site", default=None)
    exp.add_argument("--kpi", default=None)
    exp.add_argument("--value", default=None, type=float)
    exp.add_argument("--severity", default="critical", help="the incident's (default critical)")
    exp.add_argument("--incident-id", default="-", help="for silences matching one incident")
    exp.add_argument("--source", default=None, help="'threshold' for alerts a KPI rule raised")
    exp.add_argument(
        "--at", default=None, help="ISO time to decide at (default now), e.g. a window's start"
    )
    redis_factory.add_arguments(exp, "read live windows, silences and site statuses")


def run(args: argparse.Namespace) -> int:
    config = effective_config_dir(
        Path(args.config_dir or DEFAULT_CONFIG_DIR), args.config_dir is not None
    )
    if args.kpi is None and args.site is None:
        print("towerco-notify explain: give --kpi/--value, --site, or both", file=sys.stderr)
        return 2
    try:
        if args.kpi is not None:
            if args.value is None:
                print("towerco-notify explain: --kpi needs --value", file=sys.stderr)
                return 2
            explain_value(load_rules(config / THRESHOLDS_FILE), args)
        if args.site is not None or args.incident_id != "-":
            return asyncio.run(explain_suppression(config, args))
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def explain_value(rules: Any, args: argparse.Namespace) -> None:
    from pipeline.thresholds import evaluate

    rule: Rule | None = rules.effective(args.tenant, args.site, args.kpi)
    where = f"tenant {args.tenant}" + (f", site {args.site}" if args.site else "")
    if rule is None:
        print(f"{args.kpi} for {where}: no rule; the value passes through untouched")
        return
    print(f"{args.kpi} for {where}: rule {rule.rule_id}")
    for key, value in rule.as_dict().items():
        if key not in ("rule_id", "kpi") and value not in (None, ""):
            print(f"  {key:16} {value}")
    level = rule.level_of(args.value)
    verdict = level or (
        "ok (past clear)"
        if rule.past_clear(args.value)
        else "ok (inside the hysteresis band: a firing alert would stay)"
    )
    print(f"value {args.value:g} -> {verdict}")
    if level and rule.for_s:
        print(f"  fires once sustained for {rule.for_s:g}s (pending until then)")
    _, transitions = evaluate(rule, None, args.value, 0.0)
    for t in transitions:
        print(f"  from ok, one sample fires: {t.level} (threshold {t.record()['threshold']})")


def _iso(ts: float | None) -> str:
    if ts is None:
        return "until the site reports another status"
    return "until " + iso_s(ts)


async def explain_suppression(config: Path, args: argparse.Namespace) -> int:
    path = config / SUPPRESSION_FILE
    from_file = load_suppression(path) if path.exists() else None  # invalid: named, exit 1
    redis = None
    if args.redis_url:
        redis = redis_factory.connect(args.redis_url, args.redis_cluster)
    store = SuppressionStore(
        redis, args.redis_prefix, fixed(from_file) if from_file is not None else None
    )
    try:
        if redis is not None:
            await store.refresh()
        now = (
            datetime.fromisoformat(args.at.replace("Z", "+00:00")).timestamp()
            if args.at
            else time.time()
        )
        notice = Notice(
            args.tenant, args.incident_id, args.site, args.severity, args.kpi, args.source
        )
        muted = store.mutes(notice, now)
        at = iso_s(now)
        what = f"a {args.severity} incident" + (f" at site {args.site}" if args.site else "")
        source = "live state from Redis and " if redis is not None else ""
        print(
            f"suppression of {what} at {at} ({source}{path.name if path.exists() else 'no file'}):"
        )
        if muted is None:
            print("  not suppressed: it pages as its escalation policy says")
        else:
            print(f"  suppressed by {muted.by} ({muted.id}) {_iso(muted.until)}")
            print("  it is stored, delivered and listed quietly; no escalation level fires")
        for w in store.windows(args.tenant):
            if args.site in w.site_ids:
                state = "active now" if w.active_until(now) is not None else "not active now"
                kind = (
                    f"{','.join(w.days) or 'every day'} {w.start}-{w.end} {w.timezone}"
                    if w.start is not None
                    else f"{_iso(w.starts_at)[6:]} to {_iso(w.ends_at)[6:]}"
                )
                print(f"  window {w.id} covers {args.site}: {kind}, {state}"
                      + (f" ({w.reason})" if w.reason else ""))  # fmt: skip
        return 0
    finally:
        if redis is not None:
            await redis.aclose()
