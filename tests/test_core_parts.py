"""Small shared parts: routing, the token bucket, metrics counting, bounded stores, the
one backoff, shutdown, the corker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from notify_core.state.incidents import MemoryIncidentStore
from notify_core.wire.rooms import rooms_for
from sio_server.admission.ratelimit import TokenBucket


def test_routing_never_leaves_the_tenant():
    assert rooms_for({"type": "kpi_update", "tenant_id": "t", "site_id": "s"}) == ["site:t:s"]
    assert rooms_for({"type": "incident_alert", "tenant_id": "t", "site_id": "s"}) == [
        "scope:t:*",
        "scope:t:s",
    ]
    assert rooms_for({"type": "system_notification", "tenant_id": "t"}) == ["tenant:t"]
    assert rooms_for({"type": "incident_update", "tenant_id": "t"}) == ["scope:t:*"]
    for event in (
        {"type": "site_status", "tenant_id": "t", "site_id": "x"},
        {"type": "escalation", "tenant_id": "t", "target_users": ["u"]},
    ):
        assert all(room.split(":")[1] == "t" for room in rooms_for(event))


def test_token_bucket_with_passed_clock():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert bucket.take() and not bucket.take()


def test_observe_many_counts_exactly_as_observing_one_by_one():
    """The pipeline's batched latency histogram relies on prometheus_client internals;
    an upgrade that changes them must fail here, not skew the dashboards."""
    from prometheus_client import CollectorRegistry, Histogram

    from notify_core.obs.prometheus_adapter import observe_many

    values = [0.0, 0.001, 0.0011, 0.02, 0.025, 0.7, 2.5, 9.99, 10.0, 11.0, 1e9, 0.003]
    one, many = CollectorRegistry(), CollectorRegistry()
    buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    by_one = Histogram("lat", "x", buckets=buckets, registry=one)
    by_many = Histogram("lat", "x", buckets=buckets, registry=many)
    for value in values:
        by_one.observe(value)
    observe_many(by_many, values[:5])
    observe_many(by_many, [])
    observe_many(by_many, values[5:])

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): s.value
            for metric in registry.collect()
            for s in metric.samples
            if not s.name.endswith("_created")
        }

    assert samples(many) == samples(one)
    assert samples(one)[("lat_bucket", "0.001")] == 2  # a value on a bound counts in it


async def test_the_embedded_engines_per_incident_stores_are_bounded():
    """A daemon on the embedded engine sees a new incident per alert for as long as it
    runs: what it keeps per incident is bounded, the most recently written kept."""
    from escalation.policy import EscalationState
    from escalation.store import MemoryEscalationStore
    from notify_core.state.incidents import IncidentState
    from notify_core.state.timeline import MemoryTimeline

    escalations, incidents, timeline = (
        MemoryEscalationStore(maxsize=3),
        MemoryIncidentStore(maxsize=3),
        MemoryTimeline(max_incidents=3),
    )
    for n in range(5):
        await escalations.put("t", f"I{n}", EscalationState("p", "open", float(n)))
        await incidents.put("t", f"I{n}", IncidentState("s", "critical", "open"))
        await timeline.add("t", f"I{n}", "raised")
        if n == 2:  # written again: now the most recent
            await escalations.put("t", "I0", EscalationState("p", "acknowledged", 0.0))
    kept = [n for n in range(5) if await escalations.get("t", f"I{n}") is not None]
    assert kept == [0, 3, 4]
    assert [n for n in range(5) if await incidents.get("t", f"I{n}") is not None] == [2, 3, 4]
    assert [n for n in range(5) if await timeline.get("t", f"I{n}")] == [2, 3, 4]
    assert await escalations.claim("t", "I4", "step-1") is True
    assert await escalations.claim("t", "I1", "step-1") is False  # forgotten: nothing fires


def test_the_one_backoff_doubles_from_its_first_wait_to_its_cap_and_starts_over():
    import logging

    from notify_core.retry import Backoff

    b = Backoff("test", logging.getLogger("test"), first_s=0.1, cap_s=1.0)
    waits = []
    for _ in range(6):
        b.attempts += 1
        waits.append(round(b.next_wait(), 3))
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    b.ok()
    b.attempts += 1
    assert b.next_wait() == 0.1


async def test_until_done_retries_only_what_it_is_told_to():
    import logging

    from notify_core.retry import until_done

    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "stored"

    log = logging.getLogger("test")
    assert await until_done("step", flaky, (ConnectionError,), log, 0.001, 0.01) == "stored"
    assert len(calls) == 3

    async def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await until_done("step", broken, (ConnectionError,), log, 0.001, 0.01)


async def test_shutdown_cancels_what_is_left_and_gives_up_on_a_task_that_ignores_it():
    from towerco_notify.cli import cancel_leftovers

    release = asyncio.Event()

    async def obedient() -> None:
        await asyncio.sleep(3600)

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # swallows its cancellation, as a buggy library task may

    a, b = asyncio.create_task(obedient()), asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stuck = await cancel_leftovers([a, b], 0.2)
    assert a.cancelled() and stuck == [b]
    release.set()
    await b
    assert await cancel_leftovers([a, b], 0.2) == []


async def test_the_corker_writes_once_per_socket_in_order_and_batches_under_load():
    from sio_server.socketio.corking import Corker

    class Sink:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return False

    a, b = Sink(), Sink()
    sinks: dict[str, Any] = {"a": a, "b": b, "gone": None}  # "gone": closed meanwhile
    corker: Corker[str] = Corker(sinks.get, coalesce_s=0.0)
    for key, data in [("a", b"1"), ("b", b"x"), ("a", b"2"), ("gone", b"?"), ("a", b"3")]:
        corker.cork(key, data)
    await asyncio.sleep(0)  # the end of this loop iteration
    await asyncio.sleep(0)
    assert a.writes == [b"123"] and b.writes == [b"x"]
    # events 10 ms apart: two writes without coalescing ...
    corker.cork("a", b"4")
    await asyncio.sleep(0.01)
    corker.cork("a", b"5")
    await asyncio.sleep(0.01)
    assert a.writes[1:] == [b"4", b"5"]
    # ... one, in order, within a 200 ms coalescing window after the last flush
    batched: Corker[str] = Corker(sinks.get, coalesce_s=0.2)
    batched.cork("b", b"y")
    await asyncio.sleep(0.01)  # flushed: the first write after a quiet spell is not held
    batched.cork("b", b"z")
    await asyncio.sleep(0.01)
    batched.cork("b", b"w")
    batched.flush()  # as the delivery gate and shutdown do
    assert b.writes[1:] == [b"y", b"zw"]
