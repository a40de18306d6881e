"""Acting from Slack and PagerDuty, from the attacker's side first: unsigned, wrongly
signed, replayed and stale callbacks change nothing; signed ones act once, as the person
(Slack) or as `pagerduty:<agent>`, and nothing is sent back to PagerDuty for its own."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from notify_core.wire.events import TOPIC_ALERTS
from tests.conftest import PAGERDUTY_WEBHOOK_SECRET, SLACK_SIGNING_SECRET, eventually
from tests.helpers import NodeClient, alert, new_tenant


def _slack_request(payload: dict[str, Any], secret: str, at: float | None = None):
    body = urlencode({"payload": orjson.dumps(payload).decode()}).encode()
    ts = str(int(time.time() if at is None else at))
    sig = (
        "v0="
        + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    )
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


def _button(incident: str, slack_user: str, action: str = "towerco_acknowledge") -> dict:
    return {
        "type": "block_actions",
        "team": {"id": "T0TOWER"},
        "user": {"id": slack_user},
        "actions": [{"action_id": action, "value": incident, "action_ts": str(time.time())}],
    }


async def _updates(client: NodeClient, incident: str) -> list[dict]:
    return [e for e in client.events("incident_update") if e["incident_id"] == incident]


async def test_a_slack_button_acts_as_the_linked_person_once(base_url, produce, token):
    tenant = new_tenant()
    slack_user = "U" + uuid.uuid4().hex[:8].upper()
    admin = token(tenant, "boss", ["admin"])
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/api/v1/users/sl-user/contact-methods",
            json={"type": "slack", "value": slack_user, "verified": True},
            headers={"Authorization": f"Bearer {admin}"},
        ) as r:
            assert r.status == 201
    watcher = await NodeClient.start(base_url, token(tenant, "w"), ["websocket"])
    url = f"{base_url}/api/v1/integrations/slack/interactions"
    try:
        await watcher.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "SL-1", "critical", site="nowhere"))
        await watcher.wait_for(lambda m: m.get("name") == "incident_alert", 10)
        payload = _button("SL-1", slack_user)
        body, headers = _slack_request(payload, SLACK_SIGNING_SECRET)
        # the attacker: no signature, another secret, a stale timestamp, a changed body
        assert (await _post(url, body, {"Content-Type": headers["Content-Type"]}))[0] == 401
        assert (await _post(url, *_slack_request(payload, "guessed")))[0] == 401
        assert (
            await _post(url, *_slack_request(payload, SLACK_SIGNING_SECRET, time.time() - 600))
        )[0] == 401
        tampered = body.replace(b"SL-1", b"SL-2")
        assert (await _post(url, tampered, headers))[0] == 401
        await asyncio.sleep(0.5)
        assert await _updates(watcher, "SL-1") == []
        # the positive twin: signed, by a linked Slack user
        status, answer = await _post(url, body, headers)
        assert status == 200 and answer["text"] == "Incident SL-1 acknowledged."
        update = await watcher.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"]["incident_id"] == "SL-1", 10
        )
        assert update["data"]["by"] == "sl-user" and update["data"]["source"] == "slack"
        # the same delivery again acts once; an unlinked Slack user changes nothing
        assert (await _post(url, body, headers))[1]["text"] == "Already done."
        stranger = _slack_request(
            _button("SL-1", "U0NOBODY", "towerco_resolve"), SLACK_SIGNING_SECRET
        )
        status, answer = await _post(url, *stranger)
        assert status == 200 and "not linked" in answer["text"]
        await asyncio.sleep(0.5)
        assert len(await _updates(watcher, "SL-1")) == 1
    finally:
        await watcher.close()


def _pd(incident_key: str, kind: str = "incident.resolved", event_id: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "event": {
                "id": event_id or uuid.uuid4().hex,
                "event_type": kind,
                "resource_type": "incident",
                "agent": {"id": "PAGENT1", "summary": "Dayo Okoro", "type": "user_reference"},
                "data": {
                    "id": "PINC1",
                    "type": "incident",
                    "incident_key": incident_key,
                    "status": kind.split(".")[1],
                },
            }
        }
    )


def _pd_sig(body: bytes, secret: str) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_pagerduty_resolves_what_it_was_paged_for_and_hears_nothing_back(
    base_url, produce, token, sinks
):
    tenant = new_tenant()
    key = f"towerco-notify/{tenant}/PD-1"
    watcher = await NodeClient.start(base_url, token(tenant, "w"), ["websocket"])
    url = f"{base_url}/api/v1/integrations/pagerduty/webhook"
    try:
        await watcher.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "PD-1", "critical", site="rcv-site"))

        def paged() -> list[dict]:
            return [r for r in sinks.of("/pd") if r.get("json", {}).get("dedup_key") == key]

        await eventually(paged, 15)  # PagerDuty was paged (the receivers policy)
        body = _pd(key)
        # the attacker: unsigned, wrongly signed
        assert (await _post(url, body, {}))[0] == 401
        assert (await _post(url, body, {"X-PagerDuty-Signature": _pd_sig(body, "guessed")}))[
            0
        ] == 401
        await asyncio.sleep(0.3)
        assert await _updates(watcher, "PD-1") == []
        # signed (one of two signatures, as while a secret rotates): resolves ours
        both = f"{_pd_sig(body, 'old-secret')}, {_pd_sig(body, PAGERDUTY_WEBHOOK_SECRET)}"
        status, answer = await _post(url, body, {"X-PagerDuty-Signature": both})
        assert status == 200 and answer == {"ok": True, "incident_id": "PD-1", "action": "resolve"}
        update = await watcher.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"]["incident_id"] == "PD-1", 10
        )
        assert update["data"]["status"] == "resolved"
        assert (
            update["data"]["by"] == "pagerduty:Dayo Okoro"
            and update["data"]["source"] == "pagerduty"
        )
        # the same event again acts once; an incident not ours is ignored
        assert (await _post(url, body, {"X-PagerDuty-Signature": both}))[1].get("repeat") is True
        other = _pd("their-own-key")
        status, answer = await _post(
            url, other, {"X-PagerDuty-Signature": _pd_sig(other, PAGERDUTY_WEBHOOK_SECRET)}
        )
        assert status == 200 and "ignored" in answer
        await asyncio.sleep(1.0)
        # nothing went back to PagerDuty for the resolve it told us of
        assert [r["json"]["event_action"] for r in paged()] == ["trigger"]
    finally:
        await watcher.close()
