"""Sites and topology: loading a large inventory, and the muter's decision with it.

    python bench/topology.py [--sites 50000] [--down 1000] [--hubs-every 20]

An inventory of `--sites` sites in hubs of `--hubs-every` (each tower depends on its
hub; every tenth hub on a core site), written by `sites import`'s writer (JSON, a site a
line) and as hand-written YAML; then `--down` hubs reported down and one decision
(`SuppressionStore.mutes`, as the pipeline and the escalation engine call it) timed in µs
for notices at towers behind a down hub, behind an up hub, and at sites not in the
inventory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.in_force import fixed  # noqa: E402
from notify_core.sites_config import Site, dump_sites, parse_sites  # noqa: E402
from notify_core.suppression.policy import Notice  # noqa: E402
from notify_core.suppression.store import SuppressionStore  # noqa: E402


def inventory(n: int, every: int) -> list[Site]:
    rnd = random.Random(7)
    out = []
    hubs = 0
    for i in range(n):
        lat, lon = round(rnd.uniform(-4.5, 4.5), 4), round(rnd.uniform(34, 41.5), 4)
        if i % every == 0:
            core = f"hub-{(hubs // 10) * 10:05d}" if hubs % 10 else None
            deps = (core,) if core else ()
            out.append(Site(tenant="t", id=f"hub-{hubs:05d}", region=f"r{hubs % 8}", lat=lat,
                            lon=lon, depends_on=deps))  # fmt: skip
            hubs += 1
        else:
            out.append(Site(tenant="t", id=f"s-{i:06d}", name=f"Tower {i}", region=f"r{i % 8}",
                            lat=lat, lon=lon, depends_on=(f"hub-{hubs - 1:05d}",)))  # fmt: skip
    return out


def timed(fn, reps: int = 1):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(reps):
        result = fn()
    return result, (time.perf_counter() - start) / reps


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=50_000)
    parser.add_argument("--down", type=int, default=1_000)
    parser.add_argument("--hubs-every", type=int, default=20)
    args = parser.parse_args()
    sites = inventory(args.sites, args.hubs_every)
    generated = dump_sites(sites, "bench")
    hand = "version: 1\nsites:\n" + "".join(
        f"  - {{tenant: t, id: {s.id}, region: {s.region}, lat: {s.lat}, lon: {s.lon}"
        + (f", depends_on: [{', '.join(s.depends_on)}]" if s.depends_on else "")
        + "}\n"
        for s in sites
    )
    inv, generated_s = timed(lambda: parse_sites(generated))
    _, hand_s = timed(lambda: parse_sites(hand))
    print(f"{len(inv)} sites: generated form {generated_s:.2f} s, hand-written YAML {hand_s:.2f} s")
    store = SuppressionStore(None, sites=fixed(inv))
    hubs = [s.id for s in sites if s.id.startswith("hub-")]
    down = set(random.Random(1).sample(hubs, min(args.down, len(hubs))))
    for hub in down:
        await store.site_status("t", hub, "down", time.time() - 60)
    towers = [s for s in sites if s.depends_on and s.id.startswith("s-")]
    behind = [s.id for s in towers if s.depends_on[0] in down][:5000]
    clear = [s.id for s in towers if s.depends_on[0] not in down][:5000]
    unknown = [f"x-{i}" for i in range(5000)]
    now = time.time()
    for label, group in (("behind a down hub", behind), ("behind an up hub", clear),
                         ("not in the inventory", unknown)):  # fmt: skip
        notices = [Notice("t", f"i{i}", site, "critical", opened_at=now) for i, site in
                   enumerate(group)]  # fmt: skip
        store.mutes(notices[0], now)  # the index, built once per change
        start = time.perf_counter()
        for _ in range(3):
            found = [store.mutes(n, now) for n in notices]
        per = (time.perf_counter() - start) / (3 * len(notices)) * 1e6
        quiet = sum(1 for m in found if m is not None)
        print(f"  {label:>22}: {per:6.2f} µs per decision ({quiet}/{len(notices)} quiet)")


if __name__ == "__main__":
    asyncio.run(main())
