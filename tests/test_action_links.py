"""Acting from where the page lands: `/a/{token}` links in pages.

The store (notify_core/action_links.py) on memory and on Redis, the clock injected; then
through the session daemon, whose `receivers` policy pages oncall@example.com by email
(tests/receiver_sinks.py holds the SMTP server) at site rcv-site.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest

from notify_core.action_links import ActionLinks
from notify_core.wire.events import TOPIC_ALERTS
from tests.conftest import eventually
from tests.helpers import NodeClient, alert, new_tenant


@pytest.fixture(params=["memory", "redis"])
async def links(request, redis_client):
    now = [1_000_000.0]
    store = ActionLinks(
        redis_client if request.param == "redis" else None, "links-test:", 3600, lambda: now[0]
    )
    yield store, now


async def test_a_token_acts_once_until_it_expires(links):
    store, now = links
    token = await store.mint("t", "INC-1", "acknowledge", "amina")
    assert len(token) >= 32  # 192 random bits
    state, link = await store.peek(token)
    assert state == "ok" and link is not None and link.actor == "amina"
    assert (await store.peek(token))[0] == "ok"  # looking changes nothing
    assert (await store.use(token))[0] == "ok"
    assert (await store.use(token))[0] == "gone"  # once
    later = await store.mint("t", "INC-1", "resolve", "amina")
    now[0] += 3601
    assert (await store.use(later))[0] == "gone"  # expired
    assert (await store.use("x" * 32))[0] == "unknown"
    assert (await store.use("../../etc/passwd"))[0] == "unknown"


async def test_concurrent_uses_of_one_token_act_once(links):
    store, _ = links
    token = await store.mint("t", "INC-2", "resolve", "brian")
    results = await asyncio.gather(*(store.use(token) for _ in range(20)))
    assert sorted(state for state, _ in results) == ["gone"] * 19 + ["ok"]


def _links_in(text: str) -> dict[str, str]:
    """The acknowledge and resolve paths of an email page."""
    found = dict(re.findall(r"(Acknowledge|Resolve): +http://noc\.example:8080(/a/[\w-]+)", text))
    return {"acknowledge": found["Acknowledge"], "resolve": found["Resolve"]}


async def _page_links(sinks: Any, title: str) -> dict[str, str]:
    mail = await eventually(
        lambda: [m for m in sinks.mailbox.messages if title in m["Subject"]], timeout=15
    )
    text = next(mail[0].iter_parts()).get_payload(decode=True).decode()
    return _links_in(text)


async def _call(method: str, url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.request(method, url) as resp:
        return resp.status, await resp.text()


async def test_a_link_in_an_email_page_acknowledges_as_the_person_paged(
    base_url, produce, token, sinks
):
    tenant = new_tenant()
    watcher = await NodeClient.start(base_url, token(tenant, "w"), ["websocket"])
    try:
        await watcher.connected()
        title = f"Rectifier failed {tenant}"
        await produce(TOPIC_ALERTS, alert(tenant, "L-1", "critical", site="rcv-site", title=title))
        paths = await _page_links(sinks, title)
        # a GET (a mail scanner, a preview) changes nothing: it shows a button
        status, page = await _call("GET", base_url + paths["acknowledge"])
        assert status == 200 and title in page and "<form method='post'>" in page
        await asyncio.sleep(0.5)
        assert not [e for e in watcher.events("incident_update") if e["incident_id"] == "L-1"]
        status, page = await _call("POST", base_url + paths["acknowledge"])
        assert status == 200 and "acknowledged" in page
        update = await watcher.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"]["incident_id"] == "L-1",
            10,
        )
        assert update["data"]["status"] == "acknowledged"
        assert update["data"]["by"] == "email:oncall@example.com"
        assert update["data"]["source"] == "link"
        # used: 410, and the page says nothing of the incident
        status, page = await _call("POST", base_url + paths["acknowledge"])
        assert status == 410 and title not in page and "L-1" not in page
        # the resolve link still works, once
        assert (await _call("POST", base_url + paths["resolve"]))[0] == 200
        await watcher.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"].get("status") == "resolved",
            10,
        )
        status, body = await _call("GET", f"{base_url}/a/{'A' * 32}")
        assert status == 404 and "L-1" not in body
        admin = token(tenant, "boss", ["admin"])
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base_url}/api/v1/audit", headers={"Authorization": f"Bearer {admin}"}) as r,
        ):
            records = (await r.json())["records"]
        by_link = [(x["action"], x["actor"]) for x in records if x["source"] == "link"]
        assert ("acknowledge", "email:oncall@example.com") in by_link
        assert ("resolve", "email:oncall@example.com") in by_link
    finally:
        await watcher.close()


async def test_a_link_to_a_resolved_incident_is_gone(base_url, produce, token, sinks):
    tenant = new_tenant()
    op = await NodeClient.start(base_url, token(tenant, "op", ["operator"]), ["websocket"])
    try:
        await op.connected()
        title = f"Door open {tenant}"
        await produce(TOPIC_ALERTS, alert(tenant, "L-2", "critical", site="rcv-site", title=title))
        paths = await _page_links(sinks, title)
        assert (await _call("GET", base_url + paths["acknowledge"]))[0] == 200  # the twin
        await op.emit("incident_action", {"incident_id": "L-2", "action": "resolve"})
        await op.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"].get("status") == "resolved",
            10,
        )
        for _ in range(50):  # the pipeline stores the resolution
            if (await _call("GET", base_url + paths["acknowledge"]))[0] == 410:
                break
            await asyncio.sleep(0.1)
        status, page = await _call("POST", base_url + paths["acknowledge"])
        assert status == 410 and title not in page
    finally:
        await op.close()
