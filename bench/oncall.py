"""Who is on call: the rotation maths at scale (escalation/oncall/rotation.py).

    python bench/oncall.py [--schedules 1000] [--layers 10]

Prints the cost of who-is-on-call at one instant for each of `--schedules` schedules of
`--layers` layers (mixed shift lengths, half with `only` windows, in DST zones), the
shifts of a weekly rotation over a year, and the next change.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from escalation.oncall.rotation import next_change, shifts, users_at  # noqa: E402
from escalation.oncall.schedule import parse_schedules  # noqa: E402

ZONES = ("Europe/Berlin", "America/New_York", "Africa/Nairobi", "Australia/Sydney")


def build(n: int, layers: int) -> list:  # type: ignore[type-arg]
    rnd = random.Random(5)
    text = "schedules:\n"
    for i in range(n):
        text += (
            f"  - name: s{i}\n    tenant: t\n    timezone: {ZONES[i % len(ZONES)]}\n    layers:\n"
        )
        for j in range(layers):
            users = ", ".join(f"u{rnd.randint(0, 500)}" for _ in range(rnd.randint(2, 6)))
            shift = rnd.choice(["8h", "12h", "1d", "7d"])
            begin = f"2026-01-0{1 + j % 7}T08:00"
            text += f"      - {{name: l{j}, users: [{users}], shift: {shift}, start: {begin}"
            if j % 2:
                text += ', only: {days: [mon, tue, wed, thu, fri], from: "18:00", to: "08:00"}'
            text += "}\n"
    return list(parse_schedules(text).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=10)
    args = parser.parse_args()
    schedules = build(args.schedules, args.layers)
    at = datetime(2026, 12, 7, 14, 3, tzinfo=UTC)
    for _ in range(2):
        start = time.perf_counter()
        for s in schedules:
            users_at(s, [], at)
        per = (time.perf_counter() - start) / len(schedules) * 1e6
    print(f"who is on call: {per:.0f} µs per schedule of {args.layers} layers")
    weekly = parse_schedules(
        "schedules:\n  - name: w\n    tenant: t\n    timezone: Europe/Berlin\n    layers:\n"
        "      - {name: week, users: [a, b, c, d], shift: 7d, start: 2026-01-05T09:00}\n"
    )[("t", "w")]
    start = time.perf_counter()
    found = shifts(weekly, [], at, at + timedelta(days=365))
    took = (time.perf_counter() - start) * 1e3
    print(f"a year of a weekly rotation: {len(found)} shifts in {took:.1f} ms")
    start = time.perf_counter()
    for s in schedules[:200]:
        next_change(s, [], at)
    per = (time.perf_counter() - start) / 200 * 1e3
    print(f"next change: {per:.2f} ms per schedule of {args.layers} layers")


if __name__ == "__main__":
    main()
