"""Pages fanned out through personal rules: `--pages` pages, each to one of `--users`
people whose rule sends an SMS at once, through the outbox and the delivery worker to a
local Twilio-compatible stub (memory outbox, in one process).

    python bench/people.py [--pages 1000] [--users 1000]

(More pages than 5 per user and the SMS throttle, 5 per user per 15 minutes, drops the rest.)

Prints jobs/s and, from the page to the stub receiving the SMS, p50/p99/max.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from escalation.people.contacts import ContactMethod, PeopleStore, Rule, Rules  # noqa: E402
from escalation.people.reach import PersonSender, Slack, Twilio  # noqa: E402
from escalation.policy import Level, Policy, Target  # noqa: E402
from escalation.receivers.delivery import Deliveries, DeliveryWorker  # noqa: E402
from escalation.receivers.outbox import MemoryOutbox  # noqa: E402
from escalation.receivers.senders import PageLinks, Sent  # noqa: E402
from escalation.webhooks import HttpClient  # noqa: E402
from notify_core.state.timeline import MemoryTimeline  # noqa: E402
from towerco_notify.embedded_broker import free_port  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    received: dict[str, float] = {}
    done = asyncio.Event()

    async def sms(request: web.Request) -> web.Response:
        form = await request.post()
        received[str(form["Body"]).split(" ")[1]] = time.perf_counter()
        if len(received) >= args.pages:
            done.set()
        return web.json_response({"sid": "SM1"}, status=201)

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/AC1/Messages.json", sms)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    people = PeopleStore(None)
    for u in range(args.users):
        method = ContactMethod(f"m{u}", f"u{u}", "sms", f"+2547000{u:05d}", verified=True)
        await people.put_method("t", method)
        await people.put_rules("t", f"u{u}", Rules((Rule(0.0, method.id),)))
    http = HttpClient()
    links = PageLinks(lambda: "http://noc.example")

    async def nothing(*_: object) -> Sent:
        return Sent(False, None, "unused", False)

    sender = PersonSender(
        people, None, http, links, nothing,
        Twilio(f"http://127.0.0.1:{port}", "AC1", lambda: "tok", "+1555"),
        Slack("http://127.0.0.1:1", None), nothing, lambda: "http://noc.example",
    )  # fmt: skip
    outbox = MemoryOutbox()

    async def publish(event: dict, key: str | None) -> str | None:  # type: ignore[type-arg]
        return None

    worker = DeliveryWorker(outbox, {"person": sender}, MemoryTimeline(), publish, per_type=32)
    deliveries = Deliveries(outbox, worker.wake, people)
    policy = Policy(name="p", levels=[Level(targets=[Target(user="u0")])])
    await worker.start()
    paged: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(args.pages):
        user = f"u{i % args.users}"
        event = {"tenant_id": "t", "incident_id": f"I{i}", "level": 1, "site_id": "s",
                 "incident": {"title": f"P{i}"}, "target_users": [user]}  # fmt: skip
        paged[f"P{i}"] = time.perf_counter()
        await deliveries.page(policy, 0, f"k{i}", event, "critical")
        deliveries.wake()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 120)
    took = time.perf_counter() - start
    lags = sorted(received[k] - paged[k] for k in received if k in paged)
    p99 = lags[int(len(lags) * 0.99) - 1] if lags else float("nan")
    p50, top = statistics.median(lags) * 1e3, lags[-1] * 1e3
    print(f"{len(received)}/{args.pages} pages reached by SMS in {took:.2f} s "
          f"({len(received) / took:.0f} jobs/s); page to SMS p50 {p50:.0f} ms, "
          f"p99 {p99 * 1e3:.0f} ms, max {top:.0f} ms")  # fmt: skip
    await worker.stop()
    await http.stop()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
