"""The latency floor under any server: producer -> broker -> one plain Kafka consumer.

The fan-out benchmark measures Kafka-to-client latency from the envelope's timestamp (set
when the alert is produced) to the client's clock. Part of that is the broker path every
server shares: the producer's send, the broker storing the record, and a consumer's
fetch returning it. This measures that part alone, on the same kind of broker
(embedded tansu, 4 partitions) with the same producer settings as `bench/fanout.py`
(acks=1, linger 1 ms), and a bare `AIOKafkaConsumer` in the same process, no server and
no socket: what is left of a latency target after it is what a server and its clients
may spend.

    ./.venv/bin/python bench/broker_latency.py                       # 50/s, fetch wait 20,5,1
    ./.venv/bin/python bench/broker_latency.py --rates 10,50,100 --fetch-wait-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fanout import markdown_table  # type: ignore[import-not-found]  # noqa: E402

from pipeline.kafka.topics import ensure_topics  # noqa: E402
from towerco_notify.embedded_broker import EmbeddedBroker  # noqa: E402

PAYLOAD_BYTES = 300  # about an incident alert's envelope


def percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def measure(
    bootstrap: str, fetch_wait_ms: int, rate: float, count: int, partitions: int
) -> dict[str, float]:
    topic = f"latency-{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, [topic], partitions)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=fetch_wait_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=1)
    await consumer.start()
    await producer.start()
    try:
        await asyncio.sleep(1.5)  # the consumer's first fetches are in flight
        latencies: list[float] = []

        async def consume() -> None:
            while len(latencies) < count:
                record = await consumer.getone()
                assert record.value is not None
                latencies.append(time.time() * 1000 - float(record.value))

        receiving = asyncio.create_task(consume())
        for i in range(count):
            sent_ms = f"{time.time() * 1000:.3f}".encode().ljust(PAYLOAD_BYTES)
            await producer.send(topic, sent_ms, key=str(i).encode())
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(receiving, 30)
    finally:
        await producer.stop()
        await consumer.stop()
    latencies.sort()
    return {
        "fetch_wait_ms": fetch_wait_ms,
        "rate": rate,
        "p50": percentile(latencies, 0.50),
        "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99),
        "max": latencies[-1],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="50", help="records per second, comma-separated")
    parser.add_argument("--fetch-wait-ms", default="20,5,1", help="comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per (rate, fetch wait)")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    broker = EmbeddedBroker()
    await broker.start()
    rows = []
    try:
        for wait in (int(w) for w in args.fetch_wait_ms.split(",")):
            for rate in (float(r) for r in args.rates.split(",")):
                count = max(50, int(rate * args.seconds))
                row = await measure(broker.bootstrap, wait, rate, count, args.partitions)
                rows.append(row)
                print(
                    f"  fetch wait {wait} ms, {rate:g}/s: p50 {row['p50']:.1f}, "
                    f"p99 {row['p99']:.1f} ms ({count} records)",
                    flush=True,
                )
    finally:
        await broker.stop()
    print()
    head = ["fetch wait ms", "records/s", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    cells = [
        [
            r["fetch_wait_ms"],
            f"{r['rate']:g}",
            *(f"{r[q]:.1f}" for q in ("p50", "p90", "p99", "max")),
        ]
        for r in rows
    ]
    print(markdown_table(head, cells))


if __name__ == "__main__":
    asyncio.run(main())
