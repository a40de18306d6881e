"""Inbound integrations: alerts per second through `POST /api/v1/integrations/{name}/alerts`
into Kafka, and the answer time (p50/p99), each answer given only after the broker
acknowledged every record of its request.

    ./.venv/bin/python bench/ingest.py --requests 200 --batch 100 --concurrency 4

A `server`-free `run` daemon (embedded tansu, memory engine) with one generic and one
alertmanager integration; each request carries `--batch` new alerts (unique ids, so
none is skipped as a repeat).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.settings import load_settings  # noqa: E402
from towerco_notify.runtime import Runtime  # noqa: E402

KEY = "bench-" + uuid.uuid4().hex


def generic_batch(n: int, run: str, i: int) -> Any:
    return [
        {"incident_id": f"b{run}-{i}-{j}", "title": "Rectifier alarm", "severity": "minor"}
        for j in range(n)
    ]


def am_batch(n: int, run: str, i: int) -> Any:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "MainsLost", "severity": "major", "site_id": f"s-{j % 50}"},
            "annotations": {"summary": "Mains lost"},
            "startsAt": "2026-12-07T06:00:00Z",
            "fingerprint": f"{run}{i:05d}{j:04d}",
        }
        for j in range(n)
    ]
    return {"version": "4", "status": "firing", "alerts": alerts}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--kind", choices=("generic", "alertmanager"), default="alertmanager")
    args = parser.parse_args()
    config = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    (config / "key").write_text(KEY)
    (config / "integrations.yaml").write_text(
        "integrations:\n"
        f"  - {{name: gen, tenant: bench, kind: generic, key_file: {config / 'key'}}}\n"
        f"  - {{name: am, tenant: bench, kind: alertmanager, key_file: {config / 'key'}}}\n"
    )
    runtime = Runtime(
        load_settings(http_port=0, config_dir=str(config), jwt_secret="x" * 32), mode="run"
    )
    await runtime.start()
    await runtime.wait_ready(60)
    name, make = ("am", am_batch) if args.kind == "alertmanager" else ("gen", generic_batch)
    url = f"http://127.0.0.1:{runtime.http_port}/api/v1/integrations/{name}/alerts"
    run = uuid.uuid4().hex[:4]
    bodies = [orjson.dumps(make(args.batch, run, i)) for i in range(args.requests)]
    answers: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            t0 = time.perf_counter()
            async with http.post(url, data=body, params={"key": KEY}) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["produced"] == args.batch
            answers.append(time.perf_counter() - t0)

    try:
        async with aiohttp.ClientSession() as http:
            start = time.perf_counter()
            await asyncio.gather(*(worker(http) for _ in range(args.concurrency)))
            wall = time.perf_counter() - start
    finally:
        await runtime.stop()
    answers.sort()
    p = lambda q: answers[min(len(answers) - 1, int(q * len(answers)))] * 1000  # noqa: E731
    print(
        f"{args.kind}: {args.requests} requests x {args.batch} alerts,"
        f" concurrency {args.concurrency}: {args.requests * args.batch / wall:,.0f} alerts/s;"
        f" answer p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms,"
        f" mean {statistics.mean(answers) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
