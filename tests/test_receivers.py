"""Receivers end to end: a page through Kafka, the escalation engine and the outbox to a
real SMTP server, chat and PagerDuty sinks and a Web Push service that verifies VAPID and
decrypts; PagerDuty hears the acknowledgement and the resolution; a dead receiver delays
nothing and tells the admins; the push subscription API from the attacker's side."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest

from escalation.config import parse_policies
from escalation.receivers.page import render
from notify_core.config_yaml import ConfigInvalid
from notify_core.retry import wait_s
from notify_core.wire.events import TOPIC_ALERTS
from tests.conftest import eventually
from tests.helpers import NodeClient, alert, new_tenant


async def call(
    method: str, url: str, tok: str | None, body: Any = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, json=body, headers=headers) as resp:
            try:
                return resp.status, await resp.json()
            except aiohttp.ContentTypeError:
                return resp.status, {}


async def timeline(base_url: str, tok: str, incident: str) -> list[dict[str, Any]]:
    _, body = await call("GET", f"{base_url}/api/v1/incidents/{incident}/timeline", tok)
    return body.get("timeline", [])


async def test_a_page_reaches_email_chat_pagerduty_and_web_push(
    base_url, produce, token, sinks, daemon
):
    tenant = new_tenant()
    oc_token = token(tenant, "oc-1", ["oncall"])
    gone_token = token(tenant, "oc-2", ["oncall"])
    browser = sinks.browser(f"b-{tenant}")
    push = f"{base_url}/api/v1/push/subscriptions"
    status, created = await call("POST", push, oc_token, browser.subscription())
    assert status == 201 and created["user_id"] == "oc-1"
    gone = sinks.browser(f"gone-{tenant}").subscription()
    assert (await call("POST", push, gone_token, gone))[0] == 201
    title = f"Mains lost {tenant}"
    await produce(TOPIC_ALERTS, alert(tenant, "R-1", "critical", site="rcv-site", title=title))

    mail = await eventually(
        lambda: [m for m in sinks.mailbox.messages if title in m["Subject"]], timeout=15
    )
    msg = mail[0]
    assert msg["Subject"] == f"NOC page: {title} at rcv-site, level 1"  # the policy's template
    assert msg["To"] == "oncall@example.com" and msg["From"] == "noc@towerco.example"
    text, html = (part.get_payload(decode=True).decode() for part in msg.iter_parts())
    assert "Site:      rcv-site" in text and "Severity:  critical" in text
    assert "http://noc.example:8080/#incident=R-1" in text and "<a href=" in html

    def mine(path: str) -> list[dict[str, Any]]:
        return [r for r in sinks.of(path) if tenant in str(r.get("json"))]

    slack = (await eventually(lambda: mine("/slack"), timeout=10))[0]["json"]
    assert re.fullmatch(
        re.escape(f"*[critical] {title}* at site rcv-site: escalation level 1. ")
        + r"<http://noc\.example:8080/#incident=R-1\|Open> · "
        r"<http://noc\.example:8080/a/[\w-]{32}\|Acknowledge> · "
        r"<http://noc\.example:8080/a/[\w-]{32}\|Resolve>",
        slack["text"],
    ), slack["text"]
    assert slack["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": slack["text"]},
    }
    buttons = slack["blocks"][1]["elements"]  # acted on through /integrations/slack/interactions
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("towerco_acknowledge", "R-1"),
        ("towerco_resolve", "R-1"),
    ]
    teams = (await eventually(lambda: mine("/teams"), timeout=10))[0]["json"]
    card = teams["attachments"][0]
    assert teams["type"] == "message"
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"].startswith(f"[critical] {title} at site rcv-site")
    assert card["content"]["actions"][0]["url"] == "http://noc.example:8080/#incident=R-1"

    trigger = (await eventually(lambda: mine("/pd"), timeout=10))[0]["json"]
    dedup = f"towerco-notify/{tenant}/R-1"
    assert trigger["routing_key"] == "R0UT1NGKEY" and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == dedup
    assert trigger["payload"]["severity"] == "critical"
    assert title in trigger["payload"]["summary"] and trigger["payload"]["source"] == "rcv-site"

    pushed = await eventually(
        lambda: [p for p in sinks.pushed if p["name"] == f"b-{tenant}"], timeout=10
    )
    assert pushed[0]["encoding"] == "aes128gcm"  # decrypted above with the browser's keys
    assert pushed[0]["claims"]["sub"].startswith("mailto:")
    assert pushed[0]["data"]["incident_id"] == "R-1" and title in pushed[0]["data"]["title"]
    # the notification's Acknowledge action: the service worker POSTs this link (sw.js), as
    # the subscriber; done here as it would, against the daemon itself
    data = pushed[0]["data"]
    assert [a["action"] for a in data["actions"]] == ["acknowledge", "open"]
    assert data["ack_url"].startswith("http://noc.example:8080/a/")
    ack_path = data["ack_url"].removeprefix("http://noc.example:8080")
    watcher = await NodeClient.start(base_url, token(tenant, "w"), ["websocket"])
    try:
        await watcher.connected()
        async with aiohttp.ClientSession() as http, http.post(base_url + ack_path) as r:
            assert r.status == 200
        update = await watcher.wait_for(lambda m: m.get("name") == "incident_update", 10)
        assert update["data"]["by"] == "oc-1" and update["data"]["source"] == "link"
    finally:
        await watcher.close()

    # the expired subscription (410) is dropped; the live one stays
    async def subs(tok: str) -> list[dict[str, Any]]:
        return (await call("GET", push, tok))[1]["subscriptions"]

    await eventually(lambda: _empty(subs(gone_token)), timeout=10)
    assert [s["id"] for s in await subs(oc_token)] == [created["id"]]

    # PagerDuty hears the acknowledgement and the resolution, same dedup_key
    ack_url = f"{base_url}/api/v1/incidents/R-1/acknowledge"
    assert (await call("POST", ack_url, oc_token, {"note": "on it"}))[0] == 202
    await eventually(lambda: len(mine("/pd")) >= 2, timeout=10)
    resolve_url = f"{base_url}/api/v1/incidents/R-1/resolve"
    assert (await call("POST", resolve_url, oc_token))[0] == 202
    await eventually(lambda: len(mine("/pd")) >= 3, timeout=10)
    actions = [(r["json"]["event_action"], r["json"]["dedup_key"]) for r in mine("/pd")]
    assert actions == [("trigger", dedup), ("acknowledge", dedup), ("resolve", dedup)]

    entries = await eventually(lambda: _deliveries(base_url, oc_token, "R-1", 7), timeout=10)
    ok = {(e["receiver"], e.get("action")) for e in entries if e["ok"]}
    assert {("email", None), ("slack", None), ("teams", None), ("webpush", None)} <= ok
    assert {("pagerduty", "trigger"), ("pagerduty", "acknowledge")} <= ok
    for e in entries:  # where a secret is kept is named, never the secret
        assert "R0UT1NGKEY" not in str(e) and sinks.base not in str(e), e
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as resp:
        text = await resp.text()
    assert 'notify_receiver_deliveries_total{result="ok",type="email"}' in text


async def _empty(found: Any) -> bool:
    return (await found) == []


async def _deliveries(base: str, tok: str, incident: str, n: int) -> list[dict[str, Any]] | None:
    found = [e for e in await timeline(base, tok, incident) if e["kind"] == "delivery"]
    return found if len(found) >= n else None


async def test_a_receiver_that_is_down_delays_nothing_and_tells_the_admins(
    base_url, produce, token, sinks
):
    tenant = new_tenant()
    admin = await NodeClient.start(base_url, token(tenant, "boss", ["admin"]), ["websocket"])
    operator = await NodeClient.start(base_url, token(tenant, "op", ["operator"]), ["websocket"])
    try:
        await admin.connected()
        await operator.connected()
        title = f"Rectifier fault {tenant}"
        await produce(
            TOPIC_ALERTS, alert(tenant, "R-2", "critical", site="rcv-down-site", title=title)
        )
        # slack is delivered at once, while teams answers 503 (retried with backoff)
        await eventually(
            lambda: [r for r in sinks.of("/slack") if title in r["json"]["text"]], timeout=10
        )
        assert len([r for r in sinks.of("/down/teams") if tenant in str(r["json"])]) <= 1
        notice = await admin.wait_for(
            lambda m: (
                m.get("name") == "system_notification" and m["data"].get("incident_id") == "R-2"
            ),
            20,
        )
        assert notice["data"]["title"] == "teams receiver failing"
        assert notice["data"]["priority"] == "error" and "HTTP 503" in notice["data"]["message"]
        attempts = [r for r in sinks.of("/down/teams") if tenant in str(r["json"])]
        assert len(attempts) == 3  # receiver_attempts in the test daemon
        tl = await timeline(base_url, token(tenant, "boss", ["admin"]), "R-2")
        teams = [e for e in tl if e["kind"] == "delivery" and e["receiver"] == "teams"]
        assert [(e["attempt"], e["ok"], e["status"]) for e in teams] == [
            (1, False, 503), (2, False, 503), (3, False, 503),
        ]  # fmt: skip
        await asyncio.sleep(0.3)
        # the notice is for the admins: the operator, on the same tenant, got the incident only
        assert operator.events("incident_alert") and not operator.events("system_notification")
    finally:
        await admin.close()
        await operator.close()


async def test_push_subscriptions_from_the_attackers_side(base_url, token, sinks):
    tenant = new_tenant()
    owner, other = token(tenant, "alice", ["operator"]), token(tenant, "mallory", ["operator"])
    url = f"{base_url}/api/v1/push/subscriptions"
    good = sinks.browser(f"atk-{tenant}").subscription()
    # endpoints that would make the daemon call into the private network are refused
    for endpoint in ("http://10.0.0.5:6379/x", "file:///etc/passwd", "http://redis:6379/"):
        status, body = await call("POST", url, owner, {**good, "endpoint": endpoint})
        assert status == 400 and "endpoint" in body["error"]
    status, body = await call("POST", url, owner, {**good, "keys": {"p256dh": "x"}})
    assert status == 400
    assert (await call("POST", url, None, good))[0] == 401
    status, created = await call("POST", url, owner, good)
    assert status == 201
    # another user cannot see or remove it; its owner can
    assert (await call("GET", url, other))[1]["subscriptions"] == []
    assert (await call("DELETE", f"{url}/{created['id']}", other))[0] == 404
    listed = (await call("GET", url, owner))[1]["subscriptions"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert "/push/" not in str(listed)  # the endpoint's path is the browser's capability
    assert (await call("DELETE", url, owner, {"endpoint": good["endpoint"]}))[0] == 200
    assert (await call("GET", url, owner))[1]["subscriptions"] == []
    status, key = await call("GET", f"{base_url}/api/v1/push/vapid-public-key", owner)
    assert status == 200 and len(key["public_key"]) == 87  # base64url of a 65-byte P-256 point


def test_receiver_targets_are_validated_with_file_line_and_field():
    text = """\
policies:
  - name: p
    templates: {slack: "down: $nope"}
    levels:
      - targets:
          - slack: https://hooks.slack.com/services/T000/B000/SECRETSECRET
          - teams: {url_env: TEAMS_HOOK_THAT_IS_UNSET}
          - pagerduty: {routing_key_env: PD_KEY}
          - email: not-an-address
          - webpush: {role: oncall, user: bob}
"""
    with pytest.raises(ConfigInvalid) as err:
        parse_policies(text, "escalation.yaml", environ={"PD_KEY": "k"})
    problems = [str(p) for p in err.value.problems]
    joined = "\n".join(problems)
    assert "SECRETSECRET" not in joined  # an inline secret is refused without echoing it
    assert any(p.startswith("escalation.yaml:6: policy p: levels.0.targets.0") for p in problems)
    assert "escalation.yaml:3: policy p: templates: slack: unknown placeholder 'nope'" in joined
    assert "levels.0.targets.3.email: not an email address (got 'not-an-address')" in joined
    assert "levels.0.targets.4.webpush" in joined
    ok = text.replace("$nope", "$title").replace(
        "          - slack: https://hooks.slack.com/services/T000/B000/SECRETSECRET\n", ""
    )
    ok = ok.replace("not-an-address", "noc@example.com").replace(", user: bob", "")
    with pytest.raises(ConfigInvalid) as err:
        parse_policies(ok, "escalation.yaml", environ={"PD_KEY": "k"})
    (only,) = err.value.problems  # the unset variable, named with its line
    assert str(only) == (
        "escalation.yaml:6: policy p: levels.0.targets.0.teams.url_env: "
        "environment variable 'TEAMS_HOOK_THAT_IS_UNSET' is unset or empty"
    )
    env = {"PD_KEY": "k", "TEAMS_HOOK_THAT_IS_UNSET": "https://example.webhook.office.com/x"}
    (policy,) = parse_policies(ok, "escalation.yaml", environ=env)
    assert [t.receiver for t in policy.levels[0].targets] == [
        "teams",
        "pagerduty",
        "email",
        "webpush",
    ]


def test_templates_and_backoff():
    fields = {"title": "Mains", "site": "s1", "level": "2", "severity": "major"}
    assert render("webpush", fields) == "Mains at s1 (level 2)"
    assert render("slack", fields, {"slack": "$title costs $$5"}) == "Mains costs $5"
    waits = [wait_s(n, 1.0, 20.0) for n in range(1, 8)]  # the receivers' retries
    assert waits == [1, 2, 4, 8, 16, 20, 20]  # doubling, capped


PD_POLICY = """\
policies:
  - name: pd
    match: {{severities: [critical]}}
    levels:
      - wait: 500ms
        targets:
          - oncall: true
          - pagerduty: {{routing_key_file: {key}}}
"""


async def test_a_trigger_refused_before_its_sender_is_killed_is_sent_once_by_the_survivor(
    broker, redis_url, token, tmp_path, sinks
):
    """Two pipeline processes, PagerDuty answers the first trigger 503: the process that
    tried is SIGKILLed during its backoff; the other takes the durable job over and
    PagerDuty accepts exactly one trigger (and the level fired once)."""
    from tests.test_processes import cluster_env, spawn, stop, wait_ready
    from towerco_notify.embedded_broker import free_port

    (tmp_path / "pd-key").write_text("KILLTESTKEY")
    (tmp_path / "escalation.yaml").write_text(PD_POLICY.format(key=tmp_path / "pd-key"))
    env = cluster_env(
        broker,
        redis_url,
        "pd",
        NOTIFY_CONFIG_DIR=str(tmp_path),
        NOTIFY_PAGERDUTY_URL=f"{sinks.base}/pd-flaky",
    )
    ports = [free_port(), free_port()]
    procs = [await spawn("pipeline", "--http-port", str(p), env=env) for p in ports]
    tenant = new_tenant()
    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_ready(port, proc)
        import orjson
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        await producer.send_and_wait(
            TOPIC_ALERTS, orjson.dumps(alert(tenant, "K-1", site="k-site")), key=tenant.encode()
        )
        await producer.stop()
        dedup = f"towerco-notify/{tenant}/K-1"

        def triggers() -> list[dict[str, Any]]:
            return [r for r in sinks.of("/pd-flaky") if r["json"].get("dedup_key") == dedup]

        await eventually(lambda: triggers(), timeout=30)  # the first, refused
        tl = await eventually(
            lambda: _deliveries(f"http://127.0.0.1:{ports[0]}", token(tenant), "K-1", 1), 10
        )
        sender_pid = int(tl[0]["process"].rsplit(":", 1)[1])
        (victim,) = [p for p in procs if p.pid == sender_pid]
        victim.kill()  # SIGKILL during its backoff: the job is only in the outbox
        await victim.wait()
        survivor = ports[procs.index(victim) ^ 1]
        await eventually(lambda: len(triggers()) >= 2, timeout=30)
        await asyncio.sleep(2.0)  # anything more would be a duplicate
        found = triggers()
        assert [r["status"] for r in found] == [503, 202]
        assert all(r["json"]["event_action"] == "trigger" for r in found)
        entries = await _deliveries(f"http://127.0.0.1:{survivor}", token(tenant), "K-1", 2)
        assert entries is not None
        assert [(e["attempt"], e["ok"]) for e in entries] == [(1, False), (2, True)]
        assert entries[1]["process"] != entries[0]["process"]
        _, body = await call(
            "GET", f"http://127.0.0.1:{survivor}/api/v1/incidents/K-1/timeline", token(tenant)
        )
        assert [e["level"] for e in body["timeline"] if e["kind"] == "notified"] == [1]
    finally:
        for proc in procs:
            if proc.returncode is None:
                await stop(proc)
