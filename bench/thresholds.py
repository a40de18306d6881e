"""Threshold engine throughput: the pure evaluator, then the whole pipeline path.

    ./.venv/bin/python bench/thresholds.py              # evaluator + pipeline (20k KPI msgs)
    ./.venv/bin/python bench/thresholds.py --messages 50000 --kpis-per-message 3
    ./.venv/bin/python bench/thresholds.py --kind incident --redis-url redis://127.0.0.1:6379/12

1. Evaluator: `evaluate()` on a realistic series (mostly quiet, 2% excursions), per core.
2. Pipeline: an in-process daemon (`run` mode, memory engine or Redis, tansu) with the shipped
   config/thresholds.yaml; N KPI messages are produced first, then the daemon's Faust
   worker is timed from its first to its last stored kpi_update (thresholds evaluated,
   state kept in the Faust table, history appended, emitted to the site rooms); the
   messages of the first batch, stored before the clock starts, are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
import uuid
from pathlib import Path

import orjson
import uvloop
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "config")
sys.path.insert(0, str(ROOT))

from notify_core.settings import load_settings  # noqa: E402
from notify_core.thresholds.rules_file import load_rules  # noqa: E402
from notify_core.wire.events import ALL_TOPICS, TOPIC_ALERTS, TOPIC_KPIS  # noqa: E402
from pipeline.kafka.topics import ensure_topics  # noqa: E402
from pipeline.thresholds import evaluate  # noqa: E402
from towerco_notify.embedded_broker import EmbeddedBroker  # noqa: E402
from towerco_notify.runtime import Runtime  # noqa: E402


def bench_evaluator(n: int) -> float:
    rules = load_rules(ROOT / "config" / "thresholds.yaml")
    rule = rules.effective("demo", "s1", "temperature_c")
    assert rule is not None
    rng = random.Random(1)
    values = [60.0 if rng.random() < 0.02 else 30.0 + rng.random() * 5 for _ in range(n)]
    state = None
    start = time.perf_counter()
    for i, value in enumerate(values):
        state, _ = evaluate(rule, state, value, 1000.0 + i)
    return n / (time.perf_counter() - start)


async def bench_pipeline(
    messages: int,
    kpis_per_message: int,
    sites: int,
    kind: str = "kpi",
    coalesce: bool = False,
    redis_url: str | None = None,
    breaching: float = 2.0,
) -> dict[str, float]:
    broker = EmbeddedBroker()
    await broker.start()
    await ensure_topics(broker.bootstrap, ALL_TOPICS, 4)
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    tenant = "bench" + uuid.uuid4().hex[:4]
    names = [
        "availability_pct",
        "rssi_dbm",
        "packet_loss_pct",
        "temperature_c",
        "battery_voltage_v",
    ][:kpis_per_message]
    rng = random.Random(2)
    # healthy (low, high) and breaching (past critical) values per KPI (config/thresholds.yaml)
    healthy = {
        "availability_pct": (99.7, 100.0),
        "rssi_dbm": (-70.0, -60.0),
        "packet_loss_pct": (0.0, 0.5),
        "temperature_c": (28.0, 36.0),
        "battery_voltage_v": (52.0, 54.0),
    }
    bad = {
        "availability_pct": (80.0, 90.0),
        "rssi_dbm": (-110.0, -101.0),
        "packet_loss_pct": (6.0, 12.0),
        "temperature_c": (56.0, 62.0),
        "battery_voltage_v": (44.0, 45.5),
    }
    in_breach = {s for s in range(sites) if rng.random() * 100 < breaching}
    what = (
        f"incident alerts ({sites} sites)"
        if kind == "incident"
        else f"KPI messages ({kpis_per_message} KPIs each, {sites} sites)"
    )
    print(f"producing {messages} {what}...", flush=True)
    severities = ["critical"] + ["major"] * 2 + ["minor"] * 3 + ["warning"] * 4
    for i in range(messages):
        site = f"site-{i % sites:04d}"
        if kind == "incident":
            topic, payload = (
                TOPIC_ALERTS,
                {
                    "incident_id": f"INC-{i}",
                    "title": "Rectifier module failure",
                    "description": "Rectifier 2 of 4 failed at shelter A",
                    "severity": severities[i % len(severities)],
                },
            )
        else:
            ranges = bad if i % sites in in_breach else healthy
            topic, payload = (
                TOPIC_KPIS,
                {n: round(rng.uniform(*ranges[n]), 2) for n in names},
            )
        env = {
            "tenant_id": tenant,
            "site_id": site,
            "timestamp": f"2026-11-25T10:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}Z",
            "payload": payload,
        }
        await producer.send(topic, orjson.dumps(env), key=site.encode())
        if i and i % 10000 == 0:
            print(f"  {i} produced", flush=True)
    await producer.flush()
    await producer.stop()
    settings = load_settings(
        kafka_bootstrap=broker.bootstrap,
        http_port=0,
        gc_freeze=True,
        app_id=f"bench-{uuid.uuid4().hex[:6]}",
        tansu_compat=True,
        kpi_coalesce=coalesce,
        history_maxlen=messages + 10,
        config_dir=Path(CONFIG),
        kafka_offset_reset="earliest",
        log_level="WARNING",
        redis_url=redis_url,
        redis_prefix=f"benchthr{uuid.uuid4().hex[:6]}:",
    )
    runtime = Runtime(settings, mode="run")

    def stored() -> int:
        # messages fully processed: published as their own kpi_update, or folded into a
        # later one of the same site (coalescing); cheap to poll, unlike the history
        kind_type = "incident_alert" if kind == "incident" else "kpi_update"
        value = REGISTRY.get_sample_value("notify_notifications_total", {"type": kind_type})
        folded = REGISTRY.get_sample_value("notify_kpi_samples_coalesced_total")
        return int(value or 0) + int(folded or 0) - base

    def batch_stats() -> tuple[float, float, float]:
        get = REGISTRY.get_sample_value
        return (
            get("notify_pipeline_batch_messages_count") or 0.0,
            get("notify_pipeline_batch_messages_sum") or 0.0,
            get("notify_pipeline_batch_seconds_sum") or 0.0,
        )

    gc_time = [0.0, 0.0, 0.0]  # start of the current collection, total seconds, collections

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_time[0] = time.perf_counter()
        elif first is not None:
            gc_time[1] += time.perf_counter() - gc_time[0]
            gc_time[2] += 1

    base = 0
    base = stored()
    batches0 = batch_stats()
    first: float | None = None
    first_done = 0  # what the first batch stored: its time is before `first`, not counted
    gc.callbacks.append(on_gc)
    await runtime.start()
    t0 = time.perf_counter()
    done = 0
    while done < messages:
        done = stored()
        if done and first is None:
            first, first_done = time.perf_counter(), done
        if time.perf_counter() - t0 > 600:
            break
        await asyncio.sleep(0.01)
    end = time.perf_counter()
    gc.callbacks.remove(on_gc)
    batches, batched, handler_s = (b - a for a, b in zip(batches0, batch_stats(), strict=True))
    await runtime.stop()
    await broker.stop()
    if redis_url:  # leave nothing behind
        from redis.asyncio import Redis

        redis = Redis.from_url(redis_url)
        async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()
    assert first is not None
    if done == first_done:
        raise SystemExit(
            f"--messages {messages}: every message came in the first fetch, which is not"
            " timed; give more (e.g. --messages 60000) for a rate"
        )
    return {
        "messages": done - first_done,  # timed: those stored after the first batch
        "seconds": end - first,
        "msgs_per_s": (done - first_done) / (end - first),
        "startup_s": first - t0,
        # where the wall time went: our batch handler vs the rest (Faust's fetch, acks,
        # waiting for the broker), and the garbage collector's share
        "batches": batches,
        "per_batch": batched / batches if batches else 0.0,
        "handler_us": handler_s / batched * 1e6 if batched else 0.0,
        "handler_share": handler_s / (end - first),
        "gc_collections": gc_time[2],
        "gc_share": gc_time[1] / (end - first),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--evaluations", type=int, default=500_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--kpis-per-message", type=int, default=3)
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument(
        "--kind", choices=["kpi", "incident"], default="kpi", help="which input topic to load"
    )
    parser.add_argument(
        "--coalesce", action="store_true", help="NOTIFY_KPI_COALESCE on (quiet samples folded)"
    )
    parser.add_argument(
        "--breaching",
        type=float,
        default=2.0,
        help="percent of sites whose KPIs are past critical (100: a network-wide storm, every"
        " KPI pending, then firing and raising an incident)",
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="history, snapshots and incident state in Redis (e.g. redis://127.0.0.1:6379/12)"
        " instead of the embedded memory engine",
    )
    args = parser.parse_args()
    rate = bench_evaluator(args.evaluations)
    print(f"evaluator: {rate:,.0f} evaluations/s (pure, one core)", flush=True)
    # the daemon's default loop (NOTIFY_UVLOOP); --loop asyncio for the standard one
    factory = uvloop.new_event_loop if args.loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        res = runner.run(
            bench_pipeline(
                args.messages,
                args.kpis_per_message,
                args.sites,
                args.kind,
                args.coalesce,
                args.redis_url,
                args.breaching,
            )
        )
    print(
        f"  {res['batches']:.0f} fetches of {res['per_batch']:.0f} messages on average; the"
        f" batch handler took {res['handler_us']:.1f} us per message,"
        f" {res['handler_share']:.0%} of the wall time; {res['gc_collections']:.0f} garbage"
        f" collections took {res['gc_share']:.0%}"
    )
    if args.kind == "incident":
        print(
            f"pipeline: {res['messages']} incident alerts in {res['seconds']:.2f}s = "
            f"{res['msgs_per_s']:,.0f} msgs/s (incident state, history, emit, escalation "
            f"timers for the critical tenth), {'Redis' if args.redis_url else 'memory'} "
            f"engine; group join took {res['startup_s']:.1f}s"
        )
        return
    print(
        f"pipeline: {res['messages']} KPI messages in {res['seconds']:.2f}s = "
        f"{res['msgs_per_s']:,.0f} msgs/s ({res['msgs_per_s'] * args.kpis_per_message:,.0f} "
        f"KPI evaluations/s) with thresholds, state table, history and emit"
        f"{' (coalescing on)' if args.coalesce else ''}, {args.breaching:g}% of sites "
        f"breaching, {'Redis' if args.redis_url else 'memory'} engine; "
        f"group join + recovery took {res['startup_s']:.1f}s"
    )


if __name__ == "__main__":
    main()
