"""`towerco-notify backtest`: what a thresholds change would have done to retained history.

Reads the KPI topic (a throwaway consumer: no group, no commit) or a JSONL file of
envelopes, replays it through the current and the proposed rules (`pipeline.backtest`),
and prints every (tenant, site, KPI) whose alerts differ, the totals per rule, and on
request a JSON report and a plot. Nothing is emitted, stored or committed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from notify_core.config_yaml import ConfigInvalid
from notify_core.thresholds.rules import THRESHOLDS_FILE, RuleSet, parse_duration
from notify_core.thresholds.rules_file import load_rules
from notify_core.wire.events import TOPIC_KPIS, KpiMessage
from pipeline.backtest import Backtest, Series
from pipeline.envelope import BadInput, decode_kpi

MAX_REPORTED_BAD = 5


def add_parser(sub: Any) -> None:
    bt = sub.add_parser(
        "backtest",
        help="replay retained KPIs through a proposed thresholds config",
        description="Replay the KPI topic (or a JSONL file of envelopes) through the "
        "current and the proposed thresholds with the live evaluator, event time as the "
        "clock, and print every (tenant, site, KPI) whose alerts would differ. No side "
        "effects: nothing is emitted, stored or committed.",
    )
    bt.add_argument("--config", required=True, metavar="NEW_DIR", help="proposed config dir")
    bt.add_argument(
        "--against",
        default=os.environ.get("NOTIFY_CONFIG_DIR", "config"),
        metavar="OLD_DIR",
        help="config dir in force [NOTIFY_CONFIG_DIR; default: config]",
    )
    when = bt.add_mutually_exclusive_group()
    when.add_argument("--since", default=None, help="how far back: 30m, 24h, 7d (Kafka: 24h)")
    when.add_argument("--from", dest="start", default=None, help="ISO time (event time)")
    bt.add_argument("--to", dest="end", default=None, help="ISO time (default: now / the end)")
    bt.add_argument("--tenant", default=None)
    bt.add_argument("--site", default=None)
    src = bt.add_mutually_exclusive_group()
    src.add_argument("--kafka-bootstrap", default=None, help="[NOTIFY_KAFKA_BOOTSTRAP]")
    src.add_argument("--input", default=None, metavar="FILE.jsonl", help="envelopes, one a line")
    bt.add_argument("--json", default=None, metavar="OUT", help="write the report ('-': stdout)")
    bt.add_argument("--plot", default=None, metavar="OUT.png", help="one panel per changed series")
    bt.add_argument("--max-panels", type=int, default=12, help="plot at most this many series")
    bt.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _time(value: str, flag: str) -> float:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(
            f"towerco-notify backtest: {flag}: not an ISO time (got {value!r})"
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _window(args: argparse.Namespace, from_kafka: bool) -> tuple[float | None, float | None]:
    end = _time(args.end, "--to") if args.end else None
    if args.start:
        return _time(args.start, "--from"), end
    since = args.since or ("24h" if from_kafka else None)
    if since is None:
        return None, end
    try:
        back = parse_duration(since)
    except ValueError as exc:
        raise SystemExit(f"towerco-notify backtest: --since: {exc}") from None
    return (end if end is not None else time.time()) - back, end


class Progress:
    """A line on stderr every few seconds of a long replay."""

    def __init__(self, quiet: bool, every_s: float = 2.0) -> None:
        self.quiet, self.every_s = quiet, every_s
        self.started = self.last = time.monotonic()

    def tick(self, bt: Backtest) -> None:
        now = time.monotonic()
        if self.quiet or now - self.last < self.every_s:
            return
        self.last = now
        rate = bt.samples / max(now - self.started, 1e-9)
        print(f"backtest: {bt.samples} samples replayed ({rate:,.0f}/s)", file=sys.stderr)


class Bad:
    """Messages that are not KPI envelopes: counted, the first few named."""

    def __init__(self) -> None:
        self.count = 0

    def note(self, where: str, reason: str) -> None:
        self.count += 1
        if self.count <= MAX_REPORTED_BAD:
            print(f"{where}: skipped: {reason}", file=sys.stderr)


def _file_messages(path: Path, bad: Bad) -> Iterator[KpiMessage]:
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield decode_kpi(line)
            except BadInput as exc:
                bad.note(f"{path}:{n}", exc.reason)


async def _replay_kafka(
    bootstrap: str, bt: Backtest, start: float | None, progress: Progress
) -> Bad:
    from towerco_notify.commands.topic_reader import read_topic

    bad = Bad()
    since_ms = int(start * 1000) if start is not None else None
    async for records in read_topic(bootstrap, TOPIC_KPIS, since_ms):
        for r in records:
            try:
                msg = decode_kpi(r.value)
            except BadInput as exc:
                bad.note(f"{TOPIC_KPIS}[{r.partition}]@{r.offset}", exc.reason)
                continue
            bt.add(msg)
        progress.tick(bt)
    return bad


def _load(config_dir: str) -> RuleSet:
    return load_rules(Path(config_dir) / THRESHOLDS_FILE)


def run(args: argparse.Namespace) -> int:
    try:
        old, new = _load(args.against), _load(args.config)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    bootstrap = args.kafka_bootstrap or os.environ.get("NOTIFY_KAFKA_BOOTSTRAP")
    if args.input is None and not bootstrap:
        print(
            "towerco-notify backtest: --input FILE or --kafka-bootstrap / "
            "NOTIFY_KAFKA_BOOTSTRAP required",
            file=sys.stderr,
        )
        return 2
    start, end = _window(args, args.input is None)
    bt = Backtest(old, new, args.tenant, args.site, args.plot is not None, start, end)
    progress = Progress(args.quiet)
    if args.input is not None:
        path = Path(args.input)
        if not path.is_file():
            print(f"towerco-notify backtest: {path}: no such file", file=sys.stderr)
            return 2
        bad = Bad()
        for n, msg in enumerate(_file_messages(path, bad)):
            bt.add(msg)
            if n % 50_000 == 0:
                progress.tick(bt)
    else:
        assert bootstrap is not None
        bad = asyncio.run(_replay_kafka(bootstrap, bt, start, progress))
    changed = bt.finish(end)
    report = bt.report(changed)
    report["skipped"] = bad.count
    print_table(bt, changed, report, args)
    if args.json:
        data = orjson.dumps(report, option=orjson.OPT_INDENT_2)
        if args.json == "-":
            sys.stdout.buffer.write(data + b"\n")
        else:
            Path(args.json).write_bytes(data + b"\n")
    if args.plot:
        from towerco_notify.commands.backtest_plot import plot

        plot(changed[: args.max_panels], Path(args.plot), args.against, args.config)
    return 0


def _fmt_s(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.1f}m"
    return f"{seconds:.0f}s"


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M") if t is not None else "-"


def print_table(
    bt: Backtest, changed: list[Series], report: dict[str, Any], args: argparse.Namespace
) -> None:
    out = sys.stderr if args.json == "-" else sys.stdout
    print(
        f"{report['samples']} KPI samples, {report['series']} series with a rule; "
        f"{len(changed)} differ ({args.against} -> {args.config})"
        + (f"; {report['skipped']} messages skipped" if report["skipped"] else ""),
        file=out,
    )
    if changed:
        head = (
            f"{'tenant/site/kpi':40} {'warn':>9} {'crit':>9} {'flaps':>9} "
            f"{'in alert':>15} {'first':>11} {'last':>11}"
        )
        print(head, file=out)
        for s in changed:
            o, n = s.old, s.new
            print(
                f"{'/'.join(s.key)[:40]:40} {o.warning:>4}>{n.warning:<4} "
                f"{o.critical:>4}>{n.critical:<4} {o.flaps:>4}>{n.flaps:<4} "
                f"{_fmt_s(o.time_in_alert_s):>7}>{_fmt_s(n.time_in_alert_s):<7} "
                f"{_when(n.first_alert if n.first_alert is not None else o.first_alert):>11} "
                f"{_when(n.last_alert if n.last_alert is not None else o.last_alert):>11}",
                file=out,
            )
    totals = [t for t in report["totals"] if t["old"] != t["new"]] or report["totals"]
    if totals:
        print("alerts per rule (old -> new):", file=out)
        for t in totals:
            print(f"  {t['rule_id']:40} {t['old']:>6} -> {t['new']}", file=out)
