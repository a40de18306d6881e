"""Escalation through the real daemon (tansu + Faust + Redis job store + Node clients)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac

import aiohttp
import pytest

from escalation.config import parse_policies
from escalation.policy import EscalationState, Policy, advance
from notify_core.config_yaml import ConfigInvalid
from notify_core.wire.events import TOPIC_ALERTS
from tests import redis_cluster
from tests.conftest import eventually
from tests.helpers import TEST_SECRET, NodeClient, alert, new_tenant


async def _timeline(base_url: str, tok: str, incident: str) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}/api/v1/incidents/{incident}/timeline",
            headers={"Authorization": f"Bearer {tok}"},
        ) as resp,
    ):
        return resp.status, await resp.json()


def escalations(client: NodeClient) -> list[tuple[int, int]]:
    return [(e["cycle"], e["level"]) for e in client.events("escalation")]


async def test_unacknowledged_incident_escalates_level_by_level_then_stops(
    base_url, produce, token
):
    tenant = new_tenant()
    oncall = await NodeClient.start(base_url, token(tenant, "oc", ["oncall"]), ["websocket"])
    boss = await NodeClient.start(base_url, token(tenant, "esc-boss", ["operator"]), ["polling"])
    try:
        await oncall.connected()
        await boss.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "E-1", "critical", site="esc-site"))
        first = await oncall.wait_for(lambda m: m.get("name") == "escalation", 10)
        assert first["data"]["level"] == 1 and first["data"]["incident_id"] == "E-1"
        assert first["data"]["targets"] == [{"oncall": True}]
        assert first["data"]["site_id"] == "esc-site"
        await boss.wait_count(lambda m: m.get("name") == "escalation", 2, 30)
        await oncall.wait_count(lambda m: m.get("name") == "escalation", 2, 30)
        await asyncio.sleep(3.5)  # repeat: 1 -> exactly two cycles, then silence
        assert escalations(oncall) == [(1, 1), (2, 1)]
        assert escalations(boss) == [(1, 2), (2, 2)]
        status, body = await _timeline(base_url, token(tenant), "E-1")
        kinds = [e["kind"] for e in body["timeline"]]
        assert status == 200
        assert kinds == [
            "raised",
            "escalation_started",
            "notified",
            "notified",
            "notified",
            "notified",
        ]
    finally:
        await oncall.close()
        await boss.close()


async def test_acknowledgement_stops_the_chain(base_url, produce, token):
    tenant = new_tenant()
    oncall = await NodeClient.start(base_url, token(tenant, "oc", ["oncall"]), ["websocket"])
    boss = await NodeClient.start(base_url, token(tenant, "esc-boss"), ["websocket"])
    try:
        await oncall.connected()
        await boss.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "E-2", "critical", site="esc-site"))
        await oncall.wait_for(lambda m: m.get("name") == "escalation", 10)
        ack = await oncall.emit("incident_action", {"incident_id": "E-2", "action": "acknowledge"})
        assert ack["ok"] is True
        await oncall.wait_for(lambda m: m.get("name") == "incident_update", 10)
        await asyncio.sleep(4.0)  # level 2 was due 3 s after level 1
        assert escalations(boss) == [] and escalations(oncall) == [(1, 1)]
        _, body = await _timeline(base_url, token(tenant), "E-2")
        assert {"kind": "acknowledged", "by": "oc"}.items() <= body["timeline"][-1].items()
    finally:
        await oncall.close()
        await boss.close()


async def test_ack_timeout_retriggers_and_resolve_stops_everything(base_url, produce, token):
    tenant = new_tenant()
    oncall = await NodeClient.start(base_url, token(tenant, "oc", ["oncall"]), ["websocket"])
    try:
        await oncall.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "E-3", "critical", site="esc-ackto"))
        await oncall.wait_for(lambda m: m.get("name") == "escalation", 10)
        await oncall.emit("incident_action", {"incident_id": "E-3", "action": "acknowledge"})
        # acknowledged but not resolved within 1s: the chain starts again
        await oncall.wait_count(lambda m: m.get("name") == "escalation", 2, 10)
        await oncall.emit("incident_action", {"incident_id": "E-3", "action": "resolve"})
        await oncall.wait_count(lambda m: m.get("name") == "incident_update", 2, 10)
        await asyncio.sleep(2.0)
        assert len(oncall.events("escalation")) == 2
        _, body = await _timeline(base_url, token(tenant), "E-3")
        kinds = [e["kind"] for e in body["timeline"]]
        assert "retriggered" in kinds and kinds[-1] == "resolved"
    finally:
        await oncall.close()


async def test_resolved_before_the_first_level_never_escalates(base_url, produce, token):
    tenant = new_tenant()
    oncall = await NodeClient.start(base_url, token(tenant, "oc", ["oncall"]), ["websocket"])
    try:
        await oncall.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "E-4", "critical", site="esc-site"))
        await oncall.wait_for(lambda m: m.get("name") == "incident_alert", 10)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base_url}/api/v1/incidents/E-4/resolve",
                headers={"Authorization": "Bearer " + token(tenant, "fixer")},
            ) as resp,
        ):
            assert resp.status == 202
        await oncall.wait_for(lambda m: m.get("name") == "incident_update", 10)
        await asyncio.sleep(3.0)  # level 1 was due 2 s after the alert
        assert oncall.events("escalation") == []
    finally:
        await oncall.close()


async def test_signed_webhooks_retry_and_a_dead_one_delays_nothing(
    base_url, produce, token, hooks, daemon
):
    tenant = new_tenant()
    oncall = await NodeClient.start(base_url, token(tenant, "oc", ["oncall"]), ["websocket"])
    try:
        await oncall.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "E-5", "critical", site="hook-site"))
        line = await oncall.wait_for(lambda m: m.get("name") == "escalation", 5)
        assert line["data"]["level"] == 1  # on time, whatever the dead webhook does

        def of_e5() -> list[dict]:
            return [
                r
                for r in hooks.requests
                if r["path"] == "/flaky/hook" and b'"incident_id":"E-5"' in r["body"]
            ]

        for _ in range(100):
            if len(of_e5()) >= 3:
                break
            await asyncio.sleep(0.1)
        reqs = of_e5()
        assert len(reqs) == 3  # failed twice (503), then accepted
        secret = hashlib.sha256(b"towerco-webhook:" + TEST_SECRET.encode()).digest()
        for req in reqs:
            ts = req["headers"]["X-Towerco-Timestamp"]
            expected = (
                "sha256="
                + hmac.new(secret, ts.encode() + b"." + req["body"], hashlib.sha256).hexdigest()
            )
            assert req["headers"]["X-Towerco-Signature"] == expected
        body = reqs[-1]["body"]
        assert b'"incident_id":"E-5"' in body and b'"type":"escalation"' in body

        async def webhook_results() -> list[dict]:
            _, tl = await _timeline(base_url, token(tenant), "E-5")
            return [e for e in tl["timeline"] if e["kind"] == "webhook"]

        results: list[dict] = []
        for _ in range(200):
            results = await webhook_results()
            if len(results) == 2:
                break
            await asyncio.sleep(0.1)
        by_ok = {r["ok"]: r for r in results}
        assert by_ok[True]["attempts"] == 3 and by_ok[True]["status"] == 204
        # the timeline names the dead webhook by its origin only: its path may be a secret
        dead = by_ok[False]["url"]
        assert by_ok[False]["attempts"] == 4 and dead.startswith("http://127.0.0.1:")
        assert dead.count("/") == 2 and "nobody-home" not in dead
    finally:
        await oncall.close()


async def test_other_tenant_cannot_acknowledge_or_read_the_timeline(base_url, produce, token):
    victim, attacker = new_tenant(), new_tenant()
    oncall = await NodeClient.start(base_url, token(victim, "oc", ["oncall"]), ["websocket"])
    evil = await NodeClient.start(base_url, token(attacker, "x", ["admin", "oncall"]), ["polling"])
    try:
        await oncall.connected()
        await evil.connected()
        await produce(TOPIC_ALERTS, alert(victim, "E-6", "critical", site="esc-site"))
        await oncall.wait_for(lambda m: m.get("name") == "escalation", 10)
        # the attacker "acknowledges" E-6: no such incident in its own tenant, refused
        ack = await evil.emit("incident_action", {"incident_id": "E-6", "action": "acknowledge"})
        assert ack == {"ok": False, "error": "no such incident"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base_url}/api/v1/incidents/E-6/resolve",
                headers={"Authorization": "Bearer " + token(attacker, "x", ["admin"])},
            ) as resp,
        ):
            assert resp.status == 404
        await oncall.wait_count(lambda m: m.get("name") == "escalation", 2, 20)  # goes on
        assert oncall.events("incident_update") == []
        status, _ = await _timeline(base_url, token(attacker, "x", ["admin"]), "E-6")
        status_restricted, _ = await _timeline(base_url, token(victim, sites=["other"]), "E-6")
        status_ok, _ = await _timeline(base_url, token(victim), "E-6")
        assert (status, status_restricted, status_ok) == (404, 404, 200)
    finally:
        await oncall.close()
        await evil.close()


def test_invalid_policies_name_file_policy_and_field():
    text = """\
policies:
  - name: p1
    match: {severities: [urgent]}
    levels:
      - wait: -5m
        targets: [{oncall: true, user: bob}]
  - name: p1
    levels: [{targets: [{webhook: ftp://x}]}]
  - name: p3
    levels: []
    repeat: -1
"""
    with pytest.raises(ConfigInvalid) as info:
        parse_policies(text, "config/escalation.yaml")
    text_out = str(info.value)
    for needle in [
        "config/escalation.yaml:3: policy p1: match.severities.0",
        "config/escalation.yaml:5: policy p1: levels.0.wait: must not be negative",
        "policy p1: levels.0.targets.0: each target names exactly one",
        "policy p1: levels.0.targets.0.webhook",
        "config/escalation.yaml:10: policy p3: levels",
        "policy p3: repeat",
    ]:
        assert needle in text_out, f"{needle}\n{text_out}"


def test_policy_timing_is_pure():
    policy = Policy.model_validate(
        {
            "name": "p",
            "levels": [
                {"wait": 10, "targets": [{"oncall": True}]},
                {"wait": 20, "targets": [{"user": "u"}]},
            ],
            "repeat": 1,
            "ack_timeout": 100,
        }
    )
    state = EscalationState("p", "open", 1000.0)
    _, due, nxt = advance(policy, state, 1005)
    assert due == [] and nxt == 1010
    _, due, nxt = advance(policy, state, 1031)  # down for a while: both levels, once each
    assert [(s.cycle, s.level) for s in due] == [(0, 0), (0, 1)] and nxt == 1040
    state.fired |= {s.key for s in due}
    _, due, _ = advance(policy, state, 1031)
    assert due == []
    acked = EscalationState("p", "acknowledged", 1000.0, acked_at=1050.0)
    new, due, nxt = advance(policy, acked, 1100)
    assert new.status == "acknowledged" and due == [] and nxt == 1150
    new, due, _ = advance(policy, acked, 1160)
    assert [(s.cycle, s.level) for s in due] == [(0, 0)] and new.epoch == 1150
    _, due, nxt = advance(policy, EscalationState("p", "resolved", 0.0), 10**9)
    assert due == [] and nxt is None


async def test_delivery_confirmation_lands_in_the_incident_timeline(base_url, produce, token):
    tenant = new_tenant()
    client = await NodeClient.start(base_url, token(tenant, "carol"), ["polling"])
    try:
        await client.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "E-7", "critical", site="no-policy-site"))
        line = await client.wait_for(lambda m: m.get("name") == "incident_alert", 10)
        ack = await client.emit("received", {"id": line["data"]["id"]})
        assert ack["confirmed"] is True
        again = await client.emit("received", {"id": line["data"]["id"]})  # idempotent
        assert again["confirmed"] is True
        status, body = await _timeline(base_url, token(tenant), "E-7")
        confirmed = [e for e in body["timeline"] if e["kind"] == "delivery_confirmed"]
        assert status == 200 and len(confirmed) == 1
        assert confirmed[0]["user"] == "carol" and confirmed[0]["event_id"] == line["data"]["id"]
        # a user who never received it cannot confirm it
        other = await NodeClient.start(base_url, token(tenant, "dave"), ["websocket"])
        try:
            await other.connected()
            assert (await other.emit("received", {"id": line["data"]["id"]}))["confirmed"] is False
        finally:
            await other.close()
    finally:
        await client.close()


async def test_read_ahead_state_never_hides_a_resolve_from_a_later_alert_of_the_batch():
    """The pipeline reads a batch's escalation state in one call before it tells the engine
    about each alert. An incident resolved and raised again within that batch must start
    a new escalation, not be taken for the old one still running."""
    from escalation.engine import EscalationEngine
    from escalation.scheduler import TimerScheduler
    from escalation.store import MemoryEscalationStore
    from notify_core.state.timeline import MemoryTimeline

    policy = Policy.model_validate(
        {"name": "p", "levels": [{"wait": 60, "targets": [{"oncall": True}]}]}
    )

    async def publish(event: dict, key: str | None) -> str | None:
        return None

    class Stored(MemoryEscalationStore):
        """Reads return copies, as from Redis."""

        async def get(self, tenant: str, incident_id: str) -> EscalationState | None:
            return copy.deepcopy(await super().get(tenant, incident_id))

        async def get_many(self, keys: list) -> dict:
            return copy.deepcopy(await super().get_many(keys))

    timeline = MemoryTimeline()
    engine = EscalationEngine(
        lambda: [policy],
        Stored(),
        timeline,
        publish,
        TimerScheduler(None, "test:"),
    )
    await engine.on_alert("t", "I1", "s1", "critical", "Mains failure")
    # the next batch: a resolve, then the same alert again
    await engine.read_ahead([("t", "I1")])
    await engine.on_action("t", "I1", "resolved", "op1")
    await engine.on_alert("t", "I1", "s1", "critical", "Mains failure")
    engine.forget()
    kinds = [entry["kind"] for entry in await timeline.get("t", "I1")]
    assert kinds.count("escalation_started") == 2, kinds
    state = await engine.store.get("t", "I1")
    assert state is not None and state.status == "open"


async def test_redis_job_store_replaces_a_timer_and_a_burst_of_timers_all_fire(
    redis_url, redis_client
):
    """Timers are upserted in one round trip (UpsertRedisJobStore) and a burst of new ones
    is followed by one scan of the store: a moved timer keeps only its new time, a
    cancelled one never fires, and every timer of a burst fires once."""
    import time
    import uuid

    from escalation import jobs
    from escalation.scheduler import TimerScheduler

    prefix = f"testsched-{uuid.uuid4().hex[:8]}:"
    fired: list[str] = []

    class Engine:
        async def tick(self, tenant: str, incident_id: str) -> None:
            fired.append(incident_id)

    engine = Engine()
    scheduler = TimerScheduler(redis_cluster.sync_client(redis_url), prefix)
    jobs.install(engine, scheduler.deployment)
    await scheduler.start()
    try:
        now = time.time()
        scheduler.schedule("t", "moved", now + 3600)
        scheduler.schedule("t", "moved", now + 0.3)  # replaced, not added twice
        scheduler.schedule("t", "cancelled", now + 0.3)
        scheduler.cancel("t", "cancelled")
        for i in range(20):
            scheduler.schedule("t", f"burst{i}", now + 0.3)
        await scheduler.drain()  # the writes run, in order, on the job-store thread
        stored = await redis_client.hkeys(f"{prefix}{{apscheduler}}:jobs")
        assert sorted(k.decode() for k in stored) == sorted(
            ["esc:t:moved", *(f"esc:t:burst{i}" for i in range(20))]
        )
        scheduler.activate()
        await eventually(lambda: len(fired) >= 21)
        await asyncio.sleep(0.3)  # nothing more may come
        assert sorted(fired) == sorted(["moved", *(f"burst{i}" for i in range(20))])
        assert await redis_client.hlen(f"{prefix}{{apscheduler}}:jobs") == 0
    finally:
        await scheduler.stop()
        jobs.uninstall(engine, scheduler.deployment)
        await redis_client.delete(
            f"{prefix}{{apscheduler}}:jobs", f"{prefix}{{apscheduler}}:run_times"
        )


async def test_jobs_find_the_engine_of_their_own_deployment():
    """Two runtimes in one process: a job runs on the engine of the scheduler that stored it
    (its key prefix), not on whichever started last; a job stored before the prefix was an
    argument runs on the newest."""
    from escalation import jobs

    ran: list[tuple[str, str]] = []

    class Engine:
        def __init__(self, name: str) -> None:
            self.name = name

        async def tick(self, tenant: str, incident_id: str) -> None:
            ran.append((self.name, incident_id))

    a, b = Engine("a"), Engine("b")
    jobs.install(a, "deploy-a:")
    jobs.install(b, "deploy-b:")
    try:
        await jobs.fire("t", "I-1", "deploy-a:")
        await jobs.fire("t", "I-2", "deploy-b:")
        await jobs.fire("t", "I-old")  # stored before: the newest
        await jobs.fire("t", "I-gone", "deploy-c:")  # no such engine: logged, not run
        assert ran == [("a", "I-1"), ("b", "I-2"), ("b", "I-old")]
    finally:
        jobs.uninstall(a, "deploy-a:")
        jobs.uninstall(b, "deploy-b:")


async def test_the_loop_keeps_answering_while_the_job_store_is_paused(redis_url, redis_client):
    """`CLIENT PAUSE` on Redis while timers are written and due jobs are processed: the job
    store's calls wait on their own thread, the event loop keeps answering (heartbeats go
    on), and once Redis is back every timer is stored and fires, on the loop."""
    import threading
    import time
    import uuid

    from escalation import jobs
    from escalation.scheduler import TimerScheduler

    prefix = f"testpause-{uuid.uuid4().hex[:8]}:"
    fired: list[tuple[str, bool]] = []
    loop_thread = threading.current_thread()

    class Engine:
        async def tick(self, tenant: str, incident_id: str) -> None:
            fired.append((incident_id, threading.current_thread() is loop_thread))

    engine = Engine()
    scheduler = TimerScheduler(redis_cluster.sync_client(redis_url), prefix)
    jobs.install(engine, scheduler.deployment)
    await scheduler.start()
    scheduler.activate()
    beats: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            beats.append(time.monotonic())
            await asyncio.sleep(0.05)

    beating = asyncio.create_task(heartbeat())
    try:
        await scheduler.ensure("t", "before", time.time() + 0.2)  # the positive twin
        await eventually(lambda: ("before", True) in fired)
        await redis_cluster.pause_writes(redis_client, 2000)
        paused_at = time.monotonic()
        for i in range(5):
            scheduler.schedule("t", f"during{i}", time.time() + 0.5)
        applying = asyncio.create_task(scheduler.apply({("t", "batch"): time.time() + 0.5}))
        await asyncio.sleep(1.5)
        answered = [b for b in beats if b > paused_at]
        assert len(answered) >= 10, "the loop stalled while Redis was paused"
        assert not applying.done(), "the batch waits for Redis (on its thread)"
        await applying
        expected = {"before", "batch", *(f"during{i}" for i in range(5))}
        await eventually(lambda: {i for i, _ in fired} >= expected, timeout=15)
        # every timer fires; one whose removal timed out during the pause (the job store's
        # 2 s socket timeout against a 2 s pause, on a loaded machine) may fire once more
        # when the store answers again: at least once, which the engine's claim makes one
        # page (test_processes: each level once across processes and a kill)
        assert {i for i, _ in fired} == expected
        assert all(on_loop for _, on_loop in fired)  # jobs run on the event loop
    finally:
        stop.set()
        await beating
        await redis_cluster.unpause(redis_client)
        await scheduler.stop()
        jobs.uninstall(engine, scheduler.deployment)
        await redis_client.delete(
            f"{prefix}{{apscheduler}}:jobs", f"{prefix}{{apscheduler}}:run_times"
        )
