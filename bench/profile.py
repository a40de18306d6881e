"""Where the daemon's CPU goes for one transport: py-spy samples of a `run` daemon serving
K clients at R alerts/s (R=0: idle, pings only), summarised by function.

    .venv/bin/python bench/profile.py --transport polling --clients 1000 --rate 12.5
    .venv/bin/python bench/profile.py --transport polling --clients 1000 --rate 0 --duration 30

Prints the daemon's CPU share and the top functions by own time and by inclusive time
(share of all samples, GIL-holding only), and writes py-spy's flame graph (SVG) and the
collapsed stacks next to `bench/results/`. Needs py-spy (the `bench` extra) and ptrace
rights on the daemon (root, or `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import (  # noqa: E402
    SECRET,
    TENANT,
    Clients,
    cpu_seconds,
    ensure_node_packages,
    produce,
    start_broker,
    start_daemon,
)

from sio_server.admission.auth import mint_token  # noqa: E402
from towerco_notify.embedded_broker import free_port  # noqa: E402

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]*)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """`poll (engineio/async_socket.py:120)` -> `engineio/async_socket.py:poll`."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/work/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{m['func']}"


def summarise(
    collapsed: Path, top: int
) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """(samples, own-time shares, inclusive shares) from py-spy's raw collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return 0, [], []

    def shares(c: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / total) for name, n in c.most_common(top)]

    return total, shares(own), shares(inclusive)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transport", default="polling")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=12.5, help="alerts/s; 0 for idle")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--daemon-args", default="", help="extra flags for towerco-notify run")
    parser.add_argument("--label", default="", help="a word for the output file names")
    parser.add_argument("--keepalive", action="store_true", help="clients reuse connections")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    ensure_node_packages()
    broker, producer = await start_broker()
    port = free_port()
    daemon = await start_daemon(broker.bootstrap, port, args.daemon_args.split())
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    base = (
        out
        / f"profile-{args.transport}-r{args.rate:g}{'-' + args.label if args.label else ''}-{stamp}"
    )
    token = mint_token(SECRET, TENANT, "bench", ["operator"], ttl_s=3600)
    clients = await Clients.start(
        f"http://127.0.0.1:{port}",
        args.clients,
        args.transport,
        {"token": token},
        1,
        args.keepalive,
    )
    try:
        await asyncio.sleep(2.0)
        await clients.report()
        cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
        record = [spy, "record", "-p", str(daemon.pid), "-d", str(int(args.duration)), "-r", "200"]
        raw = await asyncio.create_subprocess_exec(
            *record, "-f", "raw", "-o", f"{base}.txt", "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        producing = (
            asyncio.create_task(produce(producer, args.rate, args.duration))
            if args.rate > 0
            else None
        )
        await raw.wait()
        sent = await producing if producing else 0
        await asyncio.sleep(1.0)
        cpu = cpu_seconds(daemon.pid) - cpu0
        elapsed = time.monotonic() - t0
        rep = await clients.report()
    finally:
        await clients.close()
        daemon.terminate()
        await daemon.wait()
        await producer.stop()
        await broker.stop()
    samples, own, inclusive = summarise(Path(f"{base}.txt"), args.top)
    print(
        f"{args.transport} K={args.clients} R={args.rate}/s over {elapsed:.1f}s: daemon CPU "
        f"{100 * cpu / elapsed:.1f} % of a core, sent {sent}, received {rep['received']}"
        + (f", {1e6 * cpu / rep['received']:.1f} µs/msg" if rep["received"] else "")
        + f"; {samples} samples"
    )
    print("\nown time (share of samples):")
    for name, share in own:
        print(f"  {100 * share:5.1f} %  {name}")
    print("\ninclusive time:")
    for name, share in inclusive:
        print(f"  {100 * share:5.1f} %  {name}")
    print(f"\ncollapsed stacks: {base}.txt")


if __name__ == "__main__":
    asyncio.run(main())
