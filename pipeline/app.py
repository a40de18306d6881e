"""The Faust app: one agent per input topic, each feeding the MessageHandler.

Built by a factory (no module-level app), started and stopped by the composition
root. Offsets advance only when the agent moves to the next event, i.e. after the
notification is stored: at-least-once from Kafka to history.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from typing import Any

import faust
from faust.streams import current_event

from notify_core.in_force import View
from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog
from notify_core.redis.replication import ReplicaConfirm
from notify_core.redis.write_behind import WriteBehind
from notify_core.settings import Settings
from notify_core.state.incidents import IncidentStore, ReadAhead
from notify_core.suppression.store import SuppressionStore
from notify_core.thresholds.rules import RuleSet
from notify_core.wire.events import INPUT_TOPICS, TOPIC_DEADLETTER, TOPIC_KPIS
from pipeline.handlers import MessageHandler
from pipeline.kafka.batches import BatchRouting, Incoming
from pipeline.kafka.lag import ConsumerLag
from pipeline.kafka.tuning import faust_settings, tuned_transport
from pipeline.kpi_alerts import KpiAlerts
from pipeline.listener import IncidentListener
from pipeline.publisher import Publisher

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        bootstrap: list[str],
        publisher: Publisher,
        incidents: IncidentStore,
        rules: View[RuleSet],
        tansu: bool = False,
        listener: IncidentListener | None = None,
        writes: WriteBehind | None = None,
        suppression: SuppressionStore | None = None,
        audit: AuditLog | None = None,
        replicas: ReplicaConfirm | None = None,
    ) -> None:
        self.app = faust.App(
            settings.app_id,
            broker=[f"kafka://{hostport}" for hostport in bootstrap],
            **faust_settings(settings, tansu),
        )
        self._routing = BatchRouting()
        transport_cls = tuned_transport(settings.fetch_wait_ms, self._routing)
        self.app.transport = transport_cls(self.app.conf.broker_consumer, self.app)
        self._deadletter_topic = self.app.topic(
            TOPIC_DEADLETTER, value_serializer="raw", partitions=settings.topic_partitions
        )
        # values are plain dicts, JSON on the changelog (Faust's default codec)
        self.alert_states = self.app.Table(
            "kpi-alert-state", default=None, partitions=settings.topic_partitions
        )
        # one object for both, so the threshold engine's incident writes are seen by the
        # action messages of the same batch, which read ahead (pipeline/handlers.py)
        shared = ReadAhead(incidents)
        self.kpi_alerts = KpiAlerts(
            rules,
            _TableStore(self.alert_states),
            publisher,
            shared,
            listener=listener,
            suppression=suppression,
        )
        self.handler = MessageHandler(
            publisher,
            shared,
            self._send_deadletter,
            self.kpi_alerts,
            listener,
            coalesce_kpis=settings.kpi_coalesce,
            writes=writes,
            suppression=suppression,
            audit=audit,
            replicas=replicas,
            snooze_minute_s=settings.snooze_minute_s,
        )
        self.app.timer(interval=5.0, name="stale-kpi-sweep")(self._sweep)
        self.lag = ConsumerLag()
        self.app.timer(interval=5.0, name="consumer-lag")(self._sample_lag)
        self.joined = False
        # the agents subscribe the topics; with batches on, the records skip their streams
        for name in INPUT_TOPICS:
            self._add_agent(name, settings.topic_partitions)
        if settings.pipeline_batch:
            self._routing.sink = self._handle_batch
            self._routing.topics = frozenset(INPUT_TOPICS)
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    def _add_agent(self, name: str, partitions: int) -> None:
        topic = self.app.topic(
            name, value_serializer="raw", key_serializer="raw", partitions=partitions
        )
        handler, lag = self.handler, self.lag

        async def consume(stream: Any) -> None:
            async for event in stream.events():
                msg = event.message
                ts = int(msg.timestamp * 1000) if msg.timestamp else None
                await handler.handle(msg.topic, msg.value, ts, msg.partition, msg.offset)
                lag.handled(msg.topic, msg.partition, msg.offset)

        consume.__name__ = consume.__qualname__ = "agent_" + name.replace(".", "_")
        self.app.agent(topic, name=f"{name}-agent")(consume)

    async def _handle_batch(self, messages: list[Incoming]) -> None:
        """One fetch worth of messages, in partition order; acked once this returns.

        The cyclic garbage collector waits until the batch is done: a batch keeps about
        ten containers per message alive until then, so at a 5 000-message fetch nearly
        every batch set off a young-generation collection walking all of it (11-12 % of
        the KPI pipeline's time). Afterwards they are freed by reference counting, and
        the collection that follows has little to walk."""
        metrics.PIPELINE_BATCH_MESSAGES.observe(len(messages))
        collecting = gc.isenabled()
        gc.disable()
        try:
            await self._handle(messages)
        finally:
            if collecting:
                gc.enable()

    async def _handle(self, messages: list[Incoming]) -> None:
        with metrics.PIPELINE_BATCH_SECONDS.time():
            await self.handler.handle_batch(messages)
        self.lag.handled_batch(messages)

    async def _sweep(self, *_app: Any) -> None:
        try:
            await self.kpi_alerts.sweep_stale()
        except Exception:
            log.exception("stale KPI sweep failed")

    async def _sample_lag(self, *_app: Any) -> None:
        try:
            consumer = self.app.consumer
            self.lag.sample(consumer.assignment(), consumer.highwater)
        except Exception:
            log.exception("sampling the consumer lag failed")

    async def _send_deadletter(self, record: bytes) -> None:
        fut = await self._deadletter_topic.send(value=record)
        await fut

    async def _on_assigned(self, sender: Any, assigned: Any, **kwargs: Any) -> None:
        self.joined = True
        kpis = frozenset(tp.partition for tp in assigned if tp.topic == TOPIC_KPIS)
        self.kpi_alerts.partitions_assigned(kpis)
        log.info("consumer group joined; %d partition(s) assigned", len(assigned))

    async def _on_revoked(self, sender: Any, revoked: Any, **kwargs: Any) -> None:
        self.kpi_alerts.partitions_revoked()
        log.info("partitions revoked (rebalance)")

    def ready(self) -> bool:
        """Consuming: group joined, no rebalance under way, table state recovered."""
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]
        return (
            self.joined
            and not self.app.rebalancing
            and not self.app.in_recovery
            and recovery.completed.is_set()
        )

    async def start(self) -> None:
        await self.app.start()

    async def stop(self) -> None:
        await self.app.stop()


class _TableStore:
    """The Faust table as a StateStore (writes go to its changelog)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._table.get(key)
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any], partition: int | None = None) -> None:
        if partition is None or current_event() is not None:
            self._table[key] = value  # inside a Faust stream: it knows the partition
        else:
            # batch path: the changelog partition is the source message's, as in a stream
            self._table.send_changelog(partition, key, value)
            self._table.data[key] = value

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter(list(self._table.items()))
