"""The Redis stores' batched writes (notify_core/redis/write_behind.py), against real Redis:
queued while a batch is open, read back until sent, sent in order, a refused write
costs only itself, an unreachable Redis loses nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from escalation.engine import EscalationEngine
from escalation.policy import EscalationState, Policy
from escalation.scheduler import TimerScheduler
from escalation.store import RedisEscalationStore
from notify_core.redis.factory import connect_sync
from notify_core.redis.write_behind import ABSENT, WriteBehind
from notify_core.state.incidents import IncidentState, RedisIncidentStore
from notify_core.state.timeline import RedisTimeline
from tests import redis_cluster


@pytest_asyncio.fixture
async def prefix(redis_client: Redis) -> AsyncIterator[str]:
    name = f"testwb-{uuid.uuid4().hex[:8]}:"
    yield name
    async for key in redis_client.scan_iter(match=f"{name}*"):
        await redis_client.delete(key)


def _refused() -> float:
    return REGISTRY.get_sample_value("notify_state_write_errors_total") or 0.0


async def test_writes_wait_for_the_flush_and_read_back_meanwhile(redis_client, prefix):
    writes = WriteBehind(redis_client)
    incidents = RedisIncidentStore(redis_client, prefix, writes)
    timeline = RedisTimeline(redis_client, prefix, writes)
    await incidents.put("t", "I0", IncidentState("s0", "minor", "open"))  # no batch: sent now
    writes.open()
    await incidents.put("t", "I1", IncidentState("s1", "critical", "open"))
    await incidents.put("t", "I1", IncidentState("s1", "critical", "acknowledged"))
    await incidents.put("t", "I0", IncidentState("s0", "minor", "resolved"))
    await timeline.add("t", "I1", "raised", severity="critical")
    await timeline.add("t", "I1", "acknowledged", by="op1")
    assert await redis_client.exists(f"{prefix}incident:{{t}}:I1") == 0  # not sent yet
    assert (await redis_client.hgetall(f"{prefix}incident:{{t}}:I0"))[b"status"] == b"open"
    # ...but every read of this process sees the last value written
    assert await incidents.get("t", "I1") == IncidentState("s1", "critical", "acknowledged")
    many = await incidents.get_many([("t", "I0"), ("t", "I1"), ("t", "I9")])
    assert many == {
        ("t", "I0"): IncidentState("s0", "minor", "resolved"),
        ("t", "I1"): IncidentState("s1", "critical", "acknowledged"),
        ("t", "I9"): None,
    }
    writes.close()
    await writes.flush()
    assert writes.queued == 0 and writes.pending(f"{prefix}incident:{{t}}:I1") is ABSENT
    assert await redis_client.hgetall(f"{prefix}incident:{{t}}:I1") == {
        b"site_id": b"s1",
        b"severity": b"critical",
        b"status": b"acknowledged",
        b"resolved_at_ms": b"",
        b"title": b"",
        b"opened_at_ms": b"",
        b"acknowledged_by": b"",
        b"last_event_id": b"",
        b"assignee": b"",
        b"snoozed_until_ms": b"",
        b"acknowledged_at_ms": b"",
    }
    assert (await redis_client.hgetall(f"{prefix}incident:{{t}}:I0"))[b"status"] == b"resolved"
    # the tenant's indexes: I0 moved from the active set to the resolved one
    assert await redis_client.zrange(f"{prefix}incidents:{{t}}:active", 0, -1) == [b"I1"]
    assert await redis_client.zrange(f"{prefix}incidents:{{t}}:resolved", 0, -1) == [b"I0"]
    assert 0 < await redis_client.ttl(f"{prefix}incident:{{t}}:I1")
    assert [e["kind"] for e in await timeline.get("t", "I1")] == ["raised", "acknowledged"]
    assert 0 < await redis_client.ttl(f"{prefix}timeline:{{t}}:I1")


async def test_a_write_redis_refuses_is_counted_and_the_rest_still_applied(redis_client, prefix):
    writes = WriteBehind(redis_client)
    incidents = RedisIncidentStore(redis_client, prefix, writes)
    timeline = RedisTimeline(redis_client, prefix, writes)
    await redis_client.set(f"{prefix}incident:{{t}}:BAD", "not a hash")  # WRONGTYPE for HSET
    before = _refused()
    writes.open()
    await incidents.put("t", "A", IncidentState("s1", "major", "open"))
    await incidents.put("t", "BAD", IncidentState("s1", "major", "open"))
    await timeline.add("t", "A", "raised")
    await incidents.put("t", "B", IncidentState("s2", "minor", "open"))
    writes.close()
    await writes.flush()  # does not raise: one bad key must not hold the partition
    assert _refused() == before + 1
    assert await redis_client.get(f"{prefix}incident:{{t}}:BAD") == b"not a hash"
    assert (await redis_client.hgetall(f"{prefix}incident:{{t}}:A"))[b"severity"] == b"major"
    assert (await redis_client.hgetall(f"{prefix}incident:{{t}}:B"))[b"site_id"] == b"s2"
    assert [e["kind"] for e in await timeline.get("t", "A")] == ["raised"]
    assert writes.queued == 0


async def test_writes_are_kept_while_redis_cannot_be_reached(prefix):
    down = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    writes = WriteBehind(down)
    incidents = RedisIncidentStore(down, prefix, writes)
    writes.open()
    await incidents.put("t", "I1", IncidentState("s1", "critical", "open"))
    for _ in range(2):  # the handler retries the flush until Redis is back
        with pytest.raises(RedisConnectionError):
            await writes.flush()
        assert writes.queued == 2  # the hash and the tenant index
        assert await incidents.get("t", "I1") == IncidentState("s1", "critical", "open")
    await down.aclose()


def _engine(
    redis: Redis,
    prefix: str,
    writes: WriteBehind,
    scheduler: TimerScheduler,
    ack_timeout: float | None = None,
) -> EscalationEngine:
    """An engine on Redis stores sharing `writes`: one level after 300 s, at t=1000."""
    policy = Policy.model_validate(
        {
            "name": "p",
            "levels": [{"wait": 300, "targets": [{"oncall": True}]}],
            "ack_timeout": ack_timeout,
        }
    )

    async def publish(event: dict[str, Any], key: str | None) -> str | None:
        return None

    return EscalationEngine(
        lambda: [policy],
        RedisEscalationStore(redis, prefix, writes),
        RedisTimeline(redis, prefix, writes),
        publish,
        scheduler,
        clock=lambda: 1000.0,
    )


async def test_an_acknowledge_in_the_same_batch_as_its_alert_sees_the_escalation(
    redis_client, prefix
):
    """The engine writes escalation state and timeline through the batch's queue; an
    acknowledge later in the batch reads the state the alert wrote, not Redis' none."""
    writes = WriteBehind(redis_client)
    scheduler = TimerScheduler(None, prefix)
    await scheduler.start()
    engine = _engine(redis_client, prefix, writes, scheduler, ack_timeout=600)
    writes.open()
    await engine.on_alert("t", "I1", "s1", "critical", "Mains failure")
    await engine.on_action("t", "I1", "acknowledged", "op1")
    assert await redis_client.exists(f"{prefix}esc:{{t}}:I1") == 0
    writes.close()
    await writes.flush()
    state = await engine.store.get("t", "I1")
    assert isinstance(state, EscalationState)
    assert (state.status, state.acked_at, state.policy) == ("acknowledged", 1000.0, "p")
    kinds = [e["kind"] for e in await engine.timeline.get("t", "I1")]
    assert kinds == ["raised", "escalation_started", "acknowledged"]
    await scheduler.drain()  # timer writes run on the job-store thread
    job = scheduler.scheduler.get_job("esc:t:I1")
    assert job is not None and job.next_run_time.timestamp() == 1600.0  # the ack timeout
    await scheduler.stop()


async def test_kpi_snapshots_in_redis_keep_the_latest_value_per_kpi(redis_client, prefix):
    """A site's snapshot (sent to a dashboard when it subscribes) merges the samples of a
    batch, latest value per KPI, numbers exactly as published; written when the batch
    ends (a run's flush of state writes mid-batch leaves them merging)."""
    from notify_core.state.snapshots import RedisSnapshots

    writes = WriteBehind(redis_client)
    snapshots = RedisSnapshots(redis_client, prefix, writes)

    def update(n: int, site: str, **kpis: float) -> dict[str, Any]:
        return {
            "id": f"1-{n}",
            "type": "kpi_update",
            "tenant_id": "t",
            "timestamp": f"2026-11-25T10:00:0{n}Z",
            "site_id": site,
            "kpi_data": kpis,
        }

    await snapshots.update_many([update(1, "s1", rssi_dbm=-65.25, temp_c=30.1)])  # now
    assert (await snapshots.get("t", ["s1"]))["s1"]["kpi_data"] == {
        "rssi_dbm": -65.25,
        "temp_c": 30.1,
    }
    writes.open()
    await snapshots.update_many([update(2, "s1", temp_c=0.1), update(3, "s2", avail_pct=100)])
    await writes.flush()  # the next run's history append flushes the state writes...
    assert (await snapshots.get("t", ["s1"]))["s1"]["kpi_data"]["temp_c"] == 30.1  # ...not these
    await snapshots.update_many([update(4, "s1", temp_c=47)])
    writes.close()
    await writes.flush()  # the batch ends: merged, one write per site
    got = await snapshots.get("t", ["s1", "s2", "s3"])
    assert got == {
        "s1": {
            "kpi_data": {"rssi_dbm": -65.25, "temp_c": 47},
            "id": "1-4",
            "timestamp": "2026-11-25T10:00:04Z",
        },
        "s2": {"kpi_data": {"avail_pct": 100}, "id": "1-3", "timestamp": "2026-11-25T10:00:03Z"},
    }


async def test_a_write_that_cannot_be_encoded_is_counted_and_later_writes_still_go(
    redis_client, prefix
):
    """A bug (a value that is not text) must not wedge the queue: its round is dropped,
    logged and counted, and the writes after it are sent."""
    from notify_core.redis.write_behind import HashWrite

    writes = WriteBehind(redis_client)
    incidents = RedisIncidentStore(redis_client, prefix, writes)
    before = _refused()
    writes.open()
    await writes.write(HashWrite(f"{prefix}broken", {"field": object()}, 60))  # type: ignore[dict-item]
    await writes.flush()  # does not raise
    assert _refused() == before + 1 and writes.queued == 0
    await incidents.put("t", "I1", IncidentState("s1", "critical", "open"))
    await writes.flush()
    writes.close()
    assert (await redis_client.hgetall(f"{prefix}incident:{{t}}:I1"))[b"status"] == b"open"


async def test_a_batchs_timers_are_written_after_its_state_and_kept_while_redis_is_away(
    redis_url, redis_client, prefix
):
    """While a batch holds them, the timers alerts and actions set are not in the job
    store (a leader elsewhere must not run a job whose escalation state is not written
    yet); released, the latest per incident is written: a resolved incident's timer is
    gone, an open one's is at its first level. If the job store cannot be reached, the
    release raises and keeps them for the handler's retry."""
    writes = WriteBehind(redis_client)
    scheduler = TimerScheduler(redis_cluster.sync_client(redis_url), prefix)
    await scheduler.start()
    engine = _engine(redis_client, prefix, writes, scheduler)
    jobs_key = f"{prefix}{{apscheduler}}:jobs"
    try:
        await scheduler.ensure("t", "I0", 5000.0)  # from before the batch
        engine.hold_timers()
        writes.open()
        await engine.on_alert("t", "I1", "s1", "critical", "Mains failure")
        await engine.on_alert("t", "I2", "s2", "critical", "Door open")
        await engine.on_action("t", "I2", "resolved", "op1")
        await engine.on_alert("t", "I0", "s3", "critical", "Fuel low")
        assert await redis_client.hkeys(jobs_key) == [b"esc:t:I0"]
        writes.close()
        await writes.flush()

        real = scheduler._store.redis
        scheduler._store.redis = connect_sync("redis://127.0.0.1:1/0", timeout_s=0.2)
        with pytest.raises(RedisConnectionError):
            await engine.release_timers()
        scheduler._store.redis = real
        assert await redis_client.hkeys(jobs_key) == [b"esc:t:I0"]

        await engine.release_timers()  # the handler's retry
        assert sorted(await redis_client.hkeys(jobs_key)) == [b"esc:t:I0", b"esc:t:I1"]
        for incident in ("I0", "I1"):
            job = scheduler.scheduler.get_job(f"esc:t:{incident}")
            assert job is not None and job.next_run_time.timestamp() == 1300.0
        await engine.release_timers()  # nothing held: nothing changes
        assert await redis_client.hlen(jobs_key) == 2
    finally:
        await scheduler.stop()
