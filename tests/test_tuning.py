"""The latency and CPU tuning is really in effect (fails if an upgrade silently drops it)."""

from __future__ import annotations

import aiohttp
import pytest
from faust.transport.consumer import Consumer as FaustConsumer

from notify_core.history.store import MemoryHistory
from notify_core.obs.readiness import Readiness
from notify_core.wire.events import INPUT_TOPICS
from sio_server.admission.auth import Authenticator
from sio_server.app import SocketServer
from sio_server.options import TransportOptions
from tests.helpers import TEST_SECRET


async def test_faust_consumer_uses_our_fetch_wait(daemon):
    consumer_thread = daemon.pipeline.app.consumer._thread
    aiokafka_consumer = consumer_thread._ensure_consumer()
    wanted = daemon.settings.fetch_wait_ms
    assert aiokafka_consumer._fetch_max_wait_ms == wanted
    # the fetcher is what really waits: it must have been built with our value
    assert aiokafka_consumer._fetcher._fetch_max_wait_ms == wanted


async def test_faust_group_and_recovery_timings(daemon):
    conf = daemon.pipeline.app.conf
    assert conf.broker_session_timeout == daemon.settings.session_timeout_s
    assert conf.broker_heartbeat_interval < conf.broker_session_timeout
    assert conf.stream_recovery_delay < 0.5
    assert conf.web_enabled is False
    assert conf.topic_partitions == daemon.settings.topic_partitions


async def _negotiated_compress(port: int) -> int:
    url = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=15) as ws:
        await ws.receive(timeout=5)  # engine.io OPEN packet
        return ws.compress


@pytest.mark.parametrize("enabled, expected", [(False, 0), (True, 15)])
async def test_websocket_compression_is_a_setting(enabled, expected):
    server = SocketServer(
        Authenticator(TEST_SECRET),
        MemoryHistory(),
        Readiness(),
        "127.0.0.1",
        0,
        [],
        TransportOptions(ws_compression=enabled),
    )
    await server.start()
    try:
        assert server.port
        assert await _negotiated_compress(server.port) == expected
    finally:
        await server.stop()


async def test_daemon_websockets_are_uncompressed_by_default(daemon):
    assert daemon.settings.ws_compression is False
    assert await _negotiated_compress(daemon.http_port) == 0


async def test_tansu_compat_writes_single_record_batches(daemon):
    # tansu's end offset is the last batch's base offset + 1: batches of one keep it true
    assert daemon.pipeline.app.conf.producer_max_batch_size == 1


def test_uvloop_is_the_default_loop_and_can_be_turned_off():
    import uvloop

    from notify_core.settings import load_settings
    from towerco_notify.cli import _loop_factory

    assert load_settings().uvloop is True
    assert _loop_factory(True) is uvloop.new_event_loop
    assert _loop_factory(False) is None


async def test_pipeline_consumes_in_batches_through_fausts_own_consumer(daemon):
    # on by default: the fetched records skip Faust's per-event streams
    assert daemon.settings.pipeline_batch is True
    consumer = daemon.pipeline.app.consumer
    routing = daemon.pipeline._routing
    assert routing.sink is not None
    assert routing.topics == frozenset(INPUT_TOPICS)
    # what pipeline.kafka.batches relies on in Faust's consumer (fails if an upgrade renames it)
    for name in (
        "_read_offset",
        "_add_gap",
        "_commit_every",
        "suspend_flow",
        "_n_acked",
        "_wait_next_records",
        "_buffered_partitions",
        "_committed_offset",
        "_acked_index",
        "_acked",
        "_waiting_for_ack",
        "flow_active",
        "perform_seek",
        "highwater",
        "_to_message",
    ):
        assert hasattr(consumer, name), name
    # Faust's stall watchdog reads this; the batch loop records it as streams would
    assert isinstance(daemon.pipeline.app.monitor.stream_inbound_time, dict)
    assert type(consumer)._drain_messages is not FaustConsumer._drain_messages


def test_gc_tuning_freezes_start_up_objects_and_applies_the_threshold():
    """NOTIFY_GC_FREEZE / NOTIFY_GC_THRESHOLD are what the daemon applies after start."""
    import gc

    from notify_core.settings import load_settings
    from towerco_notify.runtime import tune_gc

    settings = load_settings(gc_threshold=123_456)
    before = gc.get_threshold()
    try:
        tune_gc(settings.gc_threshold)
        assert gc.get_threshold() == (123_456, 50, 100)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert load_settings().gc_threshold == 50_000  # the default


async def test_the_collector_waits_until_a_pipeline_batch_is_done(daemon):
    """Collections are held while a batch is handled (it keeps its messages' objects
    alive until then) and back on afterwards, also when the handler fails."""
    import gc

    pipeline = daemon.pipeline
    seen: list[bool] = []

    class Handler:
        async def handle_batch(self, batch: list) -> None:
            seen.append(gc.isenabled())
            if len(seen) == 2:
                raise RuntimeError("a bug in the handler")

    message = ("t", b"", 1000, 0, 0)
    real, pipeline.handler = pipeline.handler, Handler()
    try:
        assert gc.isenabled()
        await pipeline._handle_batch([message])
        with pytest.raises(RuntimeError):
            await pipeline._handle_batch([message])
    finally:
        pipeline.handler = real
    assert seen == [False, False]
    assert gc.isenabled()


async def test_offsets_are_committed_once_the_batch_is_handled(daemon, producer, broker):
    """The batch consumer acks what it handled: the group's committed offset moves past
    it (else every restart would read the topics again from the last commit)."""
    import orjson
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from notify_core.wire.events import TOPIC_ALERTS, TOPIC_KPIS
    from tests.conftest import eventually
    from tests.helpers import alert, envelope, new_tenant

    tenant = new_tenant()
    sent = [
        await producer.send_and_wait(
            TOPIC_KPIS, orjson.dumps(envelope(tenant, {"temp_c": 20 + n}, "a")), partition=2
        )
        for n in range(3)
    ]
    sent.append(
        await producer.send_and_wait(TOPIC_ALERTS, orjson.dumps(alert(tenant, "C-1")), partition=2)
    )

    async def stored() -> bool:
        return len(await daemon.stores.history.read_after(tenant, None, 10)) == 4

    await eventually(stored, 15)
    watcher = AIOKafkaConsumer(bootstrap_servers=broker, group_id=daemon.settings.app_id)
    await watcher.start()
    try:
        for md in (sent[2], sent[3]):
            tp = TopicPartition(md.topic, md.partition)

            async def committed(tp: TopicPartition = tp, offset: int = md.offset) -> bool:
                return (await watcher.committed(tp) or 0) > offset

            await eventually(committed, 15, interval=0.2)
    finally:
        await watcher.stop()


async def test_enqueue_puts_as_engineios_send_would_and_leaves_it_the_rest():
    """`socket_queue.enqueue` stands in for engine.io's `AsyncSocket.send` on the fan-out
    path: same queue, same order; a socket past its ping timeout is left to engine.io."""
    import time

    import engineio
    from engineio import packet
    from engineio.async_socket import AsyncSocket

    from sio_server.socketio import websocket
    from sio_server.socketio.socket_queue import SocketQueue, enqueue

    eio = engineio.AsyncServer(async_mode="aiohttp")
    websocket.install(eio, compress=False)
    socket = AsyncSocket(eio, "sid-1")
    assert type(socket.queue) is SocketQueue
    first, second = packet.Packet(packet.MESSAGE, "2[1]"), packet.Packet(packet.MESSAGE, "2[2]")
    assert enqueue(socket, first, time.time())
    await socket.send(second)  # engine.io's own path, same queue behind it
    assert [socket.queue.get_nowait(), socket.queue.get_nowait()] == [first, second]
    socket.last_ping = time.time() - eio.ping_timeout - 1  # the client stopped answering
    assert not enqueue(socket, first, time.time())
    await socket.send(first)
    assert socket.closed  # engine.io closed it, as it decides
    assert not enqueue(socket, first, time.time())
