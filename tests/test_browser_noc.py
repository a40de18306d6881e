"""The NOC wall screen in Chromium: the detail pane (timeline, notes, comments, take, snooze,
viewers), keyboard work, the site grid of every site, maintenance from the dashboard, and
5 000 open incidents in a virtualised list."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from notify_core.wire.events import TOPIC_ALERTS, TOPIC_SITES
from tests.helpers import NodeClient, alert, envelope, new_tenant
from tests.test_browser import ARTIFACTS, Browser, pytestmark  # noqa: F401 (skip without chromium)


async def text(browser: Browser, selector: str) -> str:
    return (await browser.do("text", selector=selector))["text"]


async def test_detail_pane_notes_comments_take_and_snooze_reach_another_operator(
    base_url, produce, token
):
    tenant = new_tenant()
    browser = await Browser.start()
    other = await NodeClient.start(base_url, token(tenant, "bob", ["operator"]), ["websocket"])
    try:
        await other.connected()
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'amy')}")
        await browser.do("wait", selector="#status[data-state='live']")
        await produce(
            TOPIC_ALERTS, alert(tenant, "D-1", "critical", site="d-site", title="Mains lost")
        )
        await browser.do("wait", selector="#incidents li[data-id='D-1']")
        await other.emit("view_incident", {"incident_id": "D-1"})
        await browser.do("click", selector="#incidents li[data-id='D-1'] .title")
        await browser.do("wait", selector="#detail[data-id='D-1']")
        await browser.do("wait", selector="#viewers", text="bob")  # who else is looking
        assert "Mains lost" in await text(browser, "#detail-title")
        await browser.do("wait", selector="#timeline li")  # the alert is its first entry
        # a comment from the pane reaches the other operator live and lands in the timeline
        await browser.do(
            "eval",
            js="() => { document.getElementById('note').value = 'generator on its way';"
            " return 1; }",
        )
        await browser.do("click", selector="#detail-comment")
        line = await other.wait_for(
            lambda m: m.get("name") == "incident_update" and "comment" in m["data"], 10
        )
        assert line["data"]["comment"] == {"by": "amy", "text": "generator on its way"}
        await browser.do("wait", selector="#timeline li.comment", text="generator on its way")
        # take, then snooze for 15 minutes: both live for bob, both shown in the pane
        await browser.do("click", selector="#detail-take")
        taken = await other.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"].get("assignee"), 10
        )
        assert taken["data"]["assignee"] == "amy"
        await browser.do("wait", selector="#detail[data-assignee='amy']")
        await browser.do(
            "eval",
            js="() => { document.getElementById('snooze-minutes').value = '15'; return 1; }",
        )
        await browser.do("click", selector="#detail-snooze")
        snoozed = await other.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"].get("status") == "snoozed",
            10,
        )
        assert snoozed["data"]["until"]
        await browser.do("wait", selector="#detail[data-status='snoozed']")
        await browser.do("wait", selector="#incidents li.snoozed[data-id='D-1']")
        assert "snoozed until" in await text(browser, "#detail-meta")
        # an over-long note is refused with the reason, nothing is sent
        await browser.do(
            "eval",
            js="() => { const n = document.getElementById('note'); n.removeAttribute('maxlength');"
            " n.value = 'x'.repeat(2001); return 1; }",
        )
        await browser.do("click", selector="#detail-comment")
        await browser.do("wait", selector="#detail-error", text="comment failed")
    finally:
        await other.close()
        await browser.close()


async def test_keyboard_acknowledges_and_moves_to_the_next(base_url, produce, token):
    tenant = new_tenant()
    browser = await Browser.start()
    watcher = await NodeClient.start(base_url, token(tenant, "w"), ["websocket"])
    try:
        await watcher.connected()
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'kim')}")
        await browser.do("wait", selector="#status[data-state='live']")
        for n, sev in ((1, "critical"), (2, "major"), (3, "minor")):
            await produce(TOPIC_ALERTS, alert(tenant, f"K-{n}", sev, site="k-site", title=f"K {n}"))
        await browser.do("wait", selector="#incidents li[data-id='K-3']")
        await browser.do("eval", js="() => { document.activeElement.blur(); return 1; }")
        await browser.do("press", key="j")  # selects the first row: the critical one
        await browser.do("wait", selector="#incidents li.selected[data-id='K-1']")
        await browser.do("press", key="a")  # acknowledge it, move to the next
        ack = await watcher.wait_for(lambda m: m.get("name") == "incident_update", 10)
        assert ack["data"]["incident_id"] == "K-1" and ack["data"]["status"] == "acknowledged"
        await browser.do("wait", selector="#incidents li.selected[data-id='K-2']")
        await browser.do("press", key="Enter")
        await browser.do("wait", selector="#detail[data-id='K-2']")
        await browser.do("press", key="Escape")
        await browser.do("wait", selector="#detail[hidden]", state="attached")
    finally:
        await watcher.close()
        await browser.close()


async def _post(url: str, tok: str, body: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {tok}"}) as r:
            return r.status


async def test_site_grid_lists_every_site_and_maintenance_is_set_from_the_screen(
    base_url, produce, token
):
    tenant = new_tenant()
    browser = await Browser.start()
    try:
        # a site that only ever reported a status (no KPI, no incident) is on the grid
        await produce(TOPIC_SITES, envelope(tenant, {"status": "down"}, site="quiet-site"))
        await produce(TOPIC_ALERTS, alert(tenant, "G-1", "major", site="busy-site", title="Fan"))
        await produce(TOPIC_ALERTS, alert(tenant, "G-2", "critical", site="busy-site", title="AC"))
        await asyncio.sleep(1.5)  # the status reaches every process's snapshot
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'ops', ['operator'])}")
        await browser.do("wait", selector="#status[data-state='live']")
        await browser.do(
            "wait", selector="#sites .tile[data-site='quiet-site'][data-status='down']"
        )
        await browser.do(
            "wait", selector="#sites .tile[data-site='busy-site'][data-worst='critical']"
        )
        # maintenance from the form: listed, and the tile says so
        await browser.do(
            "eval",
            js="() => { document.getElementById('maint-sites').value = 'busy-site';"
            " document.getElementById('maint-reason').value = 'rectifier swap'; return 1; }",
        )
        await browser.do("click", selector="#maint-form button[type=submit]")
        await browser.do("wait", selector="#windows li", text="rectifier swap")
        await browser.do("wait", selector="#sites .tile.in-maintenance[data-site='busy-site']")
        assert (await browser.do("count", selector="#sites .tile.in-maintenance"))["count"] == 1
        # a silence from the form, ended from the list
        await browser.do(
            "eval",
            js="() => { document.getElementById('silence-site').value = 'quiet-site';"
            " document.getElementById('silence-comment').value = 'known outage'; return 1; }",
        )
        await browser.do("click", selector="#silence-form button[type=submit]")
        await browser.do("wait", selector="#silences li", text="known outage")
        await browser.do("click", selector="#silences li .end")
        for _ in range(150):  # the list is read again after the End (slower under load)
            if (await browser.do("count", selector="#silences li"))["count"] == 0:
                break
            await asyncio.sleep(0.1)
        assert (await browser.do("count", selector="#silences li"))["count"] == 0
    finally:
        await browser.close()


async def test_five_thousand_open_incidents_stay_a_usable_screen(base_url, daemon, token):
    """5 000 open incidents: the list renders only what is in view, every one is reachable
    by scrolling or search, and the count says 5 000 (the screenshot is the README's)."""
    from notify_core.state.incidents import IncidentState

    tenant = new_tenant()
    for n in range(5000):
        sev = ("critical", "major", "minor", "warning")[n % 4]
        await daemon.stores.incidents.put(
            tenant,
            f"L-{n:04d}",
            IncidentState(
                f"site-{n % 120:03d}", sev, "open", title=f"Alarm {n:04d}", opened_at_ms=n
            ),
        )
    if daemon.stores.writes is not None:
        await daemon.stores.writes.flush()
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'wall')}")
        await browser.do("wait", selector="body[data-loaded='loaded']", timeout=30000)
        await browser.do("wait", selector="#incident-count", text="5000")
        assert (
            await browser.do("eval", js="() => document.getElementById('incidents').dataset.rows")
        )["value"] == "5000"
        rows = (await browser.do("count", selector="#incidents li"))["count"]
        assert 0 < rows < 100, rows  # virtualised: only what is in view
        await browser.do(
            "eval",
            js="() => { const s = document.getElementById('incident-scroll');"
            " s.scrollTop = s.scrollHeight; s.dispatchEvent(new Event('scroll')); return 1; }",
        )
        await browser.do("wait", selector="#incidents li .title", text="Alarm")
        await browser.do(
            "eval",
            js="() => { const t = document.getElementById('filter-text'); t.value = 'alarm 4321';"
            " t.dispatchEvent(new Event('input')); return 1; }",
        )
        await browser.do("wait", selector="#incidents li[data-id='L-4321']")
        await browser.do(
            "eval",
            js="() => { const t = document.getElementById('filter-text'); t.value = '';"
            " t.dispatchEvent(new Event('input')); return 1; }",
        )
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.do("screenshot", path=str(ARTIFACTS / "dashboard-5000.png"))
    finally:
        await browser.close()
