"""Batch consumption: the records of each fetch go to one handler call, not through
Faust's per-event machinery.

Faust hands every message to its stream through `wait_first(callback(message), ...)`
(four tasks and an `asyncio.wait` per message), the conductor, a channel queue and the
stream iterator: about 200 us per event, a ceiling of ~5 k events/s per worker on this
machine kind before any work is done (docs/performance.md). This consumer keeps
everything else of Faust - the group membership and rebalances, the fetcher thread,
offset tracking and commits, gap handling, tables and their changelogs, timers - and
replaces only the drain loop for the topics we consume: each `getmany` round becomes
one `BatchSink` call with the messages in record-time order (each partition in offset
order), and the messages are acked
(so their offsets can be committed) only after the sink returns, i.e. after what they
produced is stored. Other topics (none today) still go through the conductor.

The drain loop is a copy of `faust.transport.consumer.Consumer._drain_messages`
(faust-streaming 0.15) minus the per-message `wait_first`; tests/test_tuning.py fails
if Faust renames what it relies on.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Awaitable, Callable
from operator import attrgetter
from time import monotonic
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING

log = logging.getLogger(__name__)

BatchSink = Callable[[list[Any]], Awaitable[None]]


class BatchRouting:
    """Which topics are consumed in batches, and by whom (set by the Pipeline)."""

    def __init__(self) -> None:
        self.sink: BatchSink | None = None
        self.topics: frozenset[str] = frozenset()


_timestamp = attrgetter("timestamp")  # Faust's message time (float seconds), always set


def in_time_order(batch: list[Any]) -> list[Any]:
    """Interleave the partitions of a fetch by record timestamp, each partition in offset
    order: Faust's round-robin would otherwise let an alert produced after a KPI sample on
    another topic be handled first (per-topic agents used to race the same way, less often)."""
    by_tp: dict[Any, list[Any]] = {}
    for message in batch:
        by_tp.setdefault(message.tp, []).append(message)
    if len(by_tp) < 2:
        return batch
    return list(heapq.merge(*by_tp.values(), key=_timestamp))


async def drain_in_batches(self: Any, fetcher: Any, routing: BatchRouting) -> None:
    """The drain loop of `self` (a Faust Consumer), batching `routing.topics`."""
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
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
            batch: list[Any] = []
            await self.sleep(0)
            if self.should_stop:
                break
            async for tp, message in getmany(timeout=1.0):
                offset = message.offset
                r_offset = get_read_offset(tp)
                if r_offset is not None and offset < r_offset:
                    continue  # already read (a seek back): Faust drops these too
                gap = offset - (r_offset or 0)
                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if message.topic in batched:
                    batch.append(message)
                else:
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                set_read_offset(tp, offset)
            if batch:
                batch = in_time_order(batch)
                if monitor is not None:
                    # what a stream records per event; Faust's stall watchdog reads it
                    now = monotonic()
                    for message in batch:
                        monitor.stream_inbound_time[message.tp] = now
                await sink(batch)
                for message in batch:
                    self.ack(message)
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


__all__ = ["BatchRouting", "BatchSink", "drain_in_batches"]
