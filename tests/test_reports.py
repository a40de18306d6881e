"""How the NOC is doing: the response report (notify_core/reports.py, pure and
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

from notify_core.events import TOPIC_ALERTS
from notify_core.reports import GROUP_BY, Handled, response_report
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
