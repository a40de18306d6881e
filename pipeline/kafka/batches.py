"""Batch consumption: the records of each fetch go to one handler call, not through
Faust's per-event machinery.

Faust hands every message to its stream through `wait_first(callback(message), ...)`
(four tasks and an `asyncio.wait` per message), the conductor, a channel queue and the
stream iterator: about 200 us per event, a ceiling of ~5 k events/s per worker on this
machine kind before any work is done (docs/performance.md). This consumer keeps
everything else of Faust - the group membership and rebalances, the fetcher thread,
offset tracking and commits, gap handling, tables and their changelogs, timers - and
replaces only the drain loop for the topics we consume: each fetch becomes one
`BatchSink` call with the records as plain `Incoming` tuples in record-time order (each
partition in offset order), and their offsets are acked (so they can be committed) only
after the sink returns, i.e. after what they produced is stored. Other topics (the
tables' changelogs during recovery) still go through the conductor, message by message.

The loop is `faust.transport.consumer.Consumer._drain_messages` (faust-streaming 0.15)
with Faust's `getmany` and `ack` done per partition instead of per message: the
partition's high-water mark read once, no `ConsumerMessage` built, one bookkeeping step
for all of a partition's offsets (together 25 % of the KPI pipeline's time, profiled).
tests/test_tuning.py fails if Faust renames what it relies on.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable
from operator import itemgetter
from time import monotonic
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger(__name__)

# (topic, raw value, Kafka timestamp ms, partition, offset)
Incoming = tuple[str, bytes | None, int | None, int | None, int | None]
BatchSink = Callable[[list[Incoming]], Awaitable[None]]


class BatchRouting:
    """Which topics are consumed in batches, and by whom (set by the Pipeline)."""

    def __init__(self) -> None:
        self.sink: BatchSink | None = None
        self.topics: frozenset[str] = frozenset()


def _time_of(row: Incoming) -> int:
    return row[2] or 0


def in_time_order(partitions: list[list[Incoming]]) -> list[Incoming]:
    """Interleave the partitions of a fetch by record timestamp, each partition in offset
    order: handled partition after partition, an alert produced after a KPI sample on
    another topic could otherwise be handled first."""
    if len(partitions) == 1:
        return partitions[0]
    return list(heapq.merge(*partitions, key=_time_of))


def ack_offsets(consumer: Any, tp: Any, offsets: Iterable[int]) -> None:
    """What Faust's `Consumer.ack` does for each message, for a partition's offsets at
    once: mark them done, so the committer can move past them."""
    if not consumer.app.topics.acks_enabled_for(tp.topic):
        return
    with ack_lock:
        committed = consumer._committed_offset[tp]
        index = consumer._acked_index[tp]
        fresh = [o for o in offsets if (committed is None or o >= committed) and o not in index]
        index.update(fresh)
        consumer._acked[tp].extend(fresh)
        consumer._n_acked += len(fresh)
        notify(consumer._waiting_for_ack)


async def _fetch(consumer: Any, timeout: float) -> dict[Any, list[Any]]:
    """One fetch, as Faust's `getmany` takes it: the records of the partitions still
    active, each partition's end offset reported to the monitor."""
    records, active = await consumer._wait_next_records(timeout)
    if not records or consumer.should_stop:
        return {}
    if not consumer.flow_active:  # a rebalance began: go back to the committed offsets
        try:
            await consumer.perform_seek()
        except Exception as exc:
            log.warning("seeking back while the flow is stopped failed: %s", exc)
        return {}
    buffered = consumer._buffered_partitions
    track_end = consumer.app.monitor.track_tp_end_offset
    out: dict[Any, list[Any]] = {}
    for tp, recs in records.items():
        if recs and (active is None or tp in active or tp in buffered):
            track_end(tp, consumer.highwater(tp))
            out[tp] = recs
    return out


async def drain_in_batches(self: Any, fetcher: Any, routing: BatchRouting) -> None:
    """The drain loop of `self` (a Faust Consumer), batching `routing.topics`."""
    callback = self.callback
    to_message = self._to_message
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    read_offset = self._read_offset
    set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    monitor = self.app.monitor
    sink = routing.sink
    batched = routing.topics
    assert sink is not None
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            await self.sleep(0)
            if self.should_stop:
                break
            parts: list[tuple[Any, list[Incoming]]] = []
            for tp, records in (await _fetch(self, timeout=1.0)).items():
                topic, partition = tp.topic, tp.partition
                r_offset = read_offset[tp]
                rows: list[Incoming] = []
                for record in records:
                    offset = record.offset
                    if r_offset is not None and offset < r_offset:
                        continue  # already read (a seek back): Faust drops these too
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if topic in batched:
                        ts = record.timestamp
                        rows.append(
                            (topic, record.value, ts if ts and ts > 0 else None, partition, offset)
                        )
                    else:
                        await self.wait_first(
                            callback(to_message(tp, record)), self.suspend_flow.wait()
                        )
                    r_offset = read_offset[tp] = offset
                if rows:
                    parts.append((tp, rows))
            if parts:
                batch = in_time_order([rows for _, rows in parts])
                if monitor is not None:
                    # what a stream records per event; Faust's stall watchdog reads it
                    now = monotonic()
                    for tp, _ in parts:
                        monitor.stream_inbound_time[tp] = now
                await sink(batch)
                offset_of = itemgetter(4)
                for tp, rows in parts:
                    ack_offsets(self, tp, map(offset_of, rows))
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
            unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            log.info("broker stopped the consumer; shutting down")
            return
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


__all__ = ["BatchRouting", "BatchSink", "Incoming", "ack_offsets", "drain_in_batches"]
