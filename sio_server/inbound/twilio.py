"""Answers to SMS and voice pages, from Twilio (or a compatible API).

- `POST /api/v1/integrations/twilio/sms`: a reply to a page SMS. `3a` acknowledges and
  `3c` resolves the incident that recipient's code 3 names, as the user the page went to;
  `STOP` disables the number's sms contact method; anything else gets a short help reply
  and changes nothing.
- `POST /api/v1/integrations/twilio/voice?t=<token>`: the digit a paged person pressed:
  `4` acknowledges, `6` resolves.

Both only with a valid `X-Twilio-Signature` (base64 HMAC-SHA1, keyed with the auth token,
over the full URL Twilio called followed by the form's fields sorted by name, each name
then value), else 403. The URL is `NOTIFY_PUBLIC_URL` + path and query when set (behind a
proxy Twilio calls the public one), else the one requested. A message delivered twice
(`MessageSid`) acts once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import time
from collections.abc import Callable
from typing import NamedTuple

from aiohttp import web

from escalation.people.contacts import PeopleStore
from escalation.people.replies import SmsReplies, parse_reply
from notify_core.action_links import ActionLinks
from notify_core.obs import metrics
from sio_server.admission.auth import Principal
from sio_server.inbound.chatops import Once
from sio_server.incident_actions import IncidentActions


class TwilioReplies(NamedTuple):
    """What the answers need from the composition root."""

    replies: SmsReplies
    auth_token: Callable[[], str | None]
    public_url: str | None


HELP = "Reply with the code of a page and a (acknowledge) or c (resolve), e.g. 3a. STOP: no SMS."
DIGITS = {"4": "acknowledge", "6": "resolve"}


def twilio_signature(token: str, url: str, form: dict[str, str]) -> str:
    data = url + "".join(f"{k}{form[k]}" for k in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _twiml(inner: str) -> web.Response:
    return web.Response(
        text=f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>',
        content_type="text/xml",
    )


def _say(text: str) -> web.Response:
    return _twiml(f"<Say>{html.escape(text)}</Say>")


def _message(text: str) -> web.Response:
    return _twiml(f"<Message>{html.escape(text)}</Message>")


class TwilioApi:
    def __init__(
        self,
        actions: IncidentActions,
        people: PeopleStore,
        replies: SmsReplies,
        links: ActionLinks,
        once: Once,
        auth_token: Callable[[], str | None],
        public_url: str | None,
    ) -> None:
        self.actions, self.people, self.replies, self.links = actions, people, replies, links
        self.once, self.auth_token, self.public_url = once, auth_token, public_url

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/integrations/twilio/sms", self.sms)
        app.router.add_post("/api/v1/integrations/twilio/voice", self.voice)

    async def _signed(self, request: web.Request) -> dict[str, str] | None:
        """The form, when the signature holds; None otherwise."""
        token = self.auth_token()
        if request.content_type not in ("application/x-www-form-urlencoded", ""):
            return None  # Twilio posts forms only; a multipart body is not read
        try:
            posted = await request.post()
        except ValueError:  # a malformed form: refused like a bad signature
            return None
        form = {k: str(v) for k, v in posted.items()}
        if not token:
            return None
        url = self.public_url.rstrip("/") + request.path_qs if self.public_url else str(request.url)
        expected = twilio_signature(token, url, form)
        given = request.headers.get("X-Twilio-Signature", "")
        return form if hmac.compare_digest(expected, given) else None

    async def _as(self, tenant: str, user: str) -> Principal:
        """The person paged, with the sites of their last token (as their dashboard)."""
        sites = await self.people.sites_of(tenant, user)
        return Principal(user, tenant, frozenset({"oncall"}), sites, time.time() + 60)

    async def sms(self, request: web.Request) -> web.Response:
        form = await self._signed(request)
        if form is None:
            metrics.CHATOPS.labels("sms", "refused").inc()
            return web.Response(status=403, text="forbidden")
        number, body = form.get("From", ""), form.get("Body", "")
        if body.strip().upper() in ("STOP", "STOPALL", "UNSUBSCRIBE"):
            stopped = await self.people.disable_number(number)
            metrics.CHATOPS.labels("sms", "stop").inc()
            return _message(f"SMS pages stopped ({stopped} method(s)).")
        reply = parse_reply(body)
        paged = await self.replies.paged(number, reply[0]) if reply else None
        if reply is None or paged is None:
            metrics.CHATOPS.labels("sms", "help").inc()
            return _message(HELP)
        if not await self.once.first(f"sms:{form.get('MessageSid') or body}:{number}"):
            return _message("Already done.")
        outcome = await self.actions.act(
            await self._as(paged.tenant, paged.user),
            paged.incident_id,
            reply[1],
            "sms",
            request.remote,
            origin="sms",
        )
        metrics.CHATOPS.labels("sms", "ok" if outcome.ok else "refused_action").inc()
        done = f"{reply[1]}d" if outcome.ok else f"not done ({outcome.error})"
        return _message(f"Incident {paged.incident_id} {done}.")

    async def voice(self, request: web.Request) -> web.Response:
        form = await self._signed(request)
        if form is None:
            metrics.CHATOPS.labels("voice", "refused").inc()
            return web.Response(status=403, text="forbidden")
        action = DIGITS.get(form.get("Digits", ""))
        if action is None:
            return _say("No action taken. Goodbye.")
        state, link = await self.links.use(request.query.get("t", ""))
        if state != "ok" or link is None or link.action != "voice":
            return _say("This call can no longer act. Goodbye.")
        outcome = await self.actions.act(
            await self._as(link.tenant, link.actor),
            link.incident_id,
            action,
            "voice",
            request.remote,
            origin="voice",
        )
        metrics.CHATOPS.labels("voice", "ok" if outcome.ok else "refused_action").inc()
        return _say(f"Incident {action}d. Goodbye." if outcome.ok else "Not done. Goodbye.")
