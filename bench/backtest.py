"""Backtest replay rate: KPI samples per second through both rule sets.

    python bench/backtest.py [--sites 10000] [--hours 1] [--every 60]

Builds `sites x hours*3600/every` KPI envelopes (one KPI per sample, a random walk that
crosses the thresholds now and then), writes them as JSONL, and times
1. the evaluator alone on decoded messages (`Backtest.add`, two rule sets),
2. the whole `towerco-notify backtest --input` path (read, decode with the live
   validator, replay, report), as an operator runs it.
Prints samples/s and the extrapolated time for one day of the same sites.
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.thresholds.rules_file import load_rules  # noqa: E402
from pipeline.backtest import Backtest  # noqa: E402
from pipeline.envelope import decode_kpi  # noqa: E402


def build(path: Path, sites: int, samples_per_site: int, every: int) -> int:
    rnd = random.Random(7)
    t0 = datetime(2026, 11, 30, tzinfo=UTC)
    level = [99.8] * sites
    n = 0
    with path.open("wb") as fh:
        for i in range(samples_per_site):
            ts = (t0 + timedelta(seconds=every * i)).isoformat()
            lines = []
            for s in range(sites):
                v = level[s] = min(100.0, max(90.0, level[s] + rnd.gauss(0, 0.4)))
                lines.append(
                    orjson.dumps(
                        {
                            "tenant_id": "bench",
                            "site_id": f"site-{s:05d}",
                            "timestamp": ts,
                            "payload": {"availability_pct": round(v, 2)},
                        }
                    )
                )
            fh.write(b"\n".join(lines) + b"\n")
            n += sites
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=10_000)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--every", type=int, default=60)
    args = ap.parse_args()
    per_site = int(args.hours * 3600 / args.every)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "kpis.jsonl"
        new_dir = Path(tmp) / "new"
        new_dir.mkdir()
        text = (ROOT / "config" / "thresholds.yaml").read_text()
        (new_dir / "thresholds.yaml").write_text(text.replace("for: 1m", "for: 5m", 1))
        n = build(data, args.sites, per_site, args.every)
        raw = data.read_bytes().splitlines()
        t = time.perf_counter()
        for line in raw:
            decode_kpi(line)
        decode_s = time.perf_counter() - t
        msgs = [decode_kpi(line) for line in raw]
        old = load_rules(ROOT / "config" / "thresholds.yaml")
        new = load_rules(new_dir / "thresholds.yaml")
        bt = Backtest(old, new)
        gc.freeze()  # the decoded messages are kept: keep the collector off them
        t = time.perf_counter()
        for m in msgs:
            bt.add(m)
        changed = bt.finish()
        replay_s = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable, "-m", "towerco_notify.cli", "backtest", "--quiet",
                "--against", str(ROOT / "config"), "--config", str(new_dir),
                "--input", str(data), "--json", str(Path(tmp) / "out.json"),
            ],
            check=True, stdout=subprocess.DEVNULL, cwd=ROOT,
        )  # fmt: skip
        cli_s = time.perf_counter() - t
    day = args.sites * 86400 / args.every
    print(f"{n} samples ({args.sites} sites x {per_site}), {len(changed)} series differ")
    print(f"  decode (live validator)  {n / decode_s:>12,.0f} samples/s")
    print(f"  replay (two rule sets)   {n / replay_s:>12,.0f} samples/s")
    print(f"  whole CLI --input        {n / cli_s:>12,.0f} samples/s ({cli_s:.1f} s)")
    print(
        f"  one day of {args.sites} sites every {args.every}s = {day:,.0f} samples: "
        f"~{day / (n / cli_s):.0f} s through the CLI"
    )


if __name__ == "__main__":
    main()
