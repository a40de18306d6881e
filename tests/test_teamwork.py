"""Working an incident together: notes, comments, take/release, snooze/unsnooze, through
the real broker and Redis (the session daemon) and Node clients; and the pure parts
(what an action does to an incident; escalation while snoozed) with the clock passed in."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from escalation.policy import EscalationState, Level, Policy, Target, advance
from notify_core.state.incidents import IncidentState
from notify_core.wire.events import TOPIC_ALERTS, ActionPayload
from pipeline.incident_actions import apply_action
from tests.helpers import NodeClient, alert, new_tenant
from tests.test_escalation import _timeline

OPEN = IncidentState("s1", "critical", "open", title="Mains lost", opened_at_ms=1000)


def _act(action: str, **kw) -> ActionPayload:
    return ActionPayload(incident_id="I-1", action=action, user_id="alice", **kw)


def test_what_each_action_does_to_an_incident():
    ack = apply_action(OPEN, _act("acknowledge", note="on my way"), 5000)
    assert ack.state.status == "acknowledged" and ack.state.acknowledged_by == "alice"
    assert ack.changed == {"action": "acknowledge", "note": "on my way"}
    assert apply_action(ack.state, _act("acknowledge"), 6000) is None, "idempotent"
    comment = apply_action(OPEN, _act("comment", note="generator fuel low"), 5000)
    assert comment.state is None and comment.status == "open"
    assert comment.changed["comment"] == {"by": "alice", "text": "generator fuel low"}
    take = apply_action(OPEN, _act("take"), 5000)
    assert take.state.assignee == "alice" and take.changed["assignee"] == "alice"
    assert apply_action(take.state, _act("take"), 5000) is None
    release = apply_action(take.state, _act("release"), 6000)
    assert release.state.assignee is None and release.changed["assignee"] is None
    snooze = apply_action(OPEN, _act("snooze", minutes=30), 60_000)
    assert snooze.state.status == "snoozed" and snooze.state.snoozed_until_ms == 60_000 + 1_800_000
    assert snooze.changed["until"] == "1970-01-01T00:31:00Z"
    back = apply_action(snooze.state, _act("unsnooze"), 70_000)
    assert back.state.status == "open" and back.state.snoozed_until_ms is None
    assert snooze.state.current(60_000 + 1_800_000).status == "open", "a snooze runs out"
    resolved = apply_action(OPEN, _act("resolve"), 9000).state
    assert apply_action(resolved, _act("take"), 9100) is None
    assert apply_action(resolved, _act("comment", note="post-mortem"), 9100) is not None


POLICY = Policy(
    name="p",
    levels=[
        Level(wait=60, targets=[Target(oncall=True)]),
        Level(wait=120, targets=[Target(user="boss")]),
    ],
)


@given(st.floats(0, 10_000), st.floats(1, 5_000), st.floats(0, 20_000))
def test_no_level_fires_while_snoozed_and_level_1_follows_it(snoozed_at, minutes_s, probe):
    """Snoozed at `snoozed_at` until `snoozed_at + minutes_s`: nothing is due before the end;
    after it, the chain starts over from level 1 (its wait counted from the end)."""
    until = snoozed_at + minutes_s
    state = EscalationState("p", "snoozed", 0.0, snoozed_until=until)
    now = snoozed_at + probe
    new, due, next_at = advance(POLICY, state, now)
    if now < until:
        assert due == [] and next_at == until and new.status == "snoozed"
    else:
        assert new.status == "open" and new.epoch == until
        assert [s.level for s in due] == [
            lv for lv, wait in ((0, 60), (1, 180)) if now >= until + wait
        ]
        if now < until + 60:
            assert next_at == until + 60


async def _post(base_url: str, token: str, incident: str, action: str, body=None):
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/api/v1/incidents/{incident}/{action}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as r,
    ):
        return r.status, await r.json()


async def test_notes_comments_and_take_reach_the_team_live_and_the_timeline(
    base_url, produce, token
):
    tenant = new_tenant()
    alice = await NodeClient.start(base_url, token(tenant, "alice"), ["websocket"])
    bob = await NodeClient.start(base_url, token(tenant, "bob"), ["polling"])
    try:
        await alice.connected()
        await bob.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "T-1", "major", site="s1"))
        await bob.wait_for(lambda m: m.get("name") == "incident_alert")
        ack = await alice.emit("incident_action", {"incident_id": "T-1", "action": "take"})
        assert ack["ok"] is True
        upd = await bob.wait_for(lambda m: m.get("name") == "incident_update")
        assert upd["data"]["assignee"] == "alice" and upd["data"]["by"] == "alice"
        status, _ = await _post(
            base_url, token(tenant, "alice"), "T-1", "comment", {"note": "fuel low"}
        )
        assert status == 202
        comment = await bob.wait_for(
            lambda m: m.get("name") == "incident_update" and "comment" in m["data"]
        )
        assert comment["data"]["comment"] == {"by": "alice", "text": "fuel low"}
        ack = await alice.emit(
            "incident_action",
            {"incident_id": "T-1", "action": "acknowledge", "note": "driving there"},
        )
        assert ack["ok"] is True
        acked = await bob.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"]["status"] == "acknowledged"
        )
        assert acked["data"]["note"] == "driving there"
        # too long, or a comment without text: refused, nothing broadcast
        too_long = await alice.emit(
            "incident_action", {"incident_id": "T-1", "action": "comment", "note": "x" * 2001}
        )
        assert too_long["ok"] is False and "2000" in too_long["error"]
        status, body = await _post(base_url, token(tenant), "T-1", "comment", {"note": "y" * 2001})
        assert status == 400 and "note" in body["error"]
        status, _ = await _post(base_url, token(tenant), "T-1", "comment")
        assert status == 400
        await asyncio.sleep(0.5)
        assert len(bob.events("incident_update")) == 3
        for _ in range(50):
            _, tl = await _timeline(base_url, token(tenant), "T-1")
            kinds = [e["kind"] for e in tl.get("timeline", [])]
            if "acknowledged" in kinds:
                break
            await asyncio.sleep(0.1)
        assert {"taken", "comment", "acknowledged"} <= set(kinds)
        entry = next(e for e in tl["timeline"] if e["kind"] == "comment")
        assert entry["by"] == "alice" and entry["comment"]["text"] == "fuel low"
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{base_url}/api/v1/incidents",
                headers={"Authorization": f"Bearer {token(tenant)}"},
            ) as r,
        ):
            listed = {i["incident_id"]: i for i in (await r.json())["incidents"]}
        assert listed["T-1"]["assignee"] == "alice" and listed["T-1"]["status"] == "acknowledged"
    finally:
        await alice.close()
        await bob.close()


async def test_snooze_stops_pages_and_unsnooze_rearms_from_level_1(base_url, produce, token):
    """The shipped test policy `fast` pages on-call 2 s after a critical at esc-site."""
    tenant = new_tenant()
    oncall = await NodeClient.start(base_url, token(tenant, "oc", ["oncall"]), ["websocket"])
    try:
        await oncall.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "Z-1", "critical", site="esc-site"))
        await produce(TOPIC_ALERTS, alert(tenant, "Z-2", "critical", site="esc-site"))
        await oncall.wait_count(lambda m: m.get("name") == "incident_alert", 2)
        ack = await oncall.emit(
            "incident_action", {"incident_id": "Z-1", "action": "snooze", "minutes": 5}
        )
        assert ack["ok"] is True
        upd = await oncall.wait_for(lambda m: m.get("name") == "incident_update")
        assert upd["data"]["status"] == "snoozed" and upd["data"]["until"]
        # the twin: Z-2, not snoozed, pages on time
        await oncall.wait_for(
            lambda m: m.get("name") == "escalation" and m["data"]["incident_id"] == "Z-2", 10
        )
        await asyncio.sleep(2.5)
        assert not [e for e in oncall.events("escalation") if e["incident_id"] == "Z-1"]
        started = time.monotonic()
        ack = await oncall.emit("incident_action", {"incident_id": "Z-1", "action": "unsnooze"})
        assert ack["ok"] is True
        page = await oncall.wait_for(
            lambda m: m.get("name") == "escalation" and m["data"]["incident_id"] == "Z-1", 10
        )
        assert page["data"]["level"] == 1 and time.monotonic() - started >= 1.5
        bad = await oncall.emit(
            "incident_action", {"incident_id": "Z-2", "action": "snooze", "minutes": 0}
        )
        assert bad["ok"] is False and "minutes" in bad["error"]
    finally:
        await oncall.close()


SNOOZE_POLICY = """\
policies:
  - name: one-level
    match: {severities: [critical]}
    levels:
      - {wait: 3s, targets: [{oncall: true}]}
"""


async def test_holder_sigkilled_while_snoozed_rearms_exactly_once(
    broker, redis_url, token, tmp_path
):
    """Two pipelines and a server on one Redis: an incident is snoozed for a minute before
    its first level, the scheduler holder is SIGKILLed, and at the snooze's end the
    survivor re-arms the chain: one `snooze_ended`, one level 1 (a minute, the shortest
    snooze the contract allows, made 5 s long by NOTIFY_SNOOZE_MINUTE_S)."""
    import asyncio

    import aiohttp
    import orjson
    from aiokafka import AIOKafkaProducer

    from notify_core.wire.events import TOPIC_ALERTS
    from tests.helpers import alert, new_tenant
    from tests.test_processes import cluster_env, escalation_leaders, spawn, stop, wait_ready
    from towerco_notify.embedded_broker import free_port

    (tmp_path / "escalation.yaml").write_text(SNOOZE_POLICY)
    # a snooze minute of 5 s: the same path (timers in Redis, the survivor re-arming)
    env = cluster_env(
        broker, redis_url, "snooze", NOTIFY_CONFIG_DIR=str(tmp_path), NOTIFY_SNOOZE_MINUTE_S="5"
    )
    ports = [free_port(), free_port(), free_port()]
    modes = ("pipeline", "pipeline", "server")
    procs = [
        await spawn(m, "--http-port", str(p), env=env) for m, p in zip(modes, ports, strict=True)
    ]
    tenant = new_tenant()
    oc = token(tenant, "oc", ["oncall", "operator"])
    server = f"http://127.0.0.1:{ports[2]}"

    async def call(method: str, path: str, body: object = None) -> tuple[int, dict]:
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method, f"{server}{path}", json=body, headers={"Authorization": f"Bearer {oc}"}
            ) as r,
        ):
            return r.status, await r.json()

    async def kinds() -> list[str]:
        return [
            e["kind"]
            for e in (await call("GET", "/api/v1/incidents/SZ-1/timeline"))[1].get("timeline", [])
        ]

    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_ready(port, proc)
        leaders = await escalation_leaders(ports[:2])
        assert len(leaders) == 1
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        await producer.send_and_wait(
            TOPIC_ALERTS, orjson.dumps(alert(tenant, "SZ-1", site="sz")), key=tenant.encode()
        )
        await producer.stop()
        for _ in range(100):
            if (await call("GET", "/api/v1/incidents?status=open"))[1].get("incidents"):
                break
            await asyncio.sleep(0.1)
        status, _ = await call("POST", "/api/v1/incidents/SZ-1/snooze", {"minutes": 1})
        assert status == 202
        for _ in range(100):
            if "snoozed" in await kinds():
                break
            await asyncio.sleep(0.1)
        procs[leaders[0]].kill()  # SIGKILL while snoozed
        await procs[leaders[0]].wait()
        await asyncio.sleep(2)  # the snooze lasts 5 s, level 1 comes 3 s after it
        assert "notified" not in await kinds(), "no level fires while snoozed"
        for _ in range(300):  # the snooze's end, then level 1's 3 s
            if "notified" in await kinds():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(4.0)  # a second level 1 would be here by now
        found = await kinds()
        assert found.count("notified") == 1, found
        assert found.count("snooze_ended") == 1
        assert found.index("snooze_ended") < found.index("notified")
    finally:
        for proc in procs:
            if proc.returncode is None:
                await stop(proc)
