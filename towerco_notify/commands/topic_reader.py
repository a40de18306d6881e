"""Read a retained topic from a point in time to its current end, with a throwaway consumer.

What the operator tools (`audit`, `backtest`) share: no consumer group (nothing joins the
daemon's group, nothing is committed), every partition assigned, a seek by timestamp
where the broker answers one (else from the beginning), and a stop at the end offsets
read when the replay began (records produced later are not waited for).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any


async def read_topic(
    bootstrap: str,
    topic: str,
    since_ms: int | None = None,
    idle_s: float = 1.5,
    max_records: int = 20_000,
) -> AsyncIterator[list[Any]]:
    """Batches of aiokafka `ConsumerRecord`s of `topic`, partition by partition in order,
    with a record timestamp at or after `since_ms` (None: from the beginning)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        found = consumer.partitions_for_topic(topic)
        if not found:
            await consumer.topics()  # refresh the metadata once
            found = consumer.partitions_for_topic(topic) or set()
        parts = [TopicPartition(topic, p) for p in sorted(found)]
        if not parts:
            return
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts: dict[Any, Any] | None = None
        if since_ms is not None:
            with contextlib.suppress(Exception):  # a broker without ListOffsets by time
                starts = await consumer.offsets_for_times({tp: since_ms for tp in parts})
        pending = set()
        for tp in parts:
            if starts is None:
                consumer.seek(tp, 0)
            elif starts.get(tp) is None:
                continue  # no record of that partition is that recent
            else:
                consumer.seek(tp, starts[tp].offset)
            if ends[tp] > 0:
                pending.add(tp)
        while pending:
            batch = await consumer.getmany(
                *pending, timeout_ms=int(idle_s * 1000), max_records=max_records
            )
            if not batch:
                break  # nothing more within idle_s: the end was reached (or misreported)
            for tp, records in batch.items():
                chosen = (
                    records
                    if since_ms is None
                    else [r for r in records if r.timestamp is None or r.timestamp >= since_ms]
                )
                if chosen:
                    yield chosen
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
