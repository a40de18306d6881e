"""Kafka consumer lag per input partition: how many records the broker holds past the
last one this worker handled (`notify_kafka_consumer_lag{topic,partition}`).

The last handled offset is noted per batch (the batch is in partition order, so one pass
keeps the last of each partition); the broker's end offset is the consumer's highwater
(faust's public `Consumer.highwater`, from the latest fetch response), sampled on a timer.
A partition revoked is dropped from the gauge: another worker reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from notify_core.obs import metrics
from pipeline.kafka.batches import Incoming


class ConsumerLag:
    def __init__(self) -> None:
        self._handled: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset
        self._reported: set[tuple[str, int]] = set()

    def handled(self, topic: str, partition: int | None, offset: int | None) -> None:
        if partition is not None and offset is not None:
            self._handled[(topic, partition)] = offset + 1

    def handled_batch(self, messages: Iterable[Incoming]) -> None:
        for topic, _, _, partition, offset in messages:
            self.handled(topic, partition, offset)

    def sample(self, assignment: Iterable[Any], highwater: Callable[[Any], int | None]) -> None:
        """Set the gauge for each assigned topic-partition (`tp.topic`, `tp.partition`);
        until this worker handles a record of a partition, that partition reports 0."""
        now: set[tuple[str, int]] = set()
        for tp in assignment:
            end = highwater(tp)
            if end is None or end < 0:
                continue
            key = (tp.topic, tp.partition)
            now.add(key)
            lag = max(0, end - self._handled.get(key, end))
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        for topic, partition in self._reported - now:
            metrics.CONSUMER_LAG.remove(topic, str(partition))
        self._reported = now
