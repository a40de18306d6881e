"""Every Kafka/Faust knob we turn for latency and start-up, in one place.

Measured on tansu: Faust hard-codes `fetch_max_wait_ms=1500` in its aiokafka consumer
(~1 s median latency at low rates); 20 ms gives p99 ~25 ms. tansu answers a group
join after `session_timeout/2`, so Faust's default 60 s session means a 30 s start.
Faust also sleeps `stream_recovery_delay` (3 s) after each rebalance. tansu reports a
partition's end offset wrongly after multi-record batches (see `faust_settings`).

The fetch wait can only be changed by subclassing the consumer thread; that touches
faust-streaming internals (`AIOKafkaConsumerThread._create_worker_consumer`) and
aiokafka's (`AIOKafkaConsumer._fetch_max_wait_ms`), hence the tight pins in
pyproject.toml and tests/test_tuning.py, which fails if an upgrade breaks either.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from notify_core.settings import Settings
from pipeline.kafka.batches import BatchRouting, drain_in_batches


def faust_settings(settings: Settings, tansu: bool = False) -> dict[str, Any]:
    session = settings.session_timeout_s
    quirks: dict[str, Any] = {}
    if tansu or settings.tansu_compat:
        # tansu answers ListOffsets(latest) with the last batch's base offset + 1, so a
        # multi-record batch hides its tail from Faust's changelog recovery. One record
        # per batch keeps the end offset true (only changelog/dead-letter writes use it).
        quirks["producer_max_batch_size"] = 1
    return {
        **quirks,
        "web_enabled": False,  # aiohttp in sio_server serves HTTP
        "store": "memory://",
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "topic_allow_declare": True,
        "broker_session_timeout": session,
        "broker_rebalance_timeout": session,
        "broker_heartbeat_interval": max(0.2, session / 6),
        "broker_request_timeout": max(30.0, session * 2),
        "broker_commit_interval": 1.0,
        "stream_recovery_delay": 0.05,
        "consumer_auto_offset_reset": settings.kafka_offset_reset,
        "producer_acks": -1 if settings.kafka_acks == "all" else int(settings.kafka_acks),
        "producer_linger": 0.002,
        "stream_wait_empty": False,
        "broker_max_poll_records": 5000,
        "broker_commit_every": 1_000_000,
    }


def tuned_transport(
    fetch_wait_ms: int, routing: BatchRouting | None = None
) -> type[faust_aiokafka.Transport]:
    """A Faust aiokafka Transport whose worker consumer waits at most `fetch_wait_ms`,
    and hands the topics of `routing` over in batches (`pipeline.kafka.batches`)."""

    class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_wait_ms
            return consumer

    class TunedConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

        async def _drain_messages(self, fetcher: Any) -> None:
            if routing is not None and routing.sink is not None:
                await drain_in_batches(self, fetcher, routing)
            else:
                await super()._drain_messages(fetcher)

    class TunedTransport(faust_aiokafka.Transport):
        Consumer = TunedConsumer

    return TunedTransport
