"""Reaching one person through one contact method: the `person` jobs of the outbox.

A page that names users (a `user:` target, the people on call in a `schedule:` or
`site_oncall:` target) becomes, per user, one job per notification rule, due at page time
+ `after` (`escalation.people.contacts.plan`). When a job comes due it is dropped if the
incident was acknowledged, resolved or snoozed meanwhile; it is throttled per method type
and user (sms 5 and voice 3 per 15 minutes by default); else it goes out:

- email through the email receiver's SMTP server,
- sms and voice through a Twilio-compatible REST API (`POST .../Messages.json` and
  `.../Calls.json`, form fields, HTTP basic auth with the account SID and auth token),
- slack as a direct message (`chat.postMessage` to the Slack user id, bot token),
- webpush to that user's registered subscriptions.

The same module sends verification codes (`send_code`).
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from escalation.people.contacts import ContactMethod, PeopleStore, plan
from escalation.people.replies import Paged, SmsReplies
from escalation.receivers.outbox import Job
from escalation.receivers.senders import PageLinks, Sent
from escalation.webhooks import HttpClient
from notify_core.state.incidents import IncidentStore

THROTTLE = {"sms": 5, "voice": 3}  # per user and type, per THROTTLE_WINDOW_S
THROTTLE_WINDOW_S = 15 * 60
QUIET = ("acknowledged", "resolved", "snoozed")


def _basic(user: str, password: str) -> str:
    """HTTP basic auth (RFC 7617), as Twilio's API takes the account SID and token."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Twilio:
    """A Twilio-compatible REST API (`NOTIFY_TWILIO_*`)."""

    url: str
    account_sid: str | None
    auth_token: Callable[[], str | None]
    sender: str | None

    def problem(self) -> str | None:
        if not (self.account_sid and self.sender and self.auth_token()):
            return "SMS/voice need NOTIFY_TWILIO_ACCOUNT_SID, _AUTH_TOKEN(_FILE) and _FROM"
        return None

    async def _post(self, http: aiohttp.ClientSession, what: str, form: dict[str, str]) -> Sent:
        problem = self.problem()
        if problem is not None:
            return Sent(False, None, problem, retry=False)
        assert self.account_sid is not None
        url = f"{self.url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/{what}.json"
        auth = {"Authorization": _basic(self.account_sid, self.auth_token() or "")}
        try:
            async with http.post(url, data=form, headers=auth) as resp:
                body = (await resp.read())[:300].decode("utf-8", "replace")
                if resp.status < 300:
                    return Sent(True, resp.status)
                retry = resp.status >= 500 or resp.status == 429
                return Sent(False, resp.status, f"HTTP {resp.status}: {body}", retry)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Sent(False, None, f"{type(exc).__name__}: {exc}")

    async def sms(self, http: aiohttp.ClientSession, to: str, body: str) -> Sent:
        return await self._post(
            http, "Messages", {"To": to, "From": self.sender or "", "Body": body}
        )

    async def call(self, http: aiohttp.ClientSession, to: str, say: str, gather_url: str) -> Sent:
        twiml = (
            f'<Response><Gather numDigits="1" action="{html.escape(gather_url)}">'
            f"<Say>{html.escape(say)} Press 4 to acknowledge, 6 to resolve.</Say>"
            "</Gather></Response>"
        )
        form = {"To": to, "From": self.sender or "", "Twiml": twiml}
        return await self._post(http, "Calls", form)


@dataclass(frozen=True)
class Slack:
    api_url: str
    token: str | None

    async def dm(self, http: aiohttp.ClientSession, user: str, text: str) -> Sent:
        if not self.token:
            return Sent(False, None, "Slack direct messages need NOTIFY_SLACK_BOT_TOKEN", False)
        url = f"{self.api_url.rstrip('/')}/chat.postMessage"
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with http.post(url, json={"channel": user, "text": text}, headers=headers) as r:
                body = await r.json(content_type=None)
                if r.status < 300 and body.get("ok"):
                    return Sent(True, r.status)
                return Sent(
                    False, r.status, f"Slack: {body.get('error', r.status)}", r.status >= 500
                )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return Sent(False, None, f"{type(exc).__name__}: {exc}")


def person_jobs(
    people_plan: dict[str, list[tuple[ContactMethod, float]]],
    event: dict[str, Any],
    severity: str,
    step_key: str,
    templates: dict[str, str],
) -> list[tuple[Job, float]]:
    """The outbox jobs of one page for the users it names, each with its delay (s)."""
    tenant, incident = event["tenant_id"], event["incident_id"]
    out = []
    for user, steps in people_plan.items():
        for n, (method, after) in enumerate(steps):
            job = Job(
                id=f"{tenant}/{incident}/{step_key}/person/{user}/{n}/{method.id}",
                type="person",
                tenant_id=tenant,
                incident_id=incident,
                target={"user": user, "method": method.id, "kind": method.type},
                event=event,
                severity=severity,
                templates=templates,
            )
            out.append((job, after))
    return out


async def page_plan(
    store: PeopleStore, tenant: str, users: list[str], critical: bool
) -> dict[str, list[tuple[ContactMethod, float]]]:
    found = {}
    for user in users:
        methods = await store.methods(tenant, user)
        steps = plan(methods, await store.rules(tenant, user), critical)
        if steps:
            found[user] = steps
    return found


class PersonSender:
    """Sends `person` jobs; also used for verification codes."""

    def __init__(
        self,
        store: PeopleStore,
        incidents: IncidentStore | None,
        http: HttpClient,
        links: PageLinks,
        email: Callable[[str, str, str], Awaitable[Sent]],
        twilio: Twilio,
        slack: Slack,
        push: Callable[[str, str, dict[str, Any]], Awaitable[Sent]],
        public_base: Callable[[], str],
        replies: SmsReplies | None = None,
    ) -> None:
        """`email(to, subject, text)` and `push(tenant, user, data)`: coroutines of the
        email and Web Push receivers."""
        self.store, self.incidents, self.http, self.links = store, incidents, http, links
        self.email, self.twilio, self.slack, self.push = email, twilio, slack, push
        self.public_base = public_base
        self.replies = replies

    async def send(self, job: Job) -> Sent:
        user, ident = str(job.target["user"]), str(job.target["method"])
        method = await self.store.method(job.tenant_id, user, ident)
        info = {"type": job.target.get("kind"), "user_id": user}
        if method is None or not method.pageable:
            return Sent(False, None, "contact method removed or not usable", False, info)
        if self.incidents is not None:
            state = await self.incidents.get(job.tenant_id, job.incident_id)
            now_ms = int(time.time() * 1000)
            if state is not None and state.current(now_ms).status in QUIET:
                status = state.current(now_ms).status
                return Sent(True, None, None, False, {**info, "result": f"dropped: {status}"})
        limit = THROTTLE.get(method.type)
        if limit is not None and await self.store.throttled(
            job.tenant_id, user, method.type, limit, THROTTLE_WINDOW_S
        ):
            return Sent(False, None, "throttled", False, {**info, "result": "throttled"})
        f = await self.links.fields(job, user)
        sent = await self._deliver(job, method, f)
        return Sent(sent.ok, sent.status, sent.error, sent.retry, {**info, **sent.info})

    async def _deliver(self, job: Job, method: ContactMethod, f: dict[str, str]) -> Sent:
        text = f"[{f['severity']}] {f['title']} at {f['site']} (level {f['level']})"
        http = self.http.session
        if method.type == "email":
            body = f"{text}\n\nAcknowledge: {f['ack_link']}\nResolve: {f['resolve_link']}\n"
            return await self.email(method.value, text, body + f"Open: {f['link']}\n")
        if method.type == "sms":
            body = f"{text}\nAck: {f['ack_link']}"
            if self.replies is not None:
                paged = Paged(job.tenant_id, method.user_id, job.incident_id, method.id)
                n = await self.replies.code_for(method.value, paged)
                body = f"{text}\nReply {n}a to acknowledge, {n}c to resolve. {f['ack_link']}"
            return await self.twilio.sms(http, method.value, body)
        if method.type == "voice":
            gather = f"{self.public_base().rstrip('/')}/api/v1/integrations/twilio/voice"
            links = self.links.links
            if links is not None:  # the digits act as this person, on this incident
                token = await links.mint(job.tenant_id, job.incident_id, "voice", method.user_id)
                gather += f"?t={token}"
            return await self.twilio.call(http, method.value, text, gather)
        if method.type == "slack":
            return await self.slack.dm(
                http, method.value, f"{text} <{f['ack_link']}|Acknowledge> · <{f['link']}|Open>"
            )
        data = {"title": text, "body": f["title"], "incident_id": job.incident_id,
                "url": f["link"], "ack_url": f["ack_link"]}  # fmt: skip
        return await self.push(job.tenant_id, str(job.target["user"]), data)

    async def notify(self, tenant: str, user: str, subject: str, text: str) -> int:
        """A notice (a handoff) on every usable method of `user` but voice; how many took it."""
        sent = 0
        http = self.http.session
        for method in await self.store.methods(tenant, user):
            if not method.pageable:
                continue
            try:
                if method.type == "email":
                    result = await self.email(method.value, subject, text)
                elif method.type == "sms":
                    result = await self.twilio.sms(http, method.value, text[:600])
                elif method.type == "slack":
                    result = await self.slack.dm(http, method.value, text)
                elif method.type == "webpush":
                    result = await self.push(tenant, user, {"title": subject, "body": text[:300]})
                else:
                    continue  # a call for a handoff would wake someone for no incident
            except Exception as exc:  # one method down does not keep the others from it
                result = Sent(False, None, f"{type(exc).__name__}: {exc}")
            sent += 1 if result.ok else 0
        return sent

    async def send_code(self, tenant: str, method: ContactMethod, code: str) -> Sent:
        """A verification code, through the method being verified."""
        text = f"towerco-notify verification code: {code}"
        http = self.http.session
        try:
            if method.type == "email":
                return await self.email(method.value, "Your towerco-notify code", text + "\n")
            if method.type == "sms":
                return await self.twilio.sms(http, method.value, text)
            if method.type == "voice":
                spoken = " ".join(code)
                return await self.twilio.call(http, method.value, f"Your code is {spoken}.", "")
            if method.type == "slack":
                return await self.slack.dm(http, method.value, text)
        except Exception as exc:  # a receiver down: the caller says so, the code can be resent
            return Sent(False, None, f"{type(exc).__name__}: {exc}")
        return Sent(False, None, f"no code for {method.type}", False)
