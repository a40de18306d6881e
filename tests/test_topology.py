"""Sites and topology: one page for a hub's outage, none per tower behind it.

The decision is the pure muter (notify_core/suppression/policy.py) with the inventory's
dependencies, property-tested over random dependency graphs; the rest runs through the
session daemon, whose sites.yaml (tests/conftest.py SITES) has tenant `topo-acme`:
hub-1 <- t-1 <- t-2 in region north, t-9 alone in region south.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify_core.config_yaml import ConfigInvalid
from notify_core.sites_config import Inventory, Site, dump_sites, parse_sites
from notify_core.suppression.policy import Index, Notice, State
from notify_core.wire.events import TOPIC_ALERTS, TOPIC_SITES
from tests.helpers import NodeClient, alert, envelope

TENANT = "topo-acme"


def chain_inventory(parents: list[int | None]) -> Inventory:
    """Site i depends on parents[i] (always an earlier site: no cycle)."""
    return Inventory(
        Site(tenant="t", id=f"s{i}", depends_on=(f"s{p}",) if p is not None else ())
        for i, p in enumerate(parents)
    )


graphs = st.integers(1, 12).flatmap(
    lambda n: st.tuples(
        *[st.one_of(st.none(), st.integers(0, i - 1)) if i else st.none() for i in range(n)]
    )
)


@given(
    parents=graphs,
    down=st.sets(st.integers(0, 11)),
    site=st.integers(0, 11),
    opened=st.floats(0, 2000),
    since=st.floats(0, 2000),
)
def test_an_incident_is_quiet_exactly_when_a_parent_went_down_around_it(
    parents, down, site, opened, since
):
    n = len(parents)
    site %= n
    inventory = chain_inventory(list(parents))
    status = {("t", f"s{i}"): "down" for i in down if i < n}
    begun = {key: since for key in status}
    state = State(status, site_down=False, topology=inventory, status_since=begun)
    muted = Index(state).mutes(Notice("t", "x", f"s{site}", "critical", opened_at=opened), 5000)
    ancestors = inventory.ancestors("t", f"s{site}")
    down_above = [a for a in ancestors if ("t", a) in status]
    if not down_above or opened < since - 300:
        assert muted is None  # no parent down, or opened well before it went down
    else:
        assert muted is not None and muted.by == "topology"
        assert muted.id == down_above[0]  # the nearest one down
        assert muted.until is None  # until the parent reports otherwise


def test_inventory_errors_name_file_line_site_and_field():
    text = """\
version: 1
sites:
  - {tenant: a, id: hub, lat: -0.3}
  - {tenant: a, id: s1, depends_on: [s2]}
  - {tenant: a, id: s2, depends_on: [s1]}
"""
    with pytest.raises(ConfigInvalid) as err:
        parse_sites(text, "sites.yaml")
    assert "sites.yaml:3: site hub: -: give lat and lon both, or neither" in str(err.value)
    fixed = text.replace("lat: -0.3", "lat: -0.3, lon: 36.0")
    with pytest.raises(ConfigInvalid) as err:
        parse_sites(fixed, "sites.yaml")
    assert "sites.yaml:5: site s2: depends_on: cycle: s1 -> s2 -> s1" in str(err.value)
    fine = fixed.replace("depends_on: [s1]", "depends_on: [hub]")
    inventory = parse_sites(fine)
    assert inventory.ancestors("a", "s1") == ("s2", "hub")
    assert inventory.dependents("a", "hub") == ["s2", "s1"]
    # the generated form (JSON, which is YAML too) reads back the same
    again = parse_sites(dump_sites(inventory.of_tenant("a"), "generated"))
    assert [s.view() for s in again.of_tenant("a")] == [s.view() for s in inventory.of_tenant("a")]


async def _http(base_url: str, tok: str, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}{path}", headers={"Authorization": f"Bearer {tok}"}) as r,
    ):
        return r.status, await r.json()


def _alert_of(client: NodeClient, incident: str) -> dict:
    return next(
        e for e in client.events("incident_alert") if e["incident"]["incident_id"] == incident
    )


async def test_a_hub_outage_pages_once_and_its_towers_follow_it(base_url, produce, token):
    tok = token(TENANT, "oc", ["oncall", "operator"])
    client = await NodeClient.start(base_url, tok, ["websocket"])
    try:
        await client.connected()
        await produce(TOPIC_SITES, envelope(TENANT, {"status": "down"}, site="hub-1"))
        for ident, site in (("HUB", "hub-1"), ("T1", "t-1"), ("T2", "t-2"), ("T9", "t-9")):
            await produce(TOPIC_ALERTS, alert(TENANT, ident, "critical", site=site))
        await client.wait_count(lambda m: m.get("name") == "incident_alert", 4, 15)
        for ident in ("T1", "T2"):  # direct and transitive dependents: quiet, and why
            event = _alert_of(client, ident)
            assert event["suppressed"]["by"] == "topology" and event["caused_by"] == "hub-1"
        assert _alert_of(client, "T9")["suppressed"] is None  # the unrelated site: pages
        pages = await client.wait_count(lambda m: m.get("name") == "escalation", 2, 15)
        await asyncio.sleep(1.0)  # a page for T1 or T2 would be here by now
        paged = {e["incident_id"]: e for e in client.events("escalation")}
        assert set(paged) == {"HUB", "T9"}, [p["data"]["incident_id"] for p in pages]
        assert paged["HUB"]["affected_sites"] == ["t-1", "t-2"]
        assert paged["T9"]["policy"] == "region-south"  # routed by the site's region
        _, body = await _http(base_url, tok, "/api/v1/incidents")
        rows = {r["incident_id"]: r for r in body["incidents"]}
        assert rows["T2"]["caused_by"] == "hub-1" and rows["HUB"]["affected_sites"] == [
            "t-1",
            "t-2",
        ]
        # T2 is acknowledged meanwhile; the hub comes back: T1 (open) pages from level 1
        await client.emit("incident_action", {"incident_id": "T2", "action": "acknowledge"})
        await client.wait_for(
            lambda m: (
                m.get("name") == "incident_update"
                and m["data"]["incident_id"] == "T2"
                and m["data"]["status"] == "acknowledged"
            ),
            10,
        )
        await produce(TOPIC_SITES, envelope(TENANT, {"status": "up"}, site="hub-1"))
        page = await client.wait_for(
            lambda m: m.get("name") == "escalation" and m["data"]["incident_id"] == "T1", 20
        )
        assert page["data"]["level"] == 1
        await asyncio.sleep(1.0)
        assert "T2" not in {e["incident_id"] for e in client.events("escalation")}
    finally:
        await client.close()


async def test_sites_api_lists_the_inventory_under_the_visibility_rule(base_url, token):
    tok = token(TENANT, "op", ["operator"])
    status, body = await _http(base_url, tok, "/api/v1/sites?region=north")
    assert status == 200
    by_id = {s["id"]: s for s in body["sites"]}
    assert set(by_id) == {"hub-1", "t-1", "t-2"}
    assert by_id["t-1"]["name"] == "Njoro tower" and by_id["t-1"]["depends_on"] == ["hub-1"]
    assert by_id["hub-1"]["lat"] == -0.30
    status, one = await _http(base_url, tok, "/api/v1/sites/hub-1")
    assert status == 200 and one["dependents"] == ["t-1"] and one["region"] == "north"
    # a user restricted to t-9 sees t-9 only; another tenant sees none of them
    restricted = token(TENANT, "r", ["operator"], sites=["t-9"])
    status, body = await _http(base_url, restricted, "/api/v1/sites")
    assert [s["id"] for s in body["sites"]] == ["t-9"]
    assert (await _http(base_url, restricted, "/api/v1/sites/hub-1"))[0] == 404
    other = token("topo-other", "x", ["admin"])
    assert (await _http(base_url, other, "/api/v1/sites/hub-1"))[0] == 404
    status, body = await _http(base_url, other, "/api/v1/sites")
    assert status == 200 and "hub-1" not in {s["id"] for s in body["sites"]}


def test_sites_import_writes_what_the_daemon_loads_and_refuses_a_bad_csv(tmp_path, capsys):
    from towerco_notify.cli import main

    good = tmp_path / "export.csv"
    good.write_text(
        "tenant,id,name,region,lat,lon,depends_on\n"
        "acme,hub-7,Nakuru hub,west,-0.30,36.07,\n"
        "acme,s-17,Njoro tower,west,-0.33,35.94,hub-7\n"
        "acme,s-18,,west,,,hub-7;s-17\n"
    )
    out = tmp_path / "config" / "sites.yaml"
    assert main(["sites", "import", str(good), "-o", str(out)]) == 0
    inventory = parse_sites(out.read_text())
    assert inventory.ancestors("acme", "s-18") == ("hub-7", "s-17")
    assert inventory.get("acme", "s-17").name == "Njoro tower"
    shipped = Path(__file__).parent.parent / "config" / "thresholds.yaml"
    (out.parent / "thresholds.yaml").write_text(shipped.read_text())
    assert main(["check-config", str(out.parent)]) == 0
    assert "sites.yaml: OK (3 sites)" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("tenant,id,depends_on\nacme,a,\nacme,b,c\nacme,c,b\n")
    before = out.read_text()
    assert main(["sites", "import", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: site c: depends_on: cycle: b -> c -> b" in err
    assert out.read_text() == before  # nothing written


async def test_a_changed_inventory_is_reloaded_and_a_broken_one_refused(
    broker, redis_url, tmp_path, token
):
    """A `server` process on its own config directory: sites.yaml rewritten, the reload
    puts the new regions in force; a file with a cycle is refused and the old one stays."""
    from tests.conftest import daemon_settings
    from towerco_notify.runtime import Runtime

    shipped = Path(__file__).parent.parent / "config" / "thresholds.yaml"
    (tmp_path / "thresholds.yaml").write_text(shipped.read_text())
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites:\n  - {tenant: rl, id: a, region: north}\n")
    server = Runtime(daemon_settings(broker, redis_url, config_dir=tmp_path), mode="server")
    await server.start()
    base = f"http://127.0.0.1:{server.http_port}"
    tok = token("rl", "op", ["operator"])
    try:
        assert [s["region"] for s in (await _http(base, tok, "/api/v1/sites"))[1]["sites"]] == [
            "north"
        ]
        sites.write_text(
            "sites:\n  - {tenant: rl, id: a, region: south}\n  - {tenant: rl, id: b}\n"
        )
        assert server.reload_config("test") is True
        found = {
            s["id"]: s["region"] for s in (await _http(base, tok, "/api/v1/sites"))[1]["sites"]
        }
        assert found == {"a": "south", "b": None}
        cycle = (
            "  - {tenant: rl, id: a, depends_on: [b]}\n  - {tenant: rl, id: b, depends_on: [a]}\n"
        )
        sites.write_text("sites:\n" + cycle)
        assert server.reload_config("test") is False  # refused: the one before stays
        found = {
            s["id"]: s["region"] for s in (await _http(base, tok, "/api/v1/sites"))[1]["sites"]
        }
        assert found == {"a": "south", "b": None}
    finally:
        await server.stop()
