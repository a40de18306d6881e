"""Suppression lookup cost per incident: 10 000 sites, 1 000 maintenance windows (one-time
and recurring in several time zones) and 1 000 silences in one tenant.

    python bench/suppression.py [--sites 10000] [--windows 1000] [--silences 1000]

Prints the cost of one decision (`SuppressionStore.mutes`, as the pipeline and the
escalation engine call it) in µs, for notices at random sites (most not suppressed, the
common case) and for notices at a site under maintenance; compare with the incident
path's cost per message (`bench/thresholds.py --kind incident`).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.suppression.policy import Notice, Silence, Window  # noqa: E402
from notify_core.suppression.store import SuppressionStore  # noqa: E402

ZONES = ("UTC", "Africa/Lagos", "Europe/Paris", "America/New_York", "Asia/Kolkata")


def build(sites: int, windows: int, silences: int, now: float) -> SuppressionStore:
    rnd = random.Random(3)
    store = SuppressionStore(None)
    names = [f"site-{i:05d}" for i in range(sites)]
    for i in range(windows):
        covered = frozenset(rnd.sample(names, rnd.randint(1, 5)))
        if i % 2:
            w = Window(f"w{i}", "t", covered, now - 3600, now + rnd.choice((-1, 1)) * 1800)
        else:
            start = dtime(rnd.randint(0, 23), rnd.choice((0, 30)))
            w = Window(
                f"w{i}", "t", covered, days=("sat", "sun") if i % 4 else (),
                start=start, end=dtime((start.hour + 2) % 24, start.minute),
                timezone=rnd.choice(ZONES),
            )  # fmt: skip
        store._windows[f"t:{w.id}"] = w
    for i in range(silences):
        matchers = rnd.choice(
            (
                {"site_id": rnd.choice(names)},
                {"site_id": rnd.choice(names), "severity": "minor"},
                {"incident_id": f"I-{rnd.randint(0, 100_000)}"},
                {"kpi": "rssi_dbm", "site_id": rnd.choice(names)},
            )
        )
        s = Silence(f"s{i}", "t", matchers, now - 60, now + rnd.randint(-30, 3600))
        store._silences[f"t:{s.id}"] = s
    for i in range(0, sites, 97):
        store._status[("t", names[i])] = rnd.choice(("up", "down", "maintenance"))
    return store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=10_000)
    ap.add_argument("--windows", type=int, default=1_000)
    ap.add_argument("--silences", type=int, default=1_000)
    ap.add_argument("--calls", type=int, default=20_000)
    args = ap.parse_args()
    now = time.time()
    store = build(args.sites, args.windows, args.silences, now)
    rnd = random.Random(9)
    notices = [
        Notice("t", f"I-{i}", f"site-{rnd.randrange(args.sites):05d}", "critical")
        for i in range(args.calls)
    ]
    store.mutes(notices[0], now)  # warm (the index, where there is one)
    t = time.perf_counter()
    quiet = sum(store.mutes(n, now) is not None for n in notices)
    per = (time.perf_counter() - t) / len(notices) * 1e6
    covered = next(iter(store._windows.values())).site_ids
    hot = [Notice("t", f"J-{i}", next(iter(covered)), "major") for i in range(args.calls)]
    t = time.perf_counter()
    for n in hot:
        store.mutes(n, now)
    hot_per = (time.perf_counter() - t) / len(hot) * 1e6
    print(
        f"{args.sites} sites, {args.windows} windows, {args.silences} silences: "
        f"{per:.2f} µs per decision at a random site ({quiet} of {len(notices)} quiet), "
        f"{hot_per:.2f} µs at a site with a window"
    )


if __name__ == "__main__":
    main()
