"""How the NOC is doing: the response report (notify_core/reports/summary.py, pure and
property-tested) through the session daemon."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from hypothesis import given
from hypothesis import strategies as st

from notify_core.reports.summary import GROUP_BY, Handled, response_report
from notify_core.wire.events import TOPIC_ALERTS
from tests.helpers import NodeClient, alert, new_tenant

times = st.integers(0, 10**7)
handled = st.builds(
    lambda i, site, sev, opened, ack, res, pages: Handled(
        f"i{i}",
        site,
        None,
        sev,
        None,
        None,
        opened,
        None if ack is None else opened + ack,
        None if res is None else opened + res,
        pages,
    ),
    st.integers(0, 10**6),
    st.sampled_from(["a", "b", None]),
    st.sampled_from(["critical", "major"]),
    times,
    st.one_of(st.none(), times),
    st.one_of(st.none(), times),
    st.integers(0, 5),
)


@given(items=st.lists(handled, max_size=40), group_by=st.sampled_from(GROUP_BY))
def test_groups_add_up_and_percentiles_are_ordered(items, group_by):
    groups = response_report(items, group_by)
    assert sum(g["incidents"] for g in groups) == len(items)
    assert sum(g["pages"] for g in groups) == sum(i.pages for i in items)
    for g in groups:
        assert g["acknowledged"] <= g["incidents"] and g["resolved"] <= g["incidents"]
        assert g["escalated"] <= g["incidents"]
        for times_s in (g["mtta_s"], g["mttr_s"]):
            if times_s["p50"] is not None:
                assert times_s["p50"] <= times_s["p90"]


def test_an_incident_resolved_unacknowledged_counts_its_resolve_time():
    item = Handled("i", "s", None, "major", None, None, 1_000, None, 61_000, 0)
    [group] = response_report([item], "site")
    assert group["mtta_s"]["p50"] == 60.0 and group["mttr_s"]["p50"] == 60.0
    assert group["acknowledged"] == 0 and group["resolved"] == 1
    still_open = Handled("j", "s", None, "major", None, None, 1_000, None, None, 0)
    [group] = response_report([item, still_open], "site")
    assert group["incidents"] == 2 and group["mttr_s"]["mean"] == 60.0  # open: no times


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _report(base_url: str, tok: str, query: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}/api/v1/reports/response?{query}",
            headers={"Authorization": f"Bearer {tok}"},
        ) as r,
    ):
        return r.status, await r.json()


async def test_the_response_report_through_the_daemon(base_url, produce, token, daemon):
    tenant = new_tenant()
    oc = await NodeClient.start(
        base_url, token(tenant, "oc", ["oncall", "operator"]), ["websocket"]
    )
    try:
        await oc.connected()
        for ident, sev, site in (("P-1", "critical", "esc-site"), ("P-2", "major", "plain"),
                                 ("P-3", "minor", "plain")):  # fmt: skip
            await produce(
                TOPIC_ALERTS, {**alert(tenant, ident, sev, site=site), "timestamp": _now()}
            )
        await oc.wait_for(lambda m: m.get("name") == "escalation", 15)  # P-1 paged (2 s)
        await oc.emit("incident_action", {"incident_id": "P-1", "action": "acknowledge"})
        await oc.emit("incident_action", {"incident_id": "P-2", "action": "resolve"})
        await oc.wait_count(lambda m: m.get("name") == "incident_update", 2, 10)
        admin = token(tenant, "boss", ["admin"])
        groups: dict[str, Any] = {}
        for _ in range(50):
            status, body = await _report(base_url, admin, "group_by=site")
            assert status == 200
            groups = {g["key"]: g for g in body["groups"]}
            if groups.get("plain", {}).get("resolved") == 1 and groups["esc-site"]["acknowledged"]:
                break
            await asyncio.sleep(0.1)
        esc, plain = groups["esc-site"], groups["plain"]
        assert (esc["incidents"], esc["acknowledged"], esc["escalated"]) == (1, 1, 1)
        assert esc["pages"] >= 1 and esc["mtta_s"]["p50"] >= 1.5  # acknowledged after the page
        assert (plain["incidents"], plain["acknowledged"], plain["resolved"]) == (2, 0, 1)
        assert plain["mtta_s"]["p50"] == plain["mttr_s"]["p50"]  # resolved unacknowledged
        by_user = {
            g["key"]: g for g in (await _report(base_url, admin, "group_by=user"))[1]["groups"]
        }
        assert by_user["oc"]["incidents"] == 2 and by_user["-"]["incidents"] == 1
        # the same from the shell, read from the daemon's Redis
        s = daemon.settings
        argv = ["report", "--redis-url", s.redis_url, "--redis-prefix", s.redis_prefix,
                "--tenant", tenant, "--since", "1h", "--json"]  # fmt: skip
        if s.redis_cluster:
            argv.append("--redis-cluster")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "towerco_notify", *argv, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        printed = orjson.loads(out)
        assert {g["key"]: g["incidents"] for g in printed["groups"]} == {"esc-site": 1, "plain": 2}
        # an admin restricted to some sites sees only theirs
        narrow = token(tenant, "site-boss", ["admin"], sites=["plain"])
        _, body = await _report(base_url, narrow, "group_by=site")
        assert [g["key"] for g in body["groups"]] == ["plain"]
        # the attacker's side: not an admin, another tenant's admin, a bad group
        assert (await _report(base_url, token(tenant, "op", ["operator"]), ""))[0] == 403
        status, body = await _report(base_url, token(new_tenant(), "x", ["admin"]), "")
        assert status == 200 and body["groups"] == []
        status, body = await _report(base_url, admin, "group_by=planet")
        assert status == 400 and body["error"].startswith("group_by")
    finally:
        await oc.close()


async def test_the_archive_records_resolves_and_reports_a_span_the_live_store_forgot(
    redis_client,
):
    """Marks become records from the stored state and timeline; a mark whose resolve is
    not written yet waits (and one re-opened long ago is dropped); `collect` reports a
    resolved incident from its record once the live store has let it go, and the live
    state wins for an incident open again. Memory and Redis alike."""
    import time as _time
    import uuid

    from notify_core.reports.archive import Archiver, MemoryArchive, RedisArchive
    from notify_core.reports.summary import collect
    from notify_core.state.incidents import IncidentState, MemoryIncidentStore, RedisIncidentStore
    from notify_core.state.timeline import MemoryTimeline, RedisTimeline

    redis = redis_client
    prefix = f"archive-test-{uuid.uuid4().hex[:6]}:"
    try:
        for archive, incidents, timeline in (
            (MemoryArchive(), MemoryIncidentStore(), MemoryTimeline()),
            (
                RedisArchive(redis, prefix),
                RedisIncidentStore(redis, prefix),
                RedisTimeline(redis, prefix),
            ),
        ):
            tenant = new_tenant()
            base = int(_time.time() * 1000) - 86_400_000

            def state(status: str, opened: int, acked: int | None, resolved: int | None) -> Any:
                return IncidentState(
                    "s1",
                    "critical",
                    status,
                    resolved,
                    "t",
                    opened,
                    "ann" if acked else None,
                    None,
                    None,
                    None,
                    acked,
                )

            await incidents.put(
                tenant, "A-1", state("resolved", base, base + 60_000, base + 120_000)
            )
            await timeline.add(tenant, "A-1", "escalation_started", policy="critical-default")
            await timeline.add(tenant, "A-1", "notified", level=1)
            await incidents.put(tenant, "A-2", state("open", base + 1000, None, None))  # in flight
            await archive.mark(tenant, "A-1")
            await archive.mark(tenant, "A-2")
            await archive.mark(tenant, "A-3", _time.time() - 3600)  # never stored: dropped
            archiver = Archiver(archive, incidents, timeline, lambda t, s: "north")
            assert await archiver.round() == 3
            [rec] = await archive.span(tenant, base - 1, base + 10_000)
            assert (rec.incident_id, rec.policy, rec.pages, rec.region) == (
                "A-1",
                "critical-default",
                1,
                "north",
            )
            assert (rec.acknowledged_ms, rec.resolved_ms, rec.user) == (
                base + 60_000,
                base + 120_000,
                "ann",
            )
            assert [m.incident_id for m in await archive.claim(10)] == ["A-2"]  # waits, once
            # the live store lets A-1 go (30 days, newest 10 000): the record reports it
            gone = MemoryIncidentStore()
            await gone.put(tenant, "A-2", state("open", base + 1000, None, None))
            items = await collect(
                gone, timeline, lambda t, s: None, tenant, base - 1, base + 10_000, archive=archive
            )
            by_id = {i.incident_id: i for i in items}
            assert set(by_id) == {"A-1", "A-2"} and by_id["A-1"].ttr_s == 120.0
            assert by_id["A-2"].resolved_ms is None
            # without the archive, as before this store existed: A-1 is not in the report
            assert {
                i.incident_id
                for i in await collect(
                    gone, timeline, lambda t, s: None, tenant, base - 1, base + 10_000
                )
            } == {"A-2"}
            # A-1 open again: the live state wins over its record
            await gone.put(tenant, "A-1", state("open", base, None, None))
            items = await collect(
                gone, timeline, lambda t, s: None, tenant, base - 1, base + 10_000, archive=archive
            )
            assert {i.incident_id: i.resolved_ms for i in items} == {"A-1": None, "A-2": None}
    finally:
        for key in [k async for k in redis.scan_iter(match=f"{prefix}*")]:
            await redis.delete(key)


async def test_a_resolve_through_the_pipeline_is_archived_and_outlives_the_live_store(
    base_url, produce, token, daemon
):
    tenant = new_tenant()
    oc = await NodeClient.start(base_url, token(tenant, "oc", ["operator"]), ["websocket"])
    try:
        await oc.connected()
        await produce(
            TOPIC_ALERTS, {**alert(tenant, "AR-1", "major", site="s1"), "timestamp": _now()}
        )
        await oc.wait_for(lambda m: m.get("name") == "incident_alert", 10)
        await oc.emit("incident_action", {"incident_id": "AR-1", "action": "resolve"})
        await oc.wait_for(lambda m: m.get("name") == "incident_update", 10)
        now_ms = int(datetime.now(UTC).timestamp() * 1000)

        async def archived() -> bool:
            return any(
                r.incident_id == "AR-1"
                for r in await daemon.stores.archive.span(tenant, 0, now_ms + 1)
            )

        for _ in range(200):  # the archiver's round: every 5 s
            if await archived():
                break
            await asyncio.sleep(0.1)
        assert await archived()
        # the live store forgets it (as after 30 days): the report still counts it
        from notify_core.redis.keys import RedisKeys

        keys = RedisKeys(daemon.settings.redis_prefix)
        await daemon.stores.redis.zrem(keys.incident_index(tenant, True), "AR-1")
        status, body = await _report(base_url, token(tenant, "boss", ["admin"]), "group_by=site")
        assert status == 200
        [group] = body["groups"]
        assert (group["key"], group["incidents"], group["resolved"]) == ("s1", 1, 1)
        assert group["mttr_s"]["p50"] is not None
    finally:
        await oc.close()
