"""The NOC dashboard in a real browser: Debian's headless Chromium driven by playwright-core."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from notify_core.wire.events import TOPIC_ALERTS
from tests.helpers import NODE_DIR, NodeClient, alert, new_tenant, node_bin

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium not installed (.ci/run installs it)"
)


class Browser:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, permissions: list[str] | None = None, phone: bool = False) -> Browser:
        """`phone`: a 390x844 touch screen."""
        proc = await asyncio.create_subprocess_exec(
            node_bin(),
            str(NODE_DIR / "browser.mjs"),
            json.dumps(
                {
                    "executable": CHROMIUM,
                    "permissions": permissions,
                    "viewport": {"width": 390, "height": 844} if phone else None,
                    "mobile": phone,
                }
            ),
            cwd=str(NODE_DIR),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=sys.stderr,
        )
        self = cls(proc)
        assert (await self._answer(60))["ready"]
        return self

    async def _answer(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        return json.loads(await asyncio.wait_for(self.proc.stdout.readline(), timeout))

    async def do(self, cmd: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())
        await self.proc.stdin.drain()
        answer = await self._answer(kw.get("timeout", 15000) / 1000 + 10)
        assert answer["ok"], f"{cmd} {kw}: {answer}"
        return answer

    async def close(self) -> None:
        try:
            await self.do("close")
        except Exception:
            self.proc.kill()
        await self.proc.wait()


async def test_dashboard_shows_incidents_live_and_acknowledges(base_url, produce, token):
    tenant = new_tenant()
    browser = await Browser.start()
    watcher = await NodeClient.start(base_url, token(tenant, "watcher"), ["websocket"])
    try:
        await watcher.connected()
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'noc-1')}")
        await browser.do("wait", selector="#status[data-state='live']")
        await produce(
            TOPIC_ALERTS,
            alert(tenant, "B-1", "critical", site="s1", title="Mains power lost at s1"),
        )
        await browser.do("wait", selector="#incidents li.critical", text="Mains power lost at s1")
        await browser.do("click", selector="#incidents li[data-id='B-1'] .action-acknowledge")
        line = await watcher.wait_for(lambda m: m.get("name") == "incident_update", 20)
        assert line["data"]["incident_id"] == "B-1" and line["data"]["by"] == "noc-1"
        await browser.do("wait", selector="#incidents li.acknowledged[data-id='B-1']")
    finally:
        await watcher.close()
        await browser.close()


async def test_polling_fallback_delivers_and_says_so(base_url, produce, token):
    tenant = new_tenant()
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token(tenant)}&transport=polling")
        await browser.do("wait", selector="#status[data-state='polling']")
        assert (await browser.do("text", selector="#status"))["text"] == "polling fallback"
        await produce(TOPIC_ALERTS, alert(tenant, "P-1", "major", title="Fibre backhaul degraded"))
        await browser.do("wait", selector="#incidents li", text="Fibre backhaul degraded")
    finally:
        await browser.close()


async def test_reload_lists_every_missed_incident_once(base_url, produce, token):
    tenant = new_tenant()
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token(tenant)}")
        await browser.do("wait", selector="#status[data-state='live']")
        await produce(TOPIC_ALERTS, alert(tenant, "R-0", "minor", title="before reload"))
        await browser.do("wait", selector="#incidents li[data-id='R-0']")
        reload = asyncio.create_task(browser.do("reload"))
        for i in range(1, 11):
            await produce(TOPIC_ALERTS, alert(tenant, f"R-{i}", "minor", title=f"during {i}"))
        await reload
        await browser.do("wait", selector="#incidents li[data-id='R-10']", timeout=20000)
        await asyncio.sleep(0.5)
        ids = [f"R-{i}" for i in range(11)]
        for ident in ids:
            count = await browser.do("count", selector=f"#incidents li[data-id='{ident}']")
            assert count["count"] == 1, ident
    finally:
        await browser.close()


async def test_other_tenant_sees_nothing_and_screenshot_under_load(base_url, produce, token):
    tenant, other = new_tenant(), new_tenant()
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token(other)}")
        await browser.do("wait", selector="#status[data-state='live']")
        for i, sev in enumerate(["critical", "major", "minor", "warning", "info"] * 3):
            await produce(TOPIC_ALERTS, alert(tenant, f"T-{i}", sev, site=f"s{i % 4}"))
        await produce(TOPIC_ALERTS, alert(other, "MINE", "info", title="my own incident"))
        await browser.do("wait", selector="#incidents li[data-id='MINE']")
        assert (await browser.do("count", selector="#incidents li"))["count"] == 1
        # the victim tenant's dashboard, for the README screenshot
        await browser.do("open", url=f"{base_url}/#token={token(tenant)}")
        await browser.do("reload")  # a new hash alone does not reload the page
        await browser.do("wait", selector="#status[data-state='live']")
        for i, sev in enumerate(["critical", "major", "minor", "warning", "info"] * 2):
            await produce(
                TOPIC_ALERTS,
                alert(tenant, f"L-{i}", sev, site=f"s{i % 4}", title=f"Rectifier alarm {i}"),
            )
        await browser.do("wait", selector="#incidents li[data-id='L-9']")
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.do("screenshot", path=str(ARTIFACTS / "dashboard.png"))
        assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
    finally:
        await browser.close()


async def test_toasts_unread_badge_mute_and_sparklines(base_url, produce, token):
    from notify_core.wire.events import TOPIC_KPIS
    from tests.helpers import envelope

    tenant = new_tenant()
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token(tenant)}")
        await browser.do("wait", selector="#status[data-state='live']")
        await browser.do("click", selector="#mute")
        assert (await browser.do("text", selector="#mute"))["text"].endswith("sound off")
        await produce(
            TOPIC_ALERTS, alert(tenant, "U-1", "critical", site="s1", title="Battery discharge")
        )
        await produce(TOPIC_ALERTS, alert(tenant, "U-2", "minor", site="s1"))
        await browser.do("wait", selector=".toast.critical", text="Battery discharge")
        await browser.do("wait", selector="#incidents li[data-id='U-2']")
        assert (await browser.do("text", selector="#unread"))["text"] == "2 unread"
        assert (await browser.do("count", selector="#incidents li.unseen"))["count"] == 2
        await browser.do("click", selector="#unread")
        assert (await browser.do("text", selector="#unread"))["text"] == "0 unread"
        assert (await browser.do("count", selector="#incidents li.unseen"))["count"] == 0
        # the incident's site got a tile (and a KPI subscription): samples draw a sparkline
        await browser.do("wait", selector=".tile[data-site='s1']")
        await asyncio.sleep(0.5)
        for i, value in enumerate([-70, -75, -72, -80]):
            await produce(
                TOPIC_KPIS, envelope(tenant, {"rssi_dbm": value}, "s1", f"2026-11-25T10:00:0{i}Z")
            )
        await browser.do("wait", selector=".tile[data-site='s1'] svg.spark polyline")
        # the line appears with the second sample; the tile then shows the latest one
        text = ""
        for _ in range(100):
            text = (await browser.do("text", selector=".tile[data-site='s1']"))["text"]
            if "-80" in text:
                break
            await asyncio.sleep(0.1)
        assert "-80" in text
    finally:
        await browser.close()


async def test_a_critical_incident_raises_an_os_notification_while_the_tab_is_hidden(
    base_url, produce, token
):
    tenant = new_tenant()
    browser = await Browser.start(permissions=["notifications"])
    try:
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'noc-push')}")
        await browser.do("wait", selector="#status[data-state='live']")
        await browser.do("click", selector="#push")
        await browser.do("wait", selector="#push[data-state]")
        state = await browser.do("eval", js="() => document.querySelector('#push').dataset.state")
        # headless Chromium has no vendor push service: OS notifications while open remain
        assert state["value"] in ("subscribed", "notifications-only")
        registered = await browser.do(
            "eval",
            js="async () => { const r = await navigator.serviceWorker.getRegistration('/static/');"
            " return !!r && !!(r.active || r.installing || r.waiting); }",
        )
        assert registered["value"] is True
        shown = (
            "async () => { const r = await navigator.serviceWorker.getRegistration('/static/');"
            " return (await r.getNotifications()).map((n) => n.title); }"
        )
        # the tab is visible: the screen shows the incident, no OS notification
        await produce(
            TOPIC_ALERTS, alert(tenant, "N-1", "critical", site="s1", title="Seen on screen")
        )
        await browser.do("wait", selector="#incidents li[data-id='N-1']")
        await asyncio.sleep(0.5)
        assert (await browser.do("eval", js=shown))["value"] == []
        await browser.do(
            "eval",
            js="() => { Object.defineProperty(document, 'visibilityState', "
            "{ value: 'hidden', configurable: true }); return true; }",
        )
        await produce(TOPIC_ALERTS, alert(tenant, "N-2", "critical", site="s1", title="Tower down"))
        await produce(TOPIC_ALERTS, alert(tenant, "N-3", "minor", site="s1", title="Door open"))
        await browser.do("wait", selector="#incidents li[data-id='N-3']")
        titles: list[str] = []
        for _ in range(50):
            titles = (await browser.do("eval", js=shown))["value"]
            if titles:
                break
            await asyncio.sleep(0.1)
        assert titles == ["[critical] Tower down"]  # a minor one stays on the screen only
    finally:
        await browser.close()


async def test_dashboard_shows_who_is_on_call_now_and_next_and_the_heartbeats(base_url, token):
    """The session's oncall.yaml: tenant oc-acme's `field` (amina and brian taking turns)
    and `empty` (nobody); heartbeats.yaml: tenant hb-acme's `nms` and `site-kpis`."""
    import aiohttp

    tok = token("oc-acme", "amina", ["operator"])
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}/api/v1/oncall?schedule=field", headers={"Authorization": f"Bearer {tok}"}
        ) as resp,
    ):
        holder = (await resp.json())["oncall"][0]["users"][0]
    after = "brian" if holder == "amina" else "amina"
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={tok}")
        await browser.do("wait", selector="#status[data-state='live']")
        await browser.do("wait", selector="#oncall li[data-schedule='field']", text="next:")
        text = (await browser.do("text", selector="#oncall li[data-schedule='field']"))["text"]
        assert text.startswith(f"field: {holder} until") and text.endswith(f"next: {after}")
        assert (await browser.do("count", selector="#oncall li.nobody[data-schedule='empty']"))[
            "count"
        ] == 1
        await browser.do("open", url=f"{base_url}/#token={token('hb-acme', 'op', ['operator'])}")
        await browser.do("reload")  # a new hash alone does not load the page again
        await browser.do("wait", selector="#heartbeats li[data-name='site-kpis']")
        assert (await browser.do("count", selector="#oncall li"))["count"] == 0  # not theirs
    finally:
        await browser.close()


async def test_the_site_view_groups_by_region_maps_the_sites_and_shows_an_outage_once(
    base_url, produce, token
):
    """The session's sites.yaml: tenant topo-map has hub-m <- m-1 <- m-2 (region rift)
    and c-1 (region coast)."""
    from notify_core.wire.events import TOPIC_SITES
    from tests.helpers import envelope

    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token('topo-map', 'noc')}")
        await browser.do("wait", selector="#status[data-state='live']")
        await browser.do("wait", selector="#sites .tile[data-site='m-2']")
        await browser.do("wait", selector="#sites .region[data-region='rift']")  # grouped
        order = (await browser.do("texts", selector="#sites .region, #sites .tile strong"))["texts"]
        assert order == ["COAST", "c-1", "RIFT", "hub-m", "m-1", "m-2"], order
        assert "Iten tower" in (await browser.do("text", selector=".tile[data-site='m-1']"))["text"]
        assert (await browser.do("count", selector="#site-map circle"))["count"] == 4
        assert (await browser.do("count", selector="#outages li"))["count"] == 0
        await produce(TOPIC_SITES, envelope("topo-map", {"status": "down"}, site="hub-m"))
        await browser.do("wait", selector="#outages li[data-site='hub-m']")
        text = (await browser.do("text", selector="#outages li[data-site='hub-m']"))["text"]
        assert "Eldoret hub down" in text and "2 site(s) behind it: m-1, m-2" in text
        assert (await browser.do("count", selector="#site-map circle.down"))["count"] == 1
    finally:
        await produce(TOPIC_SITES, envelope("topo-map", {"status": "up"}, site="hub-m"))
        await browser.close()


async def test_a_page_link_opens_the_incident_on_a_phone_with_thumb_sized_buttons(
    base_url, produce, token
):
    import aiohttp

    tenant = new_tenant()
    browser = await Browser.start(phone=True)
    watcher = await NodeClient.start(base_url, token(tenant, "watcher"), ["websocket"])
    try:
        await watcher.connected()
        await produce(
            TOPIC_ALERTS, alert(tenant, "PH-1", "critical", site="s1", title="Rectifier down")
        )
        await watcher.wait_for(lambda m: m.get("name") == "incident_alert", 10)
        tok = token(tenant, "oc-phone", ["oncall"])
        await browser.do("open", url=f"{base_url}/#token={tok}&incident=PH-1")
        await browser.do("wait", selector="#detail:not([hidden])", text="Rectifier down")
        box = (
            await browser.do(
                "eval",
                js="() => { const q = (s) => document.querySelector(s).getBoundingClientRect();"
                " const r = q('#detail-ack'), d = q('#detail');"
                " return [r.width, r.height, d.width, window.innerWidth]; }",
            )
        )["value"]
        assert box[1] >= 44 and box[0] >= 44, box  # a thumb's target
        assert box[2] >= box[3] - 1, box  # the incident fills the phone's width
        await browser.do("click", selector="#detail-ack")
        line = await watcher.wait_for(lambda m: m.get("name") == "incident_update", 20)
        assert line["data"]["by"] == "oc-phone" and line["data"]["status"] == "acknowledged"
        # installable: the manifest and its icon are served
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base_url}/static/manifest.webmanifest") as r:
                manifest = await r.json(content_type=None)
                assert r.status == 200 and manifest["display"] == "standalone"
            async with http.get(base_url + manifest["icons"][0]["src"]) as r:
                assert r.status == 200
            async with http.get(f"{base_url}/api/v1/client-config") as r:
                assert await r.json() == {"oidc": None}  # this daemon signs in by token
    finally:
        await watcher.close()
        await browser.close()


async def test_a_person_adds_verifies_and_orders_their_contact_methods_on_the_dashboard(
    base_url, token, sinks
):
    import re
    from urllib.parse import parse_qs

    import aiohttp

    tenant = new_tenant()
    tok = token(tenant, "self-serve", ["operator"])
    number = "+254700000051"
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={tok}")
        await browser.do("wait", selector="#status[data-state='live']")
        await browser.do(
            "eval", js=f"() => {{ document.querySelector('#method-value').value = '{number}'; }}"
        )
        await browser.do("click", selector="#method-form button[type='submit']")
        await browser.do("wait", selector="#my-methods li:not(.verified) input.code")

        def codes() -> list[str]:
            out = []
            for r in sinks.of("/twilio/2010-04-01/Accounts/ACtest0001/Messages.json"):
                form = parse_qs(r["body"].decode())
                if form.get("To") == [number]:
                    out += re.findall(r"\b(\d{6})\b", form["Body"][0])
            return out

        for _ in range(100):
            if codes():
                break
            await asyncio.sleep(0.1)
        code = codes()[-1]
        await browser.do(
            "eval",
            js=f"() => {{ document.querySelector('#my-methods input.code').value = '{code}'; }}",
        )
        await browser.do("click", selector="#my-methods button.verify")
        await browser.do("wait", selector="#my-methods li.verified input.after")
        await browser.do(
            "eval", js="() => { document.querySelector('#my-methods input.after').value = '2'; }"
        )
        await browser.do("click", selector="#rules-save")
        await browser.do("wait", selector="#me-error", text="rules saved")
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{base_url}/api/v1/me/notification-rules",
                headers={"Authorization": f"Bearer {tok}"},
            ) as r,
        ):
            rules = await r.json()
        assert [rule["after"] for rule in rules["default"]] == ["2m"]
    finally:
        await browser.close()


async def test_the_report_view_shows_response_times_to_admins_only(base_url, produce, token):
    from datetime import UTC, datetime

    tenant = new_tenant()
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    op = await NodeClient.start(base_url, token(tenant, "op", ["operator"]), ["websocket"])
    browser = await Browser.start()
    try:
        await op.connected()
        await produce(
            TOPIC_ALERTS, {**alert(tenant, "RV-1", "major", site="rv-site"), "timestamp": now}
        )
        await op.wait_for(lambda m: m.get("name") == "incident_alert", 10)
        await op.emit("incident_action", {"incident_id": "RV-1", "action": "acknowledge"})
        await op.wait_for(lambda m: m.get("name") == "incident_update", 10)
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'boss', ['admin'])}")
        await browser.do(
            "wait", selector="#report:not([hidden]) #report-rows tr[data-key='rv-site']"
        )
        row = (await browser.do("text", selector="#report-rows tr[data-key='rv-site']"))["text"]
        assert row.split()[:3] == ["rv-site", "1", "1"], row  # one incident, acknowledged
        assert (await browser.do("count", selector="#report-rows svg.report-bars"))["count"] == 2
        # an operator's dashboard has no report (admins only)
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'op', ['operator'])}")
        await browser.do("reload")
        await browser.do("wait", selector="#status[data-state='live']")
        await asyncio.sleep(0.5)
        assert (await browser.do("count", selector="#report:not([hidden])"))["count"] == 0
    finally:
        await op.close()
        await browser.close()


async def test_an_admin_overrides_who_is_on_call_from_the_dashboard(base_url, token):
    import aiohttp

    admin = token("oc-acme", "boss", ["admin"])
    headers = {"Authorization": f"Bearer {admin}"}

    async def get(path: str) -> dict:
        async with aiohttp.ClientSession() as http, http.get(base_url + path, headers=headers) as r:
            return await r.json()

    holder = (await get("/api/v1/oncall?schedule=field"))["oncall"][0]["users"][0]
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={admin}")
        await browser.do("wait", selector="#oncall li[data-schedule='field']", text="next:")
        await browser.do(
            "eval",
            js="() => { const s = (id, v) => { document.querySelector(id).value = v; };"
            f" s('#override-schedule', 'field'); s('#override-user', 'carol');"
            f" s('#override-replaces', '{holder}'); s('#override-hours', '1'); }}",
        )
        await browser.do("click", selector="#override-form button[type='submit']")
        await browser.do("wait", selector="#oncall li[data-schedule='field']", text="field: carol")
        await browser.do("wait", selector="#overrides li.override", text=f"carol for {holder}")
        await browser.do("click", selector="#overrides li.override button.end")
        await browser.do(
            "wait", selector="#oncall li[data-schedule='field']", text=f"field: {holder}"
        )
    finally:
        for o in (await get("/api/v1/oncall/overrides"))["overrides"]:  # leave none behind
            async with aiohttp.ClientSession() as http:
                await http.delete(f"{base_url}/api/v1/oncall/overrides/{o['id']}", headers=headers)
        await browser.close()


@pytest.mark.parametrize("kind", ["ws", "sse"])
async def test_the_dashboard_over_the_plain_websocket_and_sse(base_url, produce, token, kind):
    """The same screen over ADR-010's plain WebSocket and over Server-Sent Events (the one
    client of notify-client.js): live, an action (a frame, or the HTTP API), and a reload
    that resumes from the last event with nothing twice."""
    tenant = new_tenant()
    browser = await Browser.start()
    watcher = await NodeClient.start(base_url, token(tenant, "watcher"), ["websocket"])
    try:
        await watcher.connected()
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'noc-t')}&transport={kind}")
        await browser.do("wait", selector="#status[data-state='live']")
        assert (await browser.do("text", selector="#status"))["text"] == f"live ({kind})"
        await produce(
            TOPIC_ALERTS, alert(tenant, "T-1", "critical", site="s1", title="Over " + kind)
        )
        await browser.do("wait", selector="#incidents li[data-id='T-1']", text="Over " + kind)
        await browser.do("click", selector="#incidents li[data-id='T-1'] .action-acknowledge")
        line = await watcher.wait_for(lambda m: m.get("name") == "incident_update", 20)
        assert line["data"]["incident_id"] == "T-1" and line["data"]["by"] == "noc-t"
        await browser.do("wait", selector="#incidents li.acknowledged[data-id='T-1']")
        reload = asyncio.create_task(browser.do("reload"))
        for i in range(2, 6):
            await produce(TOPIC_ALERTS, alert(tenant, f"T-{i}", "minor", title=f"during {i}"))
        await reload
        await browser.do("wait", selector="#incidents li[data-id='T-5']", timeout=20000)
        await browser.do("wait", selector="#incidents[data-rows='5']")
        stored = (
            await browser.do(
                "eval",
                js="() => Object.keys(localStorage)"
                f".filter((k) => k.startsWith('towerco.{tenant}.noc-t.'))",
            )
        )["value"]
        assert f"towerco.{tenant}.noc-t.last_id" in stored  # the resume point, per user
        # a token the daemon refuses: the screen says so and asks to sign in (and only then:
        # the reload above closed the stream too, and signed nobody out)
        await browser.do("open", url=f"{base_url}/#token=not.a.token&transport={kind}")
        await browser.do("reload")  # the same page with another fragment: load it again
        await browser.do("wait", selector="#auth-error", text="Token refused")
        assert (await browser.do("text", selector="#status"))["text"] == "offline"
    finally:
        await watcher.close()
        await browser.close()
