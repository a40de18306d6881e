"""Answering a page from the phone: SMS replies (`3a`, `3c`, STOP) and the digits of a page
call, through the session daemon; Twilio's signature checked from the attacker's side.
The session daemon's NOTIFY_PUBLIC_URL is http://noc.example:8080: Twilio signs that URL."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, urlencode

import aiohttp

from notify_core.wire.events import TOPIC_ALERTS
from sio_server.inbound.twilio import twilio_signature
from tests.conftest import eventually
from tests.helpers import NodeClient, alert, new_tenant

TOKEN = "twilio-test-token"
PUBLIC = "http://noc.example:8080"


async def _twilio(base_url: str, path: str, form: dict[str, str], token: str | None = TOKEN):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token is not None:
        headers["X-Twilio-Signature"] = twilio_signature(token, PUBLIC + path, form)
    async with (
        aiohttp.ClientSession() as http,
        http.post(base_url + path, data=urlencode(form), headers=headers) as r,
    ):
        return r.status, await r.text()


def _sent(sinks: Any, what: str, to: str) -> list[dict[str, list[str]]]:
    out = []
    for r in sinks.of(f"/twilio/2010-04-01/Accounts/ACtest0001/{what}.json"):
        form = parse_qs(r["body"].decode())
        if form.get("To") == [to]:
            out.append(form)
    return out


async def test_a_page_is_answered_by_sms_and_by_the_call(base_url, produce, token, sinks):
    tenant = new_tenant()
    admin = token(tenant, "boss", ["admin"])
    number, phone = "+254700000031", "+254700000032"
    async with aiohttp.ClientSession() as http:
        for kind, value in (("sms", number), ("voice", phone)):
            async with http.post(
                f"{base_url}/api/v1/users/ppl/contact-methods",
                json={"type": kind, "value": value, "verified": True},
                headers={"Authorization": f"Bearer {admin}"},
            ) as r:
                assert r.status == 201
    watcher = await NodeClient.start(base_url, token(tenant, "w"), ["websocket"])
    try:
        await watcher.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "TW-1", "critical", site="ppl-site"))
        sms = await eventually(lambda: _sent(sinks, "Messages", number), 10)
        code = re.search(r"Reply (\d+)a to acknowledge, \1c to resolve", sms[-1]["Body"][0]).group(
            1
        )
        reply = {"From": number, "To": "+15550001111", "Body": f"{code}A", "MessageSid": "SM1"}
        path = "/api/v1/integrations/twilio/sms"
        # the attacker: unsigned, signed with a guessed token, the body changed after signing
        assert (await _twilio(base_url, path, reply, None))[0] == 403
        assert (await _twilio(base_url, path, reply, "guessed"))[0] == 403
        await asyncio.sleep(0.3)
        assert not [e for e in watcher.events("incident_update") if e["incident_id"] == "TW-1"]
        status, twiml = await _twilio(base_url, path, reply)
        assert status == 200 and "Incident TW-1 acknowledged." in twiml
        update = await watcher.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"]["incident_id"] == "TW-1", 10
        )
        assert update["data"]["by"] == "ppl" and update["data"]["source"] == "sms"
        assert "Already done." in (await _twilio(base_url, path, reply))[1]  # the same message
        assert (
            "Reply with the code"
            in (await _twilio(base_url, path, {**reply, "Body": "ok", "MessageSid": "SM2"}))[1]
        )
        # the call: its Gather posts the digit to a URL that names this page
        call = await eventually(lambda: _sent(sinks, "Calls", phone), 10)
        gather = re.search(r'action="([^"]+)"', call[-1]["Twiml"][0]).group(1).replace("&amp;", "&")
        voice = gather.removeprefix(PUBLIC)
        assert voice.startswith("/api/v1/integrations/twilio/voice?t=")
        digits = {"Digits": "6", "From": phone, "CallSid": "CA1"}
        assert (await _twilio(base_url, voice, digits, "guessed"))[0] == 403
        status, twiml = await _twilio(base_url, voice, digits)
        assert status == 200 and "Incident resolved" in twiml
        await watcher.wait_for(
            lambda m: m.get("name") == "incident_update" and m["data"].get("status") == "resolved",
            10,
        )
        assert "can no longer act" in (await _twilio(base_url, voice, digits))[1]  # once
        # STOP: no more SMS pages to that number
        stop = {"From": number, "To": "+15550001111", "Body": "STOP", "MessageSid": "SM3"}
        assert "stopped (1" in (await _twilio(base_url, path, stop))[1]
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{base_url}/api/v1/users/ppl/contact-methods",
                headers={"Authorization": f"Bearer {admin}"},
            ) as r,
        ):
            methods = {m["type"]: m for m in (await r.json())["contact_methods"]}
        assert methods["sms"]["disabled"] is True and methods["voice"]["disabled"] is False
    finally:
        await watcher.close()
