"""Quiet during maintenance: the pure suppression rule (windows with time zones, midnight
and DST; silences; site-down inhibition) with the clock passed in, and end to end through
the real broker and Redis: alerts are delivered with `suppressed`, pages are held back, and
when the reason ends the chain starts from level 1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from notify_core.suppression.policy import Notice, Silence, State, Window, mutes
from notify_core.wire.events import TOPIC_ALERTS, TOPIC_SITES
from tests.helpers import NodeClient, alert, envelope, new_tenant


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


NIGHT = Window(
    "w1", "t", frozenset({"s1"}), start=time(22, 0), end=time(2, 0), timezone="Europe/Berlin"
)


def test_a_nightly_window_crosses_midnight_in_its_time_zone():
    assert NIGHT.active_until(ts("2026-06-10T23:30:00+02:00")) == ts("2026-06-11T02:00:00+02:00")
    assert NIGHT.active_until(ts("2026-06-11T01:30:00+02:00")) == ts("2026-06-11T02:00:00+02:00")
    assert NIGHT.active_until(ts("2026-06-11T03:00:00+02:00")) is None
    assert NIGHT.active_until(ts("2026-06-10T21:59:59+02:00")) is None


def test_a_window_over_a_dst_change_keeps_wall_clock_times():
    works = Window(
        "w2", "t", frozenset({"s1"}), start=time(1, 0), end=time(4, 0), timezone="Europe/Berlin"
    )
    # 2026-03-29: clocks go 02:00 -> 03:00 in Berlin; 01:00 CET to 04:00 CEST is 2 hours
    start = ts("2026-03-29T01:00:00+01:00")
    until = works.active_until(start + 60)
    assert until == ts("2026-03-29T04:00:00+02:00") and until - start == 2 * 3600
    weekly = works._replace(days=("sat",))  # 2026-03-29 is a Sunday
    assert weekly.active_until(start + 60) is None


@given(st.floats(ts("2026-01-01T00:00:00+00:00"), ts("2027-01-01T00:00:00+00:00")))
def test_a_window_covers_now_only_until_its_end(now):
    until = NIGHT.active_until(now)
    if until is not None:
        assert now < until <= now + 4 * 3600 + 1
        local = datetime.fromtimestamp(now, UTC).astimezone(
            __import__("zoneinfo").ZoneInfo("Europe/Berlin")
        )
        assert local.time() >= time(22, 0) or local.time() < time(2, 0)


def test_reasons_in_order_and_inhibition_spares_critical():
    n = Notice("t", "I-1", "s1", "major")
    silence = Silence("x1", "t", {"severity": "major"}, 0, 10_000)
    assert mutes(n, State({}), 100) is None
    assert mutes(n, State({("t", "s1"): "maintenance"}), 100).by == "maintenance"
    assert mutes(n, State({}, silences=(silence,)), 100).id == "x1"
    assert mutes(n, State({}, silences=(silence,)), 20_000) is None, "a silence ends"
    assert mutes(n._replace(tenant_id="u"), State({}, silences=(silence,)), 100) is None
    down = State({("t", "s1"): "down"})
    assert mutes(n, down, 100).by == "inhibition"
    assert mutes(n._replace(severity="critical"), down, 100) is None, "critical still pages"
    threshold = n._replace(severity="critical", source="threshold")
    assert mutes(threshold, down, 100).by == "inhibition"
    one_time = Window("w3", "t", frozenset({"s1"}), starts_at=50, ends_at=500)
    assert mutes(n, State({}, windows=(one_time,)), 100).until == 500
    assert mutes(n, State({}, windows=(one_time,)), 600) is None


async def _http(base_url, token, method, path, body=None):
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{base_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as r,
    ):
        return r.status, await r.json()


async def test_suppressed_alerts_are_delivered_quietly_with_the_reason(base_url, produce, token):
    tenant = new_tenant()
    op = token(tenant, "op", ["operator"])
    client = await NodeClient.start(base_url, op, ["websocket"])
    try:
        await client.connected()
        status, window = await _http(
            base_url,
            op,
            "POST",
            "/api/v1/maintenance",
            {
                "site_ids": ["m1"],
                "ends_at": datetime.now(UTC).timestamp() + 600,
                "reason": "rectifier swap",
            },
        )
        assert status == 201 and window["id"]
        status, silence = await _http(
            base_url,
            op,
            "POST",
            "/api/v1/silences",
            {
                "matchers": {"severity": "warning"},
                "ends_at": datetime.now(UTC).timestamp() + 600,
                "comment": "noisy",
            },
        )
        assert status == 201
        await produce(TOPIC_SITES, envelope(tenant, {"status": "down"}, site="d1"))
        await asyncio.sleep(1.5)  # every process sees them within a second
        for incident, severity, site in (
            ("A-maint", "critical", "m1"),
            ("A-silenced", "warning", "x1"),
            ("A-inhibited", "major", "d1"),
            ("A-pages", "critical", "d1"),
            ("A-plain", "major", "x1"),
        ):
            await produce(TOPIC_ALERTS, alert(tenant, incident, severity, site=site))
        got = await client.wait_count(lambda m: m.get("name") == "incident_alert", 5)
        by_id = {e["data"]["incident"]["incident_id"]: e["data"]["suppressed"] for e in got}
        assert by_id["A-maint"]["by"] == "maintenance" and by_id["A-maint"]["id"] == window["id"]
        assert by_id["A-maint"]["until"]
        assert by_id["A-silenced"] == {
            "by": "silence",
            "id": silence["id"],
            "until": silence["ends_at"],
        }
        assert by_id["A-inhibited"]["by"] == "inhibition"
        assert by_id["A-pages"] is None and by_id["A-plain"] is None, "the twins are not quiet"
        status, listed = await _http(base_url, op, "GET", "/api/v1/maintenance")
        assert [w["id"] for w in listed["windows"]] == [window["id"]]
        status, listed = await _http(base_url, op, "GET", "/api/v1/silences")
        assert [s["id"] for s in listed["silences"]] == [silence["id"]]
        # refused: no role, another site for a restricted user, a window in the past
        assert (
            await _http(
                base_url,
                token(tenant, "v", []),
                "POST",
                "/api/v1/silences",
                {"matchers": {"kpi": "x"}, "ends_at": 9e9},
            )
        )[0] == 403
        assert (
            await _http(
                base_url,
                token(tenant, "r", sites=["s1"]),
                "POST",
                "/api/v1/maintenance",
                {"site_ids": ["s2"], "ends_at": 9e9},
            )
        )[0] == 403
        assert (
            await _http(
                base_url, op, "POST", "/api/v1/maintenance", {"site_ids": ["s2"], "ends_at": 10}
            )
        )[0] == 400
        assert (
            await _http(
                base_url, token(new_tenant()), "DELETE", f"/api/v1/silences/{silence['id']}"
            )
        )[0] == 404
    finally:
        await client.close()


async def test_no_page_in_maintenance_and_level_1_when_it_ends(base_url, produce, token):
    """The shipped test policy `fast` pages on-call 2 s after a critical at esc-site."""
    tenant = new_tenant()
    op = token(tenant, "oc", ["oncall", "operator"])
    client = await NodeClient.start(base_url, op, ["websocket"])
    try:
        await client.connected()
        status, window = await _http(
            base_url,
            op,
            "POST",
            "/api/v1/maintenance",
            {"site_ids": ["esc-site"], "ends_at": datetime.now(UTC).timestamp() + 600},
        )
        assert status == 201
        await asyncio.sleep(1.5)
        await produce(TOPIC_ALERTS, alert(tenant, "MW-1", "critical", site="esc-site"))
        first = await client.wait_for(lambda m: m.get("name") == "incident_alert")
        assert first["data"]["suppressed"]["by"] == "maintenance"
        await asyncio.sleep(3.5)
        assert client.events("escalation") == [], "no level fires while in maintenance"
        status, _ = await _http(base_url, op, "DELETE", f"/api/v1/maintenance/{window['id']}")
        assert status == 200
        unmuted = await client.wait_for(
            lambda m: m.get("name") == "incident_update" and "suppressed" in m["data"], 15
        )
        assert unmuted["data"]["suppressed"] is None and unmuted["data"]["status"] == "open"
        page = await client.wait_for(lambda m: m.get("name") == "escalation", 10)
        assert page["data"]["level"] == 1 and page["data"]["incident_id"] == "MW-1"
    finally:
        await client.close()


async def test_a_storm_at_one_site_is_one_page_listing_every_incident(base_url, produce, token):
    """The test policy `storm` groups by site with group_wait 1s: ten criticals at once are
    one chain; its page lists them all; acknowledging every one of them stops the chain."""
    tenant = new_tenant()
    op = token(tenant, "oc", ["oncall", "operator"])
    client = await NodeClient.start(base_url, op, ["websocket"])
    try:
        await client.connected()
        ids = [f"ST-{n}" for n in range(10)]
        for ident in ids:
            await produce(TOPIC_ALERTS, alert(tenant, ident, "critical", site="storm-site"))
        page = await client.wait_for(lambda m: m.get("name") == "escalation", 15)
        assert page["data"]["level"] == 1 and sorted(page["data"]["incidents"]) == sorted(ids)
        await asyncio.sleep(0.5)
        assert len(client.events("escalation")) == 1, "one page for the storm, not ten"
        for ident in ids:
            status, _ = await _http(base_url, op, "POST", f"/api/v1/incidents/{ident}/acknowledge")
            assert status == 202
        await client.wait_count(lambda m: m.get("name") == "incident_update", 10)
        await asyncio.sleep(3.0)  # level 2 was due 2 s after level 1
        assert len(client.events("escalation")) == 1, "acknowledging every incident stopped it"
    finally:
        await client.close()


async def test_explain_says_what_quiets_an_incident_on_the_live_state(
    base_url, token, daemon, redis_url
):
    """`explain --site` decides on the running deployment's windows and silences (Redis)."""
    import subprocess

    from tests.helpers import cli_env, python_bin

    tenant = new_tenant()
    op = token(tenant, "op", ["operator"])
    status, silence = await _http(
        base_url,
        op,
        "POST",
        "/api/v1/silences",
        {"matchers": {"site_id": "ex-1"}, "ends_at": "2099-01-01T00:00:00Z", "comment": "works"},
    )
    assert status == 201

    def explain(site: str) -> str:
        done = subprocess.run(
            [
                python_bin(), "-m", "towerco_notify.cli", "explain", "--tenant", tenant,
                "--site", site, "--severity", "major", "--redis-url", redis_url,
                "--redis-prefix", daemon.settings.redis_prefix,
                "--config-dir", str(daemon.settings.config_dir),
                *(["--redis-cluster"] if daemon.settings.redis_cluster else []),
            ],
            capture_output=True, text=True, env=cli_env(), timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    quiet = explain("ex-1")
    assert f"suppressed by silence ({silence['id']}) until 2099-01-01T00:00:00Z" in quiet
    assert "not suppressed" in explain("ex-2")  # the other site pages


def test_the_index_decides_as_a_scan_of_every_window_and_silence():
    """Property: the indexed decision (what the stores use) equals a plain scan."""
    from notify_core.suppression.policy import Index

    sites = ["s1", "s2", "s3"]
    windows = st.builds(
        lambda i, ss, a, d: Window(f"w{i}", "t", frozenset(ss), a, a + d),
        st.integers(0, 5), st.sets(st.sampled_from(sites), min_size=1), st.integers(0, 100),
        st.integers(1, 100),
    )  # fmt: skip
    silences = st.builds(
        lambda i, m, a, d: Silence(f"x{i}", "t", m, a, a + d),
        st.integers(0, 5),
        st.dictionaries(
            st.sampled_from(["site_id", "incident_id", "severity"]),
            st.sampled_from(["s1", "I1", "minor"]),
            max_size=2,
        ),
        st.integers(0, 100), st.integers(1, 100),
    )  # fmt: skip

    @given(
        st.lists(windows, max_size=4), st.lists(silences, max_size=4),
        st.sampled_from([None, "s1", "s2"]), st.sampled_from(["I1", "I2"]),
        st.sampled_from(["minor", "critical"]), st.integers(0, 200),
    )  # fmt: skip
    def check(ws, xs, site, incident, severity, now):
        state = State({("t", "s2"): "down"}, tuple(ws), tuple(xs))
        n = Notice("t", incident, site, severity)
        got = Index(state).mutes(n, now)
        covering = [(w.active_until(now), w.id) for w in ws if site in w.site_ids]
        covering = [c for c in covering if c[0] is not None]
        if site is not None and covering:
            assert got is not None and got.by == "maintenance"
            assert (got.until, got.id) == max(covering)
            return
        matching = [x for x in xs if x.matches(n, now)]
        if matching:
            assert got is not None and got.by == "silence"
            assert got.until == max(x.ends_at for x in matching)
            return
        if site == "s2" and severity != "critical":
            assert got is not None and got.by == "inhibition"
        else:
            assert got is None

    check()


MAINT_POLICY = """\
policies:
  - name: one-level
    match: {severities: [critical]}
    levels:
      - {wait: 1s, targets: [{oncall: true}]}
"""


async def test_holder_killed_while_a_window_ends_one_level_1_afterwards(
    broker, redis_url, token, tmp_path
):
    """Two pipelines share Redis; a critical incident arrives in a maintenance window, the
    scheduler holder is SIGKILLed before the window ends: the survivor takes the chain
    over and level 1 fires exactly once after the window."""
    from tests.test_processes import cluster_env, escalation_leaders, spawn, stop, wait_ready
    from towerco_notify.embedded_broker import free_port

    (tmp_path / "escalation.yaml").write_text(MAINT_POLICY)
    env = cluster_env(broker, redis_url, "maint", NOTIFY_CONFIG_DIR=str(tmp_path))
    ports = [free_port(), free_port()]
    procs = [await spawn("pipeline", "--http-port", str(p), env=env) for p in ports]
    tenant = new_tenant()
    op = token(tenant, "op", ["operator", "oncall"])
    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_ready(port, proc)
        leaders = await escalation_leaders(ports)
        assert len(leaders) == 1
        holder, survivor = leaders[0], 1 - leaders[0]
        base = f"http://127.0.0.1:{ports[survivor]}"
        ends = datetime.now(UTC).timestamp() + 8
        status, _ = await _http(
            base, op, "POST", "/api/v1/maintenance", {"site_ids": ["mk-1"], "ends_at": ends}
        )
        assert status == 201
        await asyncio.sleep(1.5)
        import orjson
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        await producer.send_and_wait(
            TOPIC_ALERTS, orjson.dumps(alert(tenant, "MK-1", site="mk-1")), key=tenant.encode()
        )
        await producer.stop()

        async def kinds() -> list[str]:
            _, body = await _http(base, op, "GET", "/api/v1/incidents/MK-1/timeline")
            return [e["kind"] for e in body.get("timeline", [])]

        for _ in range(100):  # held back by the window (the level was due after 1 s)
            if "suppressed" in await kinds():
                break
            await asyncio.sleep(0.1)
        assert "notified" not in await kinds()
        procs[holder].kill()  # SIGKILL while suppressed, before the window ends
        await procs[holder].wait()
        for _ in range(300):
            if "notified" in await kinds():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.0)  # anything more would be a second level 1
        found = await kinds()
        assert found.count("notified") == 1, found
        assert found.index("suppression_ended") < found.index("notified")
        assert datetime.now(UTC).timestamp() >= ends
    finally:
        for proc in procs:
            if proc.returncode is None:
                await stop(proc)


async def test_maintenance_from_the_site_topic_is_in_the_audit_trail(base_url, produce, token):
    tenant = new_tenant()
    admin = token(tenant, "boss", ["admin"])
    await produce(TOPIC_SITES, envelope(tenant, {"status": "maintenance"}, site="au-1"))
    await produce(TOPIC_SITES, envelope(tenant, {"status": "maintenance"}, site="au-1"))
    await produce(TOPIC_SITES, envelope(tenant, {"status": "up"}, site="au-1"))
    await produce(TOPIC_SITES, envelope(tenant, {"status": "down"}, site="au-2"))
    records: list = []
    for _ in range(100):
        _, body = await _http(base_url, admin, "GET", "/api/v1/audit")
        records = [r for r in body["records"] if r["action"].startswith("maintenance_")]
        if len(records) >= 2:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    _, body = await _http(base_url, admin, "GET", "/api/v1/audit")
    records = [r for r in body["records"] if r["action"].startswith("maintenance_")]
    # one start (a repeated status is not a new window), one end; au-2 going down is neither
    assert [(r["action"], r["target"], r["source"]) for r in records] == [
        ("maintenance_start", "status:au-1", "kafka"),
        ("maintenance_end", "status:au-1", "kafka"),
    ]


async def test_windows_and_silences_that_lapse_are_in_the_audit_trail(base_url, token):
    """Nobody ends them: the daemon records the end once (source config), beside the
    records of their creation."""
    tenant = new_tenant()
    op, admin = token(tenant, "op", ["operator"]), token(tenant, "boss", ["admin"])
    soon = datetime.now(UTC).timestamp() + 2
    status, window = await _http(
        base_url, op, "POST", "/api/v1/maintenance", {"site_ids": ["lp-1"], "ends_at": soon}
    )
    assert status == 201
    status, silence = await _http(
        base_url, op, "POST", "/api/v1/silences", {"matchers": {"site_id": "lp-2"}, "ends_at": soon}
    )
    assert status == 201
    wanted = {("maintenance_end", window["id"]), ("silence_expire", silence["id"])}
    found: list = []
    for _ in range(150):
        _, body = await _http(base_url, admin, "GET", "/api/v1/audit")
        found = body["records"]
        if wanted <= {(r["action"], r["target"]) for r in found}:
            break
        await asyncio.sleep(0.1)
    got = [(r["action"], r["target"], r["source"]) for r in found]
    assert ("maintenance_start", window["id"], "http") in got
    assert ("silence_create", silence["id"], "http") in got
    assert ("maintenance_end", window["id"], "config") in got
    assert ("silence_expire", silence["id"], "config") in got
    lapsed = [r for r in found if r["source"] == "config"]
    assert len(lapsed) == 2 and all(r["reason"] == "ended on schedule" for r in lapsed)
