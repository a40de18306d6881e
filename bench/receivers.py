"""Receiver throughput: pages per second through each receiver type to local sinks, and
the p50/p99 from "job in the outbox" (the level is due) to "receiver answered".

    python bench/receivers.py [--pages 500] [--redis-url redis://127.0.0.1:6379/12]

Sinks: aiosmtpd for email, one aiohttp app answering Slack/Teams/PagerDuty and a Web Push
endpoint (answers 201 without decrypting: the daemon's cost is what is measured). The
worker runs as in the daemon (per-type concurrency 4, the outbox in memory or Redis).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from escalation.receivers.delivery import DeliveryWorker  # noqa: E402
from escalation.receivers.outbox import Job, MemoryOutbox, Outbox, RedisOutbox  # noqa: E402
from escalation.receivers.push import MemoryPushStore, VapidKeys  # noqa: E402
from escalation.receivers.senders import (  # noqa: E402
    ChatSender,
    EmailSender,
    PagerDutySender,
    Sender,
    Sent,
    WebPushSender,
)
from escalation.webhooks import HttpClient  # noqa: E402
from notify_core.state.timeline import MemoryTimeline  # noqa: E402
from tests.receiver_sinks import Browser  # noqa: E402
from towerco_notify.embedded_broker import free_port  # noqa: E402


class Timed:
    """Wraps a sender: records when each job's attempt was answered."""

    def __init__(self, inner: Sender, done: dict[str, float]) -> None:
        self.inner, self.done = inner, done

    async def send(self, job: Job) -> Sent:
        sent = await self.inner.send(job)
        self.done[job.id] = time.perf_counter()
        return sent


async def sink_app() -> tuple[web.AppRunner, int]:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202 if request.path == "/pd" else 201)

    app = web.Application()
    app.router.add_post("/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def page(i: int) -> dict[str, Any]:
    return {
        "type": "escalation", "tenant_id": "bench", "incident_id": f"I-{i}", "site_id": "s1",
        "level": 1, "cycle": 1, "policy": "p", "incident": {"title": f"Mains lost {i}"},
    }  # fmt: skip


async def run(kind: str, n: int, outbox: Outbox, senders: dict[str, Sender]) -> dict[str, Any]:
    done: dict[str, float] = {}
    timed: dict[str, Sender] = {kind: Timed(senders[kind], done)}
    worker = DeliveryWorker(outbox, timed, MemoryTimeline(), _no_publish, poll_s=0.05)
    targets = {
        "email": {"email": "oncall@example.com"},
        "slack": {"slack": {"url_env": "BENCH_SLACK"}},
        "teams": {"teams": {"url_env": "BENCH_TEAMS"}},
        "pagerduty": {"pagerduty": {"routing_key_env": "BENCH_PD"}},
        "webpush": {"webpush": {"role": "oncall"}},
    }
    run_id = time.time_ns()
    jobs = [
        Job(f"{run_id}/{kind}/{i}", kind, "bench", f"I-{i}", targets[kind], page(i), "critical")
        for i in range(n)
    ]
    await worker.start()
    start = time.perf_counter()
    put_at: dict[str, float] = {}
    for job in jobs:
        put_at[job.id] = time.perf_counter()
        await outbox.put([job])
        worker.wake()
    while len(done) < n:  # noqa: ASYNC110 (a bench: polling the count is what it measures by)
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    await worker.stop()
    lat = sorted((done[j] - put_at[j]) * 1000 for j in put_at)
    return {
        "type": kind,
        "pages_s": n / elapsed,
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[int(len(lat) * 0.99) - 1],
    }


async def _no_publish(event: dict[str, Any], key: str | None) -> str | None:
    return None


async def main() -> None:
    import os

    from aiosmtpd.controller import Controller

    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--redis-url", default=None)
    args = ap.parse_args()
    runner, port = await sink_app()
    base = f"http://127.0.0.1:{port}"
    os.environ.update(BENCH_SLACK=f"{base}/slack", BENCH_TEAMS=f"{base}/teams", BENCH_PD="key")

    class Quiet:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    smtp_port = free_port()
    smtp = Controller(Quiet(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = HttpClient()
    push = MemoryPushStore()
    for i in range(3):  # three on-call browsers
        sub = Browser(f"{base}/push/{i}").subscription()
        await push.add("bench", f"oc-{i}", ["oncall"], sub)

    def link() -> str:
        return "http://noc.example"

    senders: dict[str, Sender] = {
        "email": EmailSender(f"smtp://127.0.0.1:{smtp_port}", "noc@example.com", link),
        "slack": ChatSender("slack", http, link),
        "teams": ChatSender("teams", http, link),
        "pagerduty": PagerDutySender(http, f"{base}/pd", link),
        "webpush": WebPushSender(
            http, push, VapidKeys(None, None, ""), "mailto:noc@towerco.example", link
        ),
    }
    outbox: Outbox = MemoryOutbox()
    if args.redis_url:
        from redis.asyncio import Redis

        outbox = RedisOutbox(Redis.from_url(args.redis_url), f"bench{time.time_ns()}:")
    print(
        f"{args.pages} pages per receiver type, outbox: {'redis' if args.redis_url else 'memory'}"
    )
    print(f"{'type':10} {'pages/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in senders:
        r = await run(kind, args.pages, outbox, senders)
        note = " (3 subscriptions each)" if kind == "webpush" else ""
        print(f"{kind:10} {r['pages_s']:>9.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}{note}")
    await http.stop()
    smtp.stop()
    await runner.cleanup()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        asyncio.run(main())
