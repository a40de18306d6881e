"""People paged by name: contact methods, verification codes, personal rules.

The rules' plan and the code check are pure (escalation/people/contacts.py); the rest runs
through the session daemon, whose `people` policy pages user `ppl` 300 ms after a critical
at site ppl-site, with a Twilio-compatible sink and Slack's Web API stand-in
(tests/receiver_sinks.py) behind NOTIFY_TWILIO_URL and NOTIFY_SLACK_API_URL.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from escalation.people.contacts import ContactMethod, Rule, Rules, plan
from notify_core.wire.events import TOPIC_ALERTS
from tests.conftest import eventually
from tests.helpers import NodeClient, alert, new_tenant

methods = st.lists(
    st.builds(
        lambda i, kind, verified, disabled: ContactMethod(
            f"m{i}", "u", kind, "x", verified=verified, disabled=disabled
        ),
        st.integers(0, 5),
        st.sampled_from(["email", "sms", "voice"]),
        st.booleans(),
        st.booleans(),
    ),
    unique_by=lambda m: m.id,
    max_size=6,
)
rules = st.lists(
    st.builds(
        Rule, st.sampled_from([0.0, 60.0, 300.0]), st.sampled_from([f"m{i}" for i in range(7)])
    ),
    max_size=4,
)


@given(found=methods, default=rules, important=rules, critical=st.booleans())
def test_a_page_follows_the_users_rules_and_only_usable_methods(
    found, default, important, critical
):
    steps = plan(found, Rules(tuple(default), tuple(important)), critical)
    usable = {m.id for m in found if m.verified and not m.disabled}
    assert all(m.id in usable for m, _ in steps)
    chosen = important if critical and important else default
    if not chosen:  # no rules: every usable method, at once
        assert sorted(m.id for m, _ in steps) == sorted(usable) and all(a == 0 for _, a in steps)
    else:
        assert [(m.id, a) for m, a in steps] == [
            (r.contact_method_id, r.after_s) for r in chosen if r.contact_method_id in usable
        ]


def test_five_wrong_codes_lock_a_method_for_an_hour():
    method, code = ContactMethod("m", "u", "sms", "+254700000001").with_code(1000.0)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        method, result = method.check(wrong, 1001.0)
        assert result == "wrong"
    method, result = method.check(wrong, 1001.0)
    assert result == "locked"
    assert method.check(code, 1002.0)[1] == "locked"  # even the right one, for an hour
    assert not method.verified
    fresh, code = ContactMethod("m", "u", "sms", "+254700000001").with_code(1000.0)
    assert fresh.check(code, 1000.0 + 16 * 60)[1] == "expired"
    verified, result = fresh.check(code, 1001.0)
    assert result == "ok" and verified.verified and verified.pageable


async def _http(base_url: str, tok: str, method: str, path: str, body: Any = None):
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{base_url}{path}", json=body, headers={"Authorization": f"Bearer {tok}"}
        ) as r,
    ):
        return r.status, (await r.json() if r.content_type == "application/json" else None)


def _sms(sinks: Any, to: str) -> list[dict[str, list[str]]]:
    out = []
    for r in sinks.of("/twilio/2010-04-01/Accounts/ACtest0001/Messages.json"):
        form = parse_qs(r["body"].decode())
        if form.get("To") == [to]:
            out.append(form)
    return out


async def _code(sinks: Any, to: str) -> str:
    found = await eventually(lambda: [f for f in _sms(sinks, to) if "code" in f["Body"][0]], 10)
    return re.search(r"(\d{6})", found[-1]["Body"][0]).group(1)


async def test_a_method_is_verified_with_the_code_sent_through_it(base_url, token, sinks):
    tenant = new_tenant()
    tok = token(tenant, "ppl", ["operator"])
    number = "+254700000011"
    status, sms = await _http(base_url, tok, "POST", "/api/v1/me/contact-methods",
                              {"type": "sms", "value": number})  # fmt: skip
    assert status == 201 and sms["verified"] is False
    code = await _code(sinks, number)
    sent = sinks.of("/twilio/2010-04-01/Accounts/ACtest0001/Messages.json")[-1]
    expected = base64.b64encode(b"ACtest0001:twilio-test-token").decode()
    assert sent["headers"]["Authorization"] == f"Basic {expected}"  # Twilio's basic auth
    wrong = "000000" if code != "000000" else "111111"
    path = f"/api/v1/me/contact-methods/{sms['id']}/verify"
    assert (await _http(base_url, tok, "POST", path, {"code": wrong}))[0] == 400
    assert await _http(base_url, tok, "POST", path, {"code": code}) == (200, {"verified": True})
    _, listed = await _http(base_url, tok, "GET", "/api/v1/me/contact-methods")
    assert [(m["type"], m["verified"]) for m in listed["contact_methods"]] == [("sms", True)]
    # bad values name the field; another user's method cannot be verified from /me
    status, body = await _http(base_url, tok, "POST", "/api/v1/me/contact-methods",
                               {"type": "sms", "value": "0712345678"})  # fmt: skip
    assert status == 400 and "value: an E.164" in body["error"]
    other = token(tenant, "mallory", ["operator"])
    assert (await _http(base_url, other, "POST", path, {"code": code}))[0] == 404
    # only an admin creates a verified method, and only for others; it is audited
    linked = {"type": "voice", "value": "+254700000012", "verified": True}
    assert (await _http(base_url, tok, "POST", "/api/v1/me/contact-methods", linked))[0] == 403
    assert (await _http(base_url, tok, "POST", "/api/v1/users/ppl2/contact-methods", linked))[
        0
    ] == 403
    admin = token(tenant, "boss", ["admin"])
    status, made = await _http(
        base_url, admin, "POST", "/api/v1/users/ppl2/contact-methods", linked
    )
    assert status == 201 and made["verified"] is True
    _, audit = await _http(base_url, admin, "GET", "/api/v1/audit")
    assert any(r["action"] == "contact_method_linked" for r in audit["records"])


async def test_a_page_reaches_the_person_by_their_rules_and_an_ack_drops_the_rest(
    base_url, produce, token, sinks
):
    tenant = new_tenant()
    tok = token(tenant, "ppl", ["operator"])
    admin = token(tenant, "boss", ["admin"])
    number = "+254700000021"
    _, sms = await _http(base_url, admin, "POST", "/api/v1/users/ppl/contact-methods",
                         {"type": "sms", "value": number, "verified": True})  # fmt: skip
    _, slack = await _http(base_url, admin, "POST", "/api/v1/users/ppl/contact-methods",
                           {"type": "slack", "value": "U0PPL21", "verified": True})  # fmt: skip
    rules = {"default": [{"after": "0m", "contact_method_id": sms["id"]},
                         {"after": "2s", "contact_method_id": slack["id"]}]}  # fmt: skip
    status, body = await _http(base_url, tok, "PUT", "/api/v1/me/notification-rules", rules)
    assert status == 200 and body["default"][1] == {"after": "2s", "contact_method_id": slack["id"]}

    def dms(incident: str) -> list[dict]:
        return [r["json"] for r in sinks.of("/slackapi/chat.postMessage")
                if r["json"]["channel"] == "U0PPL21" and incident in r["json"]["text"]]  # fmt: skip

    op = await NodeClient.start(base_url, tok, ["websocket"])
    try:
        await op.connected()
        title = f"Generator fuel low {tenant}"
        await produce(TOPIC_ALERTS, alert(tenant, "PP-1", "critical", site="ppl-site", title=title))
        first = await eventually(
            lambda: [f for f in _sms(sinks, number) if title in f["Body"][0]], 10
        )
        assert "/a/" in first[0]["Body"][0]  # the page carries its acknowledge link
        # not acknowledged: the second rule reaches Slack 2 s later
        dm = await eventually(lambda: dms(title), 10)
        assert dm[0]["text"].startswith(f"[critical] {title} at ppl-site")
        # a second incident acknowledged before its Slack rule is due: the DM is dropped
        title2 = f"Door forced {tenant}"
        await produce(
            TOPIC_ALERTS, alert(tenant, "PP-2", "critical", site="ppl-site", title=title2)
        )
        await eventually(lambda: [f for f in _sms(sinks, number) if title2 in f["Body"][0]], 10)
        await op.emit("incident_action", {"incident_id": "PP-2", "action": "acknowledge"})
        await asyncio.sleep(3.0)
        assert dms(title2) == []

        async def dropped() -> bool:
            _, body = await _http(base_url, tok, "GET", "/api/v1/incidents/PP-2/timeline")
            return any(
                e["kind"] == "delivery" and e.get("type") == "slack"
                and e.get("result") == "dropped: acknowledged"
                for e in body["timeline"]
            )  # fmt: skip

        await eventually(dropped, 10)
        _, body = await _http(base_url, tok, "GET", "/api/v1/incidents/PP-1/timeline")
        reached = [
            (e.get("type"), e.get("result")) for e in body["timeline"] if e["kind"] == "delivery"
        ]
        assert ("sms", "ok") in reached and ("slack", "ok") in reached
    finally:
        await op.close()


async def test_a_restricted_user_is_not_paged_for_a_site_they_may_not_see(
    base_url, produce, token, sinks
):
    """Paging follows the profile of the user's last token (the one visibility rule)."""
    tenant = new_tenant()
    admin = token(tenant, "boss", ["admin"])
    number = "+254700000041"
    linked = {"type": "sms", "value": number, "verified": True}
    assert (await _http(base_url, admin, "POST", "/api/v1/users/ppl/contact-methods", linked))[
        0
    ] == 201
    restricted = token(tenant, "ppl", ["operator"], sites=["elsewhere"])
    assert (await _http(base_url, restricted, "GET", "/api/v1/me/contact-methods"))[0] == 200
    await produce(TOPIC_ALERTS, alert(tenant, "RS-1", "critical", site="ppl-site", title="Hidden"))

    async def not_paged() -> bool:
        _, body = await _http(base_url, admin, "GET", "/api/v1/incidents/RS-1/timeline")
        return any(
            e["kind"] == "not_paged" and e["user_id"] == "ppl" for e in body.get("timeline", [])
        )

    await eventually(not_paged, 10)
    await asyncio.sleep(0.5)
    assert _sms(sinks, number) == []  # no page for a site they may not see
    # the positive twin: signed in with every site, the next page reaches them
    everything = token(tenant, "ppl", ["operator"])
    assert (await _http(base_url, everything, "GET", "/api/v1/me/contact-methods"))[0] == 200
    await produce(TOPIC_ALERTS, alert(tenant, "RS-2", "critical", site="ppl-site", title="Seen"))
    await eventually(lambda: [f for f in _sms(sinks, number) if "Seen" in f["Body"][0]], 10)


KILL_POLICY = """\
policies:
  - name: people-kill
    match: {severities: [critical]}
    levels:
      - wait: 300ms
        targets: [{user: pk}]
"""


async def test_a_process_killed_between_two_rules_leaves_the_second_to_the_survivor_once(
    broker, redis_url, token, tmp_path, sinks
):
    """Two pipeline processes share the outbox: the one that sent the first rule's SMS is
    SIGKILLed before the second rule is due; the other sends it, exactly once."""
    from tests.test_processes import cluster_env, spawn, stop, wait_ready
    from towerco_notify.embedded_broker import free_port

    (tmp_path / "escalation.yaml").write_text(KILL_POLICY)
    env = cluster_env(
        broker,
        redis_url,
        "pkill",
        NOTIFY_CONFIG_DIR=str(tmp_path),
        NOTIFY_TWILIO_URL=f"{sinks.base}/twilio",
        NOTIFY_TWILIO_ACCOUNT_SID="ACtest0001",
        NOTIFY_TWILIO_AUTH_TOKEN="twilio-test-token",
        NOTIFY_TWILIO_FROM="+15550001111",
    )
    ports = [free_port(), free_port()]
    procs = [await spawn("pipeline", "--http-port", str(p), env=env) for p in ports]
    tenant = new_tenant()
    first, second = "+254700000061", "+254700000062"
    try:
        for port, proc in zip(ports, procs, strict=True):
            await wait_ready(port, proc)
        base = f"http://127.0.0.1:{ports[0]}"
        admin = token(tenant, "boss", ["admin"])
        made = []
        for number in (first, second):
            linked = {"type": "sms", "value": number, "verified": True}
            path = "/api/v1/users/pk/contact-methods"
            status, method = await _http(base, admin, "POST", path, linked)
            assert status == 201
            made.append(method["id"])
        rules = {"default": [{"after": "0m", "contact_method_id": made[0]},
                             {"after": "5s", "contact_method_id": made[1]}]}  # fmt: skip
        assert (await _http(base, token(tenant, "pk", ["operator"]), "PUT",
                            "/api/v1/me/notification-rules", rules))[0] == 200  # fmt: skip
        import orjson
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        await producer.send_and_wait(
            TOPIC_ALERTS, orjson.dumps(alert(tenant, "PK-1", site="pk-site")), key=tenant.encode()
        )
        await producer.stop()
        await eventually(lambda: _sms(sinks, first), 30)

        async def sent_by() -> list[dict] | None:
            _, body = await _http(base, admin, "GET", "/api/v1/incidents/PK-1/timeline")
            found = [e for e in body.get("timeline", []) if e["kind"] == "delivery"]
            return found or None

        entry = (await eventually(sent_by, 10))[0]
        victim = next(p for p in procs if p.pid == int(entry["process"].rsplit(":", 1)[1]))
        victim.kill()  # before the second rule is due: it is only in the outbox
        await victim.wait()
        await eventually(lambda: _sms(sinks, second), 30)
        await asyncio.sleep(2.0)  # a duplicate would be here by now
        assert len(_sms(sinks, second)) == 1 and len(_sms(sinks, first)) == 1
    finally:
        for proc in procs:
            if proc.returncode is None:
                await stop(proc)


async def test_sms_pages_to_one_person_are_throttled():
    from escalation.people.contacts import PeopleStore
    from escalation.people.reach import THROTTLE, THROTTLE_WINDOW_S

    store = PeopleStore(None)
    allowed = [
        not await store.throttled("t", "u", "sms", THROTTLE["sms"], THROTTLE_WINDOW_S)
        for _ in range(THROTTLE["sms"] + 2)
    ]
    assert allowed == [True] * 5 + [False, False]  # five in the window, then throttled
    other = await store.throttled("t", "v", "sms", THROTTLE["sms"], THROTTLE_WINDOW_S)
    assert other is False  # per user


async def test_an_email_rule_reaches_the_person_by_mail(base_url, produce, token, sinks):
    tenant = new_tenant()
    admin = token(tenant, "boss", ["admin"])
    address = f"ppl-{tenant}@example.com"
    linked = {"type": "email", "value": address, "verified": True}
    assert (await _http(base_url, admin, "POST", "/api/v1/users/ppl/contact-methods", linked))[
        0
    ] == 201
    title = f"Battery low {tenant}"
    await produce(TOPIC_ALERTS, alert(tenant, "EM-1", "critical", site="ppl-site", title=title))
    mail = await eventually(
        lambda: [m for m in sinks.mailbox.messages if m["To"] == address], timeout=15
    )
    assert title in mail[0]["Subject"]
    body = mail[0].get_content()
    assert "Acknowledge: http://noc.example:8080/a/" in body
