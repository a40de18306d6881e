"""The dashboard's state in Chromium: a fresh screen lists every open incident at once, the
plain WebSocket and SSE faces deliver like Socket.IO, and after `recovered: false` (the
history was lost while the browser was away) it reloads the open incidents instead of
trusting its local list."""

from __future__ import annotations

import asyncio

from notify_core.wire.events import TOPIC_ACTIONS, TOPIC_ALERTS
from tests.helpers import alert, envelope, new_tenant
from tests.test_browser import Browser, pytestmark  # noqa: F401  (skip without Chromium)


async def test_a_second_browser_lists_the_open_incidents_raised_before_it(base_url, produce, token):
    tenant = new_tenant()
    for n, sev in enumerate(["critical", "major", "minor"]):
        await produce(TOPIC_ALERTS, alert(tenant, f"F-{n}", sev, site="s1", title=f"Early {n}"))
    await produce(TOPIC_ALERTS, alert(tenant, "F-gone", "minor", title="resolved before"))
    await asyncio.sleep(0.5)
    await produce(
        TOPIC_ACTIONS,
        envelope(tenant, {"incident_id": "F-gone", "action": "resolve", "user_id": "u"}),
    )
    await asyncio.sleep(1.0)
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'late-shift')}")
        await browser.do("wait", selector="body[data-loaded='loaded']")
        for n in range(3):
            await browser.do("wait", selector=f"#incidents li[data-id='F-{n}']", text=f"Early {n}")
        assert (await browser.do("count", selector="#incidents li[data-id='F-gone']"))["count"] == 0
        assert (await browser.do("text", selector="#incident-count"))["text"] == "3"
    finally:
        await browser.close()


async def test_plain_websocket_and_sse_faces_in_chromium(base_url, produce, token):
    tenant = new_tenant()
    browser = await Browser.start()
    try:
        for kind in ("ws", "sse"):
            await browser.do("open", url=f"{base_url}/#token={token(tenant)}&transport={kind}")
            await browser.do("reload")
            await browser.do("wait", selector="#status[data-state='live']")
            assert (await browser.do("text", selector="#status"))["text"] == f"live ({kind})"
            await produce(
                TOPIC_ALERTS, alert(tenant, f"X-{kind}", "critical", title=f"over {kind}")
            )
            await browser.do(
                "wait", selector=f"#incidents li[data-id='X-{kind}']", text=f"over {kind}"
            )
            await browser.do(
                "click", selector=f"#incidents li[data-id='X-{kind}'] .action-acknowledge"
            )
            await browser.do("wait", selector=f"#incidents li.acknowledged[data-id='X-{kind}']")
    finally:
        await browser.close()


async def test_recovered_false_reloads_the_open_incidents(
    base_url, produce, token, daemon, redis_client
):
    tenant = new_tenant()
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token(tenant)}")
        await browser.do("wait", selector="#status[data-state='live']")
        await produce(TOPIC_ALERTS, alert(tenant, "K-1", "critical", title="kept open"))
        await produce(TOPIC_ALERTS, alert(tenant, "K-2", "major", title="resolved while away"))
        await browser.do("wait", selector="#incidents li[data-id='K-2']")
        await browser.do("open", url="about:blank")  # the browser goes away
        await produce(
            TOPIC_ACTIONS,
            envelope(tenant, {"incident_id": "K-2", "action": "resolve", "user_id": "u"}),
        )
        await produce(TOPIC_ALERTS, alert(tenant, "K-3", "minor", title="raised while away"))
        await asyncio.sleep(1.5)
        # the tenant's history is lost (a failover to an empty replica, say)
        await redis_client.delete(f"{daemon.settings.redis_prefix}history:{{{tenant}}}")
        await produce(TOPIC_ALERTS, alert(tenant, "K-4", "minor", title="after the loss"))
        await asyncio.sleep(1.0)
        await browser.do("open", url=f"{base_url}/")  # its token and resume point are stored
        await browser.do("wait", selector="body[data-loaded='reloaded']", timeout=20000)
        for ident in ("K-1", "K-3", "K-4"):
            await browser.do("wait", selector=f"#incidents li[data-id='{ident}']")
        assert (await browser.do("count", selector="#incidents li[data-id='K-2']"))["count"] == 0
    finally:
        await browser.close()


async def test_the_client_modules_sse_fallback_in_chromium(base_url, produce, token):
    """`createSseClient` over Chromium's own EventSource: live events, an action over HTTP,
    and a resume (the page reloaded) that replays what was missed."""
    tenant = new_tenant()
    start = f"""async () => {{
        const m = await import("/static/notify-client.js");
        window.__seen = [];
        window.__client = m.createSseClient({{ token: {token(tenant)!r} }});
        window.__client.on("incident_alert", (ev) => window.__seen.push(ev.incident.incident_id));
        window.__client.on("sync_complete", (ev) => window.__sync = ev);
        return true;
    }}"""
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/")
        await browser.do("eval", js=start)
        for _ in range(100):
            state = (await browser.do("eval", js="() => window.__client.state"))["value"]
            if state == "live (sse)":
                break
            await asyncio.sleep(0.1)
        assert state == "live (sse)"
        await asyncio.sleep(0.3)
        await produce(TOPIC_ALERTS, alert(tenant, "M-1", "critical"))
        seen: list[str] = []
        for _ in range(100):
            seen = (await browser.do("eval", js="() => window.__seen"))["value"]
            if seen:
                break
            await asyncio.sleep(0.1)
        assert seen == ["M-1"]
        acked = await browser.do("eval", js="() => window.__client.action('M-1', 'acknowledge')")
        assert acked["value"]["ok"] is True
        await browser.do("eval", js="() => window.__client.close()")
        await produce(TOPIC_ALERTS, alert(tenant, "M-2", "critical"))
        await asyncio.sleep(1.0)
        await browser.do("reload")  # the same page later: its last id and epoch are stored
        await browser.do("eval", js=start)
        for _ in range(100):
            sync = (await browser.do("eval", js="() => window.__sync || null"))["value"]
            if sync:
                break
            await asyncio.sleep(0.1)
        assert sync["recovered"] is True
        assert (await browser.do("eval", js="() => window.__seen"))["value"] == ["M-2"]
    finally:
        await browser.close()


async def test_a_suppressed_incident_is_shown_quietly(base_url, produce, token):
    """In maintenance: listed greyed with the reason, no toast; its twin outside is loud."""
    import time

    import aiohttp

    tenant = new_tenant()
    op = token(tenant, "op", ["operator"])
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/api/v1/maintenance",
            json={"site_ids": ["quiet-site"], "ends_at": time.time() + 600},
            headers={"Authorization": f"Bearer {op}"},
        ) as r,
    ):
        assert r.status == 201
    await asyncio.sleep(1.5)
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={op}")
        await browser.do("wait", selector="#status[data-state='live']")
        await browser.do("click", selector="#mute")
        await produce(
            TOPIC_ALERTS, alert(tenant, "Q-1", "critical", site="quiet-site", title="quiet one")
        )
        await produce(
            TOPIC_ALERTS, alert(tenant, "L-1", "critical", site="loud-site", title="loud one")
        )
        await browser.do("wait", selector="#incidents li.suppressed[data-id='Q-1']")
        await browser.do("wait", selector=".toast.critical", text="loud one")
        text = (await browser.do("text", selector="#incidents li[data-id='Q-1']"))["text"]
        assert "quiet: maintenance" in text
        toasts = (await browser.do("texts", selector=".toast"))["texts"]
        assert not any("quiet one" in t for t in toasts)
        assert (await browser.do("count", selector="#incidents li.suppressed[data-id='L-1']"))[
            "count"
        ] == 0
    finally:
        await browser.close()


async def test_filters_search_and_a_burst_folded_into_one_toast(base_url, produce, token):
    tenant = new_tenant()
    browser = await Browser.start()
    try:
        await browser.do("open", url=f"{base_url}/#token={token(tenant, 'amy')}")
        await browser.do("wait", selector="#status[data-state='live']")
        await browser.do("click", selector="#mute")
        for n in range(6):  # a storm at one site
            await produce(
                TOPIC_ALERTS,
                alert(tenant, f"B-{n}", "critical", site="burst-site", title=f"Rectifier {n}"),
            )
        await produce(
            TOPIC_ALERTS, alert(tenant, "M-1", "minor", site="calm-site", title="Door open")
        )
        await browser.do("wait", selector=".toast.summary", text="6 incidents at burst-site")
        assert (await browser.do("count", selector=".toast"))["count"] == 1, "one toast, not six"
        await browser.do("wait", selector="#incidents li[data-id='M-1']")
        await browser.do(
            "eval",
            js="""() => { const s = document.getElementById('filter-severity');
            s.value = 'minor'; s.dispatchEvent(new Event('change')); return true; }""",
        )
        assert (await browser.do("count", selector="#incidents li:not([hidden])"))["count"] == 1
        await browser.do(
            "eval",
            js="""() => { const s = document.getElementById('filter-severity');
            s.value = ''; s.dispatchEvent(new Event('change'));
            const t = document.getElementById('filter-text'); t.value = 'rectifier 3';
            t.dispatchEvent(new Event('input')); return true; }""",
        )
        visible = (await browser.do("texts", selector="#incidents li:not([hidden]) .title"))[
            "texts"
        ]
        assert visible == ["Rectifier 3"]
    finally:
        await browser.close()
