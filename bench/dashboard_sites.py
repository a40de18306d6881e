"""The wall screen with a large inventory: the dashboard's load to interactive with
`--sites` sites (sites.yaml, regions, positions; a tenth of them with a status) in
Debian's headless Chromium (tests/node/browser.mjs).

    python bench/dashboard_sites.py [--sites 10000] [--runs 3]

Prints, per run, the time from opening the page to: live (the socket connected), every site
tile rendered and grouped by region, and the map drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.sites_config import Site, dump_sites  # noqa: E402
from towerco_notify.embedded_broker import free_port  # noqa: E402

SECRET = "bench-dashboard-secret-0123456789abcdef"


async def browser_cmd(proc: asyncio.subprocess.Process, **cmd: object) -> dict:  # type: ignore[type-arg]
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(cmd) + "\n").encode())
    await proc.stdin.drain()
    answer = json.loads(await asyncio.wait_for(proc.stdout.readline(), 180))
    assert answer["ok"], answer
    return answer


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rnd = random.Random(3)
    config = Path(tempfile.mkdtemp(prefix="bench-sites-"))
    shutil.copy(ROOT / "config" / "thresholds.yaml", config / "thresholds.yaml")
    sites = [
        Site(
            tenant="wall",
            id=f"s-{i:05d}",
            name=f"Tower {i}",
            region=f"r{i % 12}",
            lat=round(rnd.uniform(-4.5, 4.5), 4),
            lon=round(rnd.uniform(34, 41.5), 4),
            depends_on=(f"s-{i - i % 50:05d}",) if i % 50 else (),
        )
        for i in range(args.sites)
    ]
    (config / "sites.yaml").write_text(dump_sites(sites, "bench"))
    port = free_port()
    env = {**os.environ, "NOTIFY_CONFIG_DIR": str(config), "NOTIFY_HTTP_PORT": str(port),
           "NOTIFY_JWT_SECRET": SECRET, "NOTIFY_HTTP_RATE_PER_S": "1000"}  # fmt: skip
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "towerco_notify", "run", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    browser = await asyncio.create_subprocess_exec(
        "node", str(ROOT / "tests" / "node" / "browser.mjs"),
        json.dumps({"executable": shutil.which("chromium") or "/usr/bin/chromium"}),
        cwd=str(ROOT / "tests" / "node"), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert browser.stdout is not None
        json.loads(await browser.stdout.readline())
        import aiohttp

        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        import jwt

        token = jwt.encode(
            {"sub": "wall", "tenant_id": "wall", "roles": ["operator"], "exp": time.time() + 3600},
            SECRET,
            algorithm="HS256",
        )
        print(f"{args.sites} sites")
        for run in range(args.runs):
            start = time.perf_counter()
            await browser_cmd(browser, cmd="open", url=f"http://127.0.0.1:{port}/#token={token}")
            await browser_cmd(browser, cmd="reload")
            await browser_cmd(browser, cmd="wait", selector="#status[data-state='live']",
                              timeout=120000)  # fmt: skip
            live = time.perf_counter() - start
            last = f"#sites .tile[data-site='s-{args.sites - 1:05d}']"
            await browser_cmd(browser, cmd="wait", selector=last, timeout=120000)
            await browser_cmd(browser, cmd="wait", selector="#sites .region[data-region='r11']",
                              timeout=120000)  # fmt: skip
            tiles = time.perf_counter() - start
            await browser_cmd(browser, cmd="wait", selector=f"#site-map[data-sites='{args.sites}']",
                              timeout=120000)  # fmt: skip
            drawn = time.perf_counter() - start
            took = f"live {live:.2f} s, tiles grouped {tiles:.2f} s, map {drawn:.2f} s"
            print(f"  run {run + 1}: {took}")
    finally:
        if browser.returncode is None:
            browser.kill()
        daemon.terminate()
        await daemon.wait()
        shutil.rmtree(config, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
