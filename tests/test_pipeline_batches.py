"""The pipeline's handler and its batches: store before emit, bad input dead-lettered, KPI
batches keeping every transition and order, redelivery, joint publishes, Redis blips; the
simulator's envelopes."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from notify_core.history.store import MemoryHistory
from notify_core.state.incidents import MemoryIncidentStore
from notify_core.wire.events import TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES
from pipeline.handlers import MessageHandler
from pipeline.publisher import Publisher
from towerco_notify.commands.simulate import Generator


class Recorder:
    def __init__(self) -> None:
        self.emitted: list[tuple[dict[str, Any], list[str]]] = []
        self.dead: list[dict[str, Any]] = []

    async def emit(self, event: dict[str, Any], rooms: list[str]) -> None:
        self.emitted.append((event, rooms))

    async def deadletter(self, record: bytes) -> None:
        self.dead.append(orjson.loads(record))


async def test_handler_stores_before_emitting_and_dead_letters_bad_input():
    history, rec = MemoryHistory(), Recorder()
    handler = MessageHandler(Publisher(history, rec.emit), MemoryIncidentStore(), rec.deadletter)
    good = orjson.dumps(
        {
            "tenant_id": "t",
            "site_id": "s",
            "timestamp": "2026-11-25T10:00:00Z",
            "payload": {"status": "down"},
        }
    )
    event_id = await handler.handle(TOPIC_SITES, good, 1, 0, 5)
    assert event_id and rec.emitted[0][0]["id"] == event_id
    assert (await history.read_after("t", None, 10))[0]["id"] == event_id
    assert await handler.handle(TOPIC_SITES, good, 1, 0, 5) is None  # redelivered
    assert len(rec.emitted) == 1
    assert await handler.handle(TOPIC_ALERTS, b"{", 1, 2, 7) is None
    assert rec.dead[0]["partition"] == 2 and rec.dead[0]["offset"] == 7
    assert rec.dead[0]["reason"].startswith("not valid JSON")


async def test_emit_failure_keeps_the_event_in_history():
    history = MemoryHistory()

    async def broken_emit(event: dict[str, Any], rooms: list[str]) -> None:
        raise RuntimeError("socket layer down")

    publisher = Publisher(history, broken_emit)
    event = {"id": None, "type": "system_notification", "tenant_id": "t"}
    event_id = await publisher.publish(event, "k")
    assert event_id and (await history.read_after("t", None, 5))[0]["id"] == event_id


def test_generator_produces_valid_envelopes_of_every_kind():
    from pipeline.envelope import decode

    gen = Generator(["acme", "globex"], 5, seed=1)
    topics = set()
    for i in range(2000):
        topic, env = gen.next(1_764_000_000 + i)
        decode(topic, orjson.dumps(env))  # raises if the simulator ever emits garbage
        topics.add(topic)
        assert env["tenant_id"] in ("acme", "globex")
    assert topics == {TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES}
    severities = {gen.next(0)[1]["payload"].get("severity") for _ in range(3000)}
    assert {"critical", "major", "minor", "warning", "info"} <= severities
    assert {"high", "medium", "low", None} <= severities, "ADR-010's words, and none at all"
    kpis = [gen.next(0)[1]["payload"] for _ in range(3000)]
    assert any("vendor" in p and isinstance(p.get("threshold_breach"), bool) for p in kpis)


def test_generator_holds_faults_long_enough_for_sustained_rules():
    from pathlib import Path

    from notify_core.thresholds.rules_file import load_rules

    rules = load_rules(Path(__file__).resolve().parent.parent / "config" / "thresholds.yaml")
    gen = Generator(["demo"], 3, seed=3)
    breached_since: dict[tuple[str, str], float] = {}
    longest = 0.0
    for i in range(20_000):  # 5 samples a second for a bit over an hour
        now = 1_764_000_000 + i / 5
        topic, env = gen.next(now)
        if topic != TOPIC_KPIS:
            continue
        for name, value in env["payload"].items():  # type: ignore[union-attr]
            rule = rules.effective("demo", env["site_id"], name)  # type: ignore[arg-type]
            key = (str(env["site_id"]), name)
            if rule is not None and rule.level_of(value) is not None:
                start = breached_since.setdefault(key, now)
                longest = max(longest, now - start)
            else:
                breached_since.pop(key, None)
    assert longest >= 60, "faults last long enough for the shipped `for:` durations"


def _kpi(site: str, second: int, **values: float) -> bytes:
    return orjson.dumps(
        {
            "tenant_id": "t",
            "site_id": site,
            "timestamp": f"2026-11-25T10:00:{second:02d}Z",
            "payload": values,
        }
    )


@pytest.mark.parametrize("coalesce", [False, True])
async def test_a_batch_of_kpi_samples_keeps_every_transition_and_order(coalesce):

    from notify_core.in_force import fixed
    from notify_core.thresholds.rules_file import parse_rules
    from pipeline.kpi_alerts import DictStore, KpiAlerts
    from tests.conftest import TEST_THRESHOLDS

    history, rec = MemoryHistory(), Recorder()
    publisher = Publisher(history, rec.emit)
    rules = fixed(parse_rules(TEST_THRESHOLDS))
    states = DictStore()
    alerts = KpiAlerts(rules, states, publisher, MemoryIncidentStore())
    handler = MessageHandler(
        publisher, MemoryIncidentStore(), rec.deadletter, alerts, coalesce_kpis=coalesce
    )
    batch = [
        (TOPIC_KPIS, _kpi("a", 0, temp_c=30, fan=1), 1, 0, 0),
        (TOPIC_KPIS, _kpi("b", 1, temp_c=31), 1, 1, 0),
        (TOPIC_KPIS, _kpi("a", 2, temp_c=32, fan=2), 1, 0, 1),
        (TOPIC_KPIS, b"not json", 1, 0, 2),
        (TOPIC_KPIS, _kpi("a", 3, temp_c=46), 1, 0, 3),  # warning: a transition
        (TOPIC_KPIS, _kpi("a", 4, temp_c=47, door=0), 1, 0, 4),
        (TOPIC_KPIS, _kpi("a", 5, temp_c=48), 1, 0, 5),
    ]
    await handler.handle_batch(batch)

    updates = [e for e, _ in rec.emitted if e["type"] == "kpi_update"]
    site_a = [
        (e["kpi_data"], bool(e.get("threshold_breach"))) for e in updates if e["site_id"] == "a"
    ]
    if coalesce:
        # quiet samples before the breach fold into one update, sent before it; after
        # it, the later samples fold again: latest value per KPI
        # kpi_data.threshold_breach: the warning rule fires from 46 on, breach record or not
        assert site_a == [
            ({"temp_c": 32, "fan": 2, "threshold_breach": False}, False),
            ({"temp_c": 46, "threshold_breach": True}, True),
            ({"temp_c": 48, "door": 0, "threshold_breach": True}, False),
        ]
    else:
        assert [d["temp_c"] for d, _ in site_a] == [30, 32, 46, 47, 48]
        assert [b for _, b in site_a] == [False, False, True, False, False]
        assert [d["threshold_breach"] for d, _ in site_a] == [False, False, True, True, True]
    assert [e["kpi_data"] for e in updates if e["site_id"] == "b"] == [
        {"temp_c": 31, "threshold_breach": False}
    ]
    # the bad message is dead-lettered and nothing else is lost
    assert [d["offset"] for d in rec.dead] == [2]
    stored = await history.read_after("t", None, 100)
    assert [e["id"] for e in stored] == [e["id"] for e, _ in rec.emitted]
    # the alert state moved through every sample, coalesced or not; the table got the
    # material change (firing), the hot copy the latest sample
    assert states.get("t/a/temp_c")["state"] == "firing"
    assert alerts._cache["t/a/temp_c"][0].value == 48


async def test_a_reloaded_threshold_applies_to_sites_already_evaluated():
    """The engine remembers each site's rules between samples; a reload must replace them."""

    from notify_core.in_force import InForce
    from notify_core.thresholds.rules_file import parse_rules
    from pipeline.kpi_alerts import DictStore, KpiAlerts
    from tests.conftest import TEST_THRESHOLDS

    rec = Recorder()
    publisher = Publisher(MemoryHistory(), rec.emit)
    in_force = InForce(parse_rules(TEST_THRESHOLDS))
    rules = in_force.view(lambda r: r)
    alerts = KpiAlerts(rules, DictStore(), publisher, MemoryIncidentStore())
    handler = MessageHandler(publisher, MemoryIncidentStore(), rec.deadletter, alerts)

    await handler.handle_batch([(TOPIC_KPIS, _kpi("a", 0, temp_c=42), 1, 0, 0)])
    in_force.swap(parse_rules(TEST_THRESHOLDS.replace("warning: 45", "warning: 41", 1)))
    await handler.handle_batch([(TOPIC_KPIS, _kpi("a", 1, temp_c=42), 1, 0, 1)])
    in_force.swap(parse_rules("kpis:\n  avail_pct: {direction: below, warning: 99}\n"))
    await handler.handle_batch([(TOPIC_KPIS, _kpi("a", 2, temp_c=90), 1, 0, 2)])

    breaches = [e.get("threshold_breach") for e, _ in rec.emitted]
    assert breaches[0] is None  # 42 is under the first warning (45)
    assert [(b["level"], b["threshold"]) for b in breaches[1]] == [("warning", 41)]
    assert breaches[2] is None  # temp_c has no rule any more


@pytest.mark.parametrize("engine", ["memory", "redis"])
@pytest.mark.parametrize("coalesce", [False, True])
async def test_a_redelivered_kpi_fetch_stores_only_what_is_new(coalesce, engine, redis_client):
    """KPI updates are deduped by their Kafka position. With coalescing, a site's update
    takes its newest sample's place, so a partition's positions still reach the history
    in order: every site of the fetch is stored, and a redelivery (even overlapping new
    messages) stores only the new ones."""
    import uuid

    from notify_core.history.store import RedisHistory

    prefix = f"testkpi-{uuid.uuid4().hex[:8]}:"
    history: Any = MemoryHistory() if engine == "memory" else RedisHistory(redis_client, prefix)
    rec = Recorder()
    publisher = Publisher(history, rec.emit)
    handler = MessageHandler(
        publisher, MemoryIncidentStore(), rec.deadletter, None, coalesce_kpis=coalesce
    )
    fetch = [  # one partition: site a, b, a again, c
        (TOPIC_KPIS, _kpi("a", 0, temp_c=30), 1, 0, 10),
        (TOPIC_KPIS, _kpi("b", 1, temp_c=31), 1, 0, 11),
        (TOPIC_KPIS, _kpi("a", 2, temp_c=32), 1, 0, 12),
        (TOPIC_KPIS, _kpi("c", 3, temp_c=33), 1, 0, 13),
    ]
    try:
        await handler.handle_batch(fetch)
        sites = [e["site_id"] for e, _ in rec.emitted]
        assert sorted(set(sites)) == ["a", "b", "c"]
        assert len(sites) == (3 if coalesce else 4)
        await handler.handle_batch(fetch)  # redelivered whole: nothing new
        assert len(rec.emitted) == len(sites)
        await handler.handle_batch([*fetch[2:], (TOPIC_KPIS, _kpi("b", 4, temp_c=34), 1, 0, 14)])
        assert [e["kpi_data"] for e, _ in rec.emitted[len(sites) :]] == [
            {"temp_c": 34, "threshold_breach": False}
        ]
        stored = await history.read_after("t", None, 100)
        assert [e["id"] for e in stored] == [e["id"] for e, _ in rec.emitted]
    finally:
        async for key in redis_client.scan_iter(match=f"{prefix}*"):
            await redis_client.delete(key)


@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_a_long_mixed_fetch_is_published_once_in_order(engine, redis_client):
    """A long fetch mixing KPI samples, a threshold transition, an alert, a bad message
    and a history call that fails once: clients get every notification once, in input
    order, with increasing ids, as stored."""
    import uuid

    from redis.exceptions import ConnectionError as RedisConnectionError

    from notify_core.history.store import RedisHistory
    from notify_core.in_force import fixed
    from notify_core.thresholds.rules_file import parse_rules
    from pipeline.kpi_alerts import DictStore, KpiAlerts
    from tests.conftest import TEST_THRESHOLDS

    prefix = f"testrun-{uuid.uuid4().hex[:8]}:"
    store: Any = MemoryHistory() if engine == "memory" else RedisHistory(redis_client, prefix)

    class FailsOnce:
        """The second history call cannot reach the store (a Redis blip)."""

        calls = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        async def append_many(self, items: list) -> list:
            FailsOnce.calls += 1
            if FailsOnce.calls == 2:
                raise RedisConnectionError("blip")
            return await store.append_many(items)

    rec = Recorder()
    publisher = Publisher(FailsOnce(), rec.emit, max_backoff_s=0.01)  # type: ignore[arg-type]
    rules = fixed(parse_rules(TEST_THRESHOLDS))
    alerts = KpiAlerts(rules, DictStore(), publisher, MemoryIncidentStore())
    handler = MessageHandler(publisher, MemoryIncidentStore(), rec.deadletter, alerts)

    n, hot, alert_at, bad_at = 1300, 700, 1000, 1100
    batch = []
    for offset in range(n):
        if offset == alert_at:
            payload = {"incident_id": "I1", "title": "Mains failure", "severity": "major"}
            raw = _msg(TOPIC_ALERTS, 1, "s1", payload)
            batch.append((TOPIC_ALERTS, raw, 1, 1, 0))
            continue
        temp = 46 if offset == hot else 30  # past the warning: a transition, alone
        raw = (
            b"{not json"
            if offset == bad_at
            else _msg(TOPIC_KPIS, 1, f"s{offset % 50}", {"temp_c": temp, "seq": offset})
        )
        batch.append((TOPIC_KPIS, raw, 1, 0, offset))
    try:
        await handler.handle_batch(batch)

        got = [e.get("kpi_data", {}).get("seq", e["type"]) for e, _ in rec.emitted]
        want = ["incident_alert" if o == alert_at else o for o in range(n) if o != bad_at]
        assert got == want
        breaches = [e["kpi_data"]["seq"] for e, _ in rec.emitted if e.get("threshold_breach")]
        assert breaches == [hot, hot + 50]  # the site's warning, then back to ok
        assert [d["offset"] for d in rec.dead] == [bad_at]
        ids = [tuple(map(int, e["id"].split("-"))) for e, _ in rec.emitted]
        assert ids == sorted(set(ids))
        stored = await store.read_after("t", None, 10 * n)
        assert [e["id"] for e in stored] == [e["id"] for e, _ in rec.emitted]
        assert FailsOnce.calls > 2  # the failed call was made again
    finally:
        async for key in redis_client.scan_iter(match=f"{prefix}*"):
            await redis_client.delete(key)


def test_a_fetch_is_handled_in_record_time_order_keeping_each_partition_in_order():

    from pipeline.kafka.batches import in_time_order

    def m(topic: str, offset: int, ts: int | None) -> Any:
        return (topic, b"", ts, 0, offset)

    # as a fetch hands them over: partition by partition
    kpis, alerts = (
        [m("kpis", 0, 1000), m("kpis", 1, 3000)],
        [m("alerts", 0, 2000), m("alerts", 1, 4000)],
    )
    assert [(x[0], x[4]) for x in in_time_order([kpis, alerts])] == [
        ("kpis", 0),
        ("alerts", 0),
        ("kpis", 1),
        ("alerts", 1),
    ]
    # a partition whose clock went backwards (or a record without a time) still keeps
    # its offsets in order
    skewed = in_time_order([[m("a", 0, 5000), m("a", 1, 1000)], [m("b", 0, 2000), m("b", 1, None)]])
    order = [(x[0], x[4]) for x in skewed]
    assert order.index(("a", 0)) < order.index(("a", 1))
    assert order.index(("b", 0)) < order.index(("b", 1))


async def test_a_failing_kpi_message_in_a_coalesced_batch_is_dead_lettered_and_the_rest_kept():

    from notify_core.in_force import fixed
    from notify_core.thresholds.rules_file import parse_rules
    from pipeline.kpi_alerts import DictStore, KpiAlerts
    from tests.conftest import TEST_THRESHOLDS

    class BrokenForSiteB(DictStore):
        def get(self, key: str) -> dict[str, Any] | None:
            if key.startswith("t/b/"):
                raise RuntimeError("state store unavailable")
            return super().get(key)

    history, rec = MemoryHistory(), Recorder()
    publisher = Publisher(history, rec.emit)
    rules = fixed(parse_rules(TEST_THRESHOLDS))
    alerts = KpiAlerts(rules, BrokenForSiteB(), publisher, MemoryIncidentStore())
    handler = MessageHandler(
        publisher, MemoryIncidentStore(), rec.deadletter, alerts, coalesce_kpis=True
    )
    await handler.handle_batch(
        [
            (TOPIC_KPIS, _kpi("a", 0, temp_c=30), 1, 0, 0),
            (TOPIC_KPIS, _kpi("b", 1, temp_c=31), 1, 1, 0),
            (TOPIC_KPIS, _kpi("a", 2, temp_c=32), 1, 0, 1),
        ]
    )
    assert [d["offset"] for d in rec.dead] == [0] and [d["partition"] for d in rec.dead] == [1]
    assert rec.dead[0]["reason"].startswith("internal error: RuntimeError")
    assert [e["kpi_data"] for e, _ in rec.emitted] == [{"temp_c": 32, "threshold_breach": False}]


async def test_a_batch_whose_joint_publish_fails_is_published_one_by_one():
    """If storing a run of KPI updates together fails with an unexpected error, each is
    tried alone: the one that cannot be stored is dead-lettered, the rest keep order."""

    from notify_core.in_force import fixed
    from notify_core.thresholds.rules_file import parse_rules
    from pipeline.kpi_alerts import DictStore, KpiAlerts
    from tests.conftest import TEST_THRESHOLDS

    class FailsTogether(MemoryHistory):
        async def append_many(self, items: list[Any]) -> list[str | None]:
            if len(items) > 1:
                raise RuntimeError("pipeline reply lost its framing")
            if items[0][0]["kpi_data"].get("temp_c") == 33:
                raise ValueError("this one cannot be stored")
            return await super().append_many(items)

    history, rec = FailsTogether(), Recorder()
    publisher = Publisher(history, rec.emit)
    rules = fixed(parse_rules(TEST_THRESHOLDS))
    alerts = KpiAlerts(rules, DictStore(), publisher, MemoryIncidentStore())
    handler = MessageHandler(publisher, MemoryIncidentStore(), rec.deadletter, alerts)
    await handler.handle_batch(
        [(TOPIC_KPIS, _kpi("a", i, temp_c=30 + i), 1, 0, i) for i in range(6)]
    )
    assert [e["kpi_data"]["temp_c"] for e, _ in rec.emitted] == [30, 31, 32, 34, 35]
    assert [d["offset"] for d in rec.dead] == [3]
    assert "ValueError: this one cannot be stored" in rec.dead[0]["reason"]


def _msg(topic: str, second: int, site: str | None, payload: dict[str, Any]) -> bytes:
    env: dict[str, Any] = {
        "tenant_id": "t",
        "timestamp": f"2026-11-25T10:00:{second:02d}Z",
        "payload": payload,
    }
    if site:
        env["site_id"] = site
    return orjson.dumps(env)


class CountingIncidents(MemoryIncidentStore):
    """Counts the reads that reach the store."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.batch_gets = 0

    async def get(self, tenant: str, incident_id: str) -> Any:
        self.gets += 1
        return await super().get(tenant, incident_id)

    async def get_many(self, keys: list[Any]) -> Any:
        self.batch_gets += 1
        return await super().get_many(keys)


async def _run_handler(
    batch: list[Any],
    batched: bool,
    coalesce: bool = False,
    read_ahead: bool = False,
    redis: Any = None,
) -> Any:
    """A handler over memory stores, thresholds on, with a listener that checks it is
    told about an incident only once the incident's notification is stored. With
    `read_ahead`, the handler and the threshold engine share a ReadAhead store, as the
    pipeline wires them; with `redis` (a client), that store keeps incidents in Redis
    and its writes go through a WriteBehind, as the Redis engine wires them."""
    from types import SimpleNamespace

    from notify_core.in_force import fixed
    from notify_core.thresholds.rules_file import parse_rules
    from pipeline.kpi_alerts import DictStore, KpiAlerts
    from tests.conftest import TEST_THRESHOLDS

    history, rec, calls = MemoryHistory(), Recorder(), []

    class Listener:
        async def on_alert(self, tenant, incident_id, site, severity, title) -> None:
            stored = await history.read_after(tenant, None, 1000)
            ids = [(e.get("incident") or {}).get("incident_id") for e in stored]
            assert incident_id in ids, f"{incident_id} told before it was stored"
            calls.append(("alert", incident_id, severity))

        async def on_action(self, tenant, incident_id, status, by, kind=None, details=None) -> None:
            calls.append(("action", incident_id, status))

    rules = fixed(parse_rules(TEST_THRESHOLDS))
    from notify_core.redis.write_behind import WriteBehind
    from notify_core.state.incidents import ReadAhead, RedisIncidentStore

    counting = CountingIncidents()
    writes = WriteBehind(redis) if redis is not None else None
    prefix = f"testwb-{os.urandom(4).hex()}:"
    unstored: list[str] = []

    async def emit(event: dict[str, Any], rooms: list[str]) -> None:
        incident = (event.get("incident") or {}).get("incident_id")
        if redis is not None and incident:  # no client may hear of state not in Redis yet
            if not await redis.exists(f"{prefix}incident:{{t}}:{incident}"):
                unstored.append(incident)
        await rec.emit(event, rooms)

    publisher = Publisher(history, emit, writes=writes)
    incidents: Any = ReadAhead(counting) if read_ahead else counting
    if redis is not None:
        incidents = ReadAhead(RedisIncidentStore(redis, prefix, writes))
    alerts = KpiAlerts(rules, DictStore(), publisher, incidents, listener=Listener())
    handler = MessageHandler(
        publisher,
        incidents,
        rec.deadletter,
        alerts,
        Listener(),
        coalesce_kpis=coalesce,
        writes=writes,
    )
    if batched:
        await handler.handle_batch(batch)
    else:
        for message in batch:
            await handler.handle(*message)
    stored = [
        {k: v for k, v in e.items() if k != "id"} for e in await history.read_after("t", None, 1000)
    ]
    in_redis = {}
    last_event_ids: dict[str, str] = {}
    if redis is not None:
        assert writes is not None and writes.queued == 0  # all sent before the batch ends
        async for key in redis.scan_iter(match=f"{prefix}*"):
            kind = await redis.type(key)
            if kind == b"hash":
                fields = await redis.hgetall(key)
                # an event id differs from run to run: kept apart, checked against `ids`
                noted = fields.pop(b"last_event_id", b"").decode()
                if noted:
                    last_event_ids[key.decode()[len(prefix) :]] = noted
                in_redis[key.decode()[len(prefix) :]] = fields
            elif kind == b"zset":  # the incident indexes
                in_redis[key.decode()[len(prefix) :]] = await redis.zrange(key, 0, -1)
            await redis.delete(key)
    return SimpleNamespace(
        unstored=unstored,
        in_redis=in_redis,
        last_event_ids=last_event_ids,
        stored=stored,
        emitted=[e["id"] for e, _ in rec.emitted],
        ids=[e["id"] for e in await history.read_after("t", None, 1000)],
        dead=[(d["topic"], d["offset"]) for d in rec.dead],
        calls=calls,
        store=counting,
    )


def _mixed_batch() -> list[Any]:
    alert = _msg(
        TOPIC_ALERTS, 1, "s1", {"incident_id": "I1", "title": "Mains fail", "severity": "critical"}
    )
    from notify_core.wire.events import TOPIC_ACTIONS

    def act(second: int, incident: str, action: str) -> bytes:
        payload = {"incident_id": incident, "action": action, "user_id": "op1"}
        return _msg(TOPIC_ACTIONS, second, None, payload)

    from pipeline.kpi_alerts import incident_id_for

    threshold_incident = incident_id_for("t", "s1", "temp_c")
    messages = [
        (TOPIC_ALERTS, alert),
        (TOPIC_KPIS, _kpi("s1", 2, temp_c=30)),
        (TOPIC_SITES, _msg(TOPIC_SITES, 3, "s1", {"status": "down"})),
        (
            TOPIC_ALERTS,
            _msg(
                TOPIC_ALERTS, 4, "s2", {"incident_id": "I2", "title": "Door", "severity": "minor"}
            ),
        ),
        (TOPIC_ACTIONS, act(5, "I1", "acknowledge")),
        (TOPIC_ALERTS, b'{"tenant_id": "t"'),  # bad: dead-lettered, nothing else lost
        (TOPIC_KPIS, _kpi("s1", 6, temp_c=46)),  # crosses warning: goes alone
        (TOPIC_KPIS, _kpi("s1", 7, temp_c=61)),  # critical: raises an incident
        (TOPIC_ACTIONS, act(7, threshold_incident, "acknowledge")),  # raised in this batch
        (TOPIC_ACTIONS, act(8, "I1", "resolve")),
        (TOPIC_ACTIONS, act(9, "I1", "acknowledge")),  # after resolve: nothing changes
        (TOPIC_ALERTS, alert),  # a late copy, raised before the resolve: dropped
        (TOPIC_KPIS, _kpi("s1", 10, temp_c=30)),
        (TOPIC_ACTIONS, act(11, "I9", "acknowledge")),  # unknown incident
    ]
    return [(topic, raw, 1, 0, offset) for offset, (topic, raw) in enumerate(messages)]


@pytest.mark.parametrize("read_ahead", [False, True])
async def test_a_mixed_batch_has_the_outcome_of_handling_each_message_in_turn(read_ahead):
    from pipeline.kpi_alerts import incident_id_for

    threshold_incident = incident_id_for("t", "s1", "temp_c")
    batch = _mixed_batch()
    one_by_one = await _run_handler(batch, batched=False)
    together = await _run_handler(batch, batched=True, read_ahead=read_ahead)
    assert together.stored == one_by_one.stored
    assert together.dead == one_by_one.dead == [(TOPIC_ALERTS, 5)]
    assert together.calls == one_by_one.calls
    assert together.emitted == together.ids  # emitted in the order stored
    kinds = [e["type"] for e in together.stored]
    assert kinds == [
        "incident_alert",
        "kpi_update",
        "site_status",
        "incident_alert",
        "incident_update",
        "kpi_update",
        "kpi_update",
        "incident_alert",  # raised by the threshold engine
        "incident_update",  # ...and acknowledged in the same batch
        "incident_update",  # I1 resolved (the acknowledge after it changes nothing)
        "kpi_update",  # back to ok...
        "incident_update",  # ...resolves the threshold incident
        "incident_update",  # I9: unknown, still broadcast
    ]
    # the copy of I1's alert after its resolve did not reopen it (no second escalation)
    assert together.calls.count(("alert", "I1", "critical")) == 1
    ack = next(e for e in together.stored if e.get("incident_id") == threshold_incident)
    assert (ack["status"], ack["site_id"]) == ("acknowledged", "s1")
    if read_ahead:  # the incidents the messages name were read in one call
        assert together.store.batch_gets == 1
        # only the threshold engine's own incident is read one by one (resolve)
        assert together.store.gets <= 2 < one_by_one.store.gets


async def test_a_batch_over_redis_stores_sends_its_state_writes_together_with_the_same_outcome(
    redis_client,
):
    """With the Redis engine, a batch's incident writes are queued and sent together; the
    messages after them (an acknowledge of an incident raised in the same batch) still
    read them, and everything is in Redis when the batch returns."""
    from pipeline.kpi_alerts import incident_id_for

    batch = _mixed_batch()
    one_by_one = await _run_handler(batch, batched=False, redis=redis_client)
    together = await _run_handler(batch, batched=True, redis=redis_client)
    assert together.stored == one_by_one.stored
    assert together.dead == one_by_one.dead == [(TOPIC_ALERTS, 5)]
    assert together.calls == one_by_one.calls
    assert together.in_redis == one_by_one.in_redis
    # each incident's last_event_id is the newest stored event naming it
    for run in (together, one_by_one):
        assert run.last_event_ids and set(run.last_event_ids.values()) <= set(run.ids)
    assert together.unstored == one_by_one.unstored == []
    threshold = f"incident:{{t}}:{incident_id_for('t', 's1', 'temp_c')}"
    assert together.in_redis[threshold][b"status"] == b"resolved"
    assert together.in_redis["incident:{t}:I2"] == {
        b"site_id": b"s2",
        b"severity": b"minor",
        b"status": b"open",
        b"resolved_at_ms": b"",
        b"title": b"Door",
        b"opened_at_ms": str(
            int(datetime(2026, 11, 25, 10, 0, 4, tzinfo=UTC).timestamp() * 1000)
        ).encode(),
        b"acknowledged_by": b"",
        b"assignee": b"",
        b"snoozed_until_ms": b"",
        b"acknowledged_at_ms": b"",
    }
    resolved_at = int(datetime(2026, 11, 25, 10, 0, 8, tzinfo=UTC).timestamp() * 1000)
    assert together.in_redis["incident:{t}:I1"][b"status"] == b"resolved"  # the copy: no reopen
    assert together.in_redis["incident:{t}:I1"][b"resolved_at_ms"] == str(resolved_at).encode()


@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_an_alert_older_than_its_incidents_resolution_does_not_reopen_it(
    engine, redis_client
):
    """A copy of an alert that arrives after the incident was resolved (a producer's late
    retry, a redelivery, a slow source), raised no later than the resolve, is dropped and
    counted: no notification, no state change, no new escalation. An alert raised after
    the resolve reopens the incident, as before."""
    from prometheus_client import REGISTRY

    from notify_core.wire.events import TOPIC_ACTIONS

    def alert(second: int, title: str) -> bytes:
        payload = {"incident_id": "I1", "title": title, "severity": "critical"}
        return _msg(TOPIC_ALERTS, second, "s1", payload)

    resolve = {"incident_id": "I1", "action": "resolve", "user_id": "op1"}
    batch = [
        (TOPIC_ALERTS, alert(1, "Mains failure")),
        (TOPIC_ACTIONS, _msg(TOPIC_ACTIONS, 5, None, resolve)),
        (TOPIC_ALERTS, alert(3, "Mains failure (from a slow source)")),
        (TOPIC_ALERTS, alert(5, "Mains failure (same second as the resolve)")),
        (TOPIC_ALERTS, alert(6, "Mains failure again")),
    ]
    batch = [(topic, raw, 1, 0, offset) for offset, (topic, raw) in enumerate(batch)]

    def stale() -> float:
        return REGISTRY.get_sample_value("notify_stale_alerts_total") or 0.0

    before = stale()
    got = await _run_handler(batch, batched=True, redis=redis_client if engine == "redis" else None)
    assert stale() - before == 2
    titles = [(e["type"], (e.get("incident") or {}).get("title")) for e in got.stored]
    assert titles == [
        ("incident_alert", "Mains failure"),
        ("incident_update", None),
        ("incident_alert", "Mains failure again"),
    ]
    assert got.calls == [
        ("alert", "I1", "critical"),
        ("action", "I1", "resolved"),
        ("alert", "I1", "critical"),
    ]
    if engine == "redis":
        assert got.in_redis["incident:{t}:I1"][b"status"] == b"open"


async def test_redis_incident_store_reads_many_as_it_reads_one(redis_client):
    import uuid

    from notify_core.state.incidents import IncidentState, RedisIncidentStore

    prefix = f"testinc-{uuid.uuid4().hex[:8]}:"
    store = RedisIncidentStore(redis_client, prefix)
    await store.put("t", "I1", IncidentState("s1", "critical", "open"))
    await store.put("t", "I2", IncidentState(None, "minor", "acknowledged"))
    keys = [("t", "I1"), ("t", "nope"), ("t", "I2"), ("other", "I1")]
    many = await store.get_many(keys)
    assert many == {key: await store.get(*key) for key in keys}
    assert many[("t", "I2")] == IncidentState(None, "minor", "acknowledged")
    assert many[("other", "I1")] is None  # tenants never share incident state
    async for key in redis_client.scan_iter(match=f"{prefix}*"):
        await redis_client.delete(key)


@pytest.mark.parametrize("batched", [False, True])
async def test_a_redis_blip_delays_incident_messages_instead_of_dead_lettering_them(batched):
    """Incident state and escalation hooks that cannot reach Redis are retried (the offset
    waits, as for the history), so a blip loses no alert and no escalation."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from notify_core.wire.events import TOPIC_ACTIONS

    class FlakyIncidents(MemoryIncidentStore):
        failures = 3

        async def get(self, tenant: str, incident_id: str) -> Any:
            if self.failures:
                self.failures -= 1
                raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")
            return await super().get(tenant, incident_id)

        async def get_many(self, keys: list[Any]) -> Any:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    calls: list[tuple[str, str]] = []

    class FlakyListener:
        failures = 2

        async def on_alert(self, tenant, incident_id, site, severity, title) -> None:
            if self.failures:
                self.failures -= 1
                raise RedisConnectionError("Timeout reading from 127.0.0.1:6379")
            calls.append(("alert", incident_id))

        async def on_action(self, tenant, incident_id, status, by, kind=None, details=None) -> None:
            calls.append((status, incident_id))

    history, rec = MemoryHistory(), Recorder()
    from notify_core.state.incidents import ReadAhead

    handler = MessageHandler(
        Publisher(history, rec.emit),
        ReadAhead(FlakyIncidents()),
        rec.deadletter,
        None,
        FlakyListener(),
        max_backoff_s=0.01,
    )
    payload = {"incident_id": "I1", "title": "Mains failure", "severity": "critical"}
    ack = {"incident_id": "I1", "action": "acknowledge", "user_id": "op1"}
    batch = [
        (TOPIC_ALERTS, _msg(TOPIC_ALERTS, 1, "s1", payload), 1, 0, 0),
        (TOPIC_ACTIONS, _msg(TOPIC_ACTIONS, 2, None, ack), 1, 0, 1),
    ]
    if batched:
        await handler.handle_batch(batch)
    else:
        for message in batch:
            await handler.handle(*message)
    assert rec.dead == []
    stored = await history.read_after("t", None, 10)
    assert [(e["type"], e.get("status")) for e in stored] == [
        ("incident_alert", None),
        ("incident_update", "acknowledged"),
    ]
    assert stored[1]["site_id"] == "s1"  # the state written by the alert was read back
    assert calls == [("alert", "I1"), ("acknowledged", "I1")]
