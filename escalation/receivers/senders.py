"""Each receiver's protocol: one `send(job) -> Sent` per type, no retries here (the
worker retries with backoff, durably); what may leave the process is only the payload.

- email: SMTP (aiosmtplib), STARTTLS when offered (`smtps://` for implicit TLS), auth when
  the URL has a user; a plain-text and an HTML part.
- slack: incoming-webhook `{"text", "blocks"}`.
- teams: incoming-webhook (Workflows) message with one Adaptive Card.
- pagerduty: Events API v2, `dedup_key` stable per (tenant, incident): trigger on a page,
  acknowledge and resolve when the incident is.
- webpush: VAPID-signed, aes128gcm-encrypted (pywebpush) to each registered subscription
  of the target's role or user; a 404/410 drops the subscription.
- webhook: the signed JSON POST (`escalation.webhooks`, which retries on its own).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson

from escalation.receivers.outbox import Job
from escalation.receivers.page import page_fields, render
from escalation.receivers.push import PushStore, VapidKeys
from escalation.targets import Target
from escalation.webhooks import HttpClient, WebhookSender
from notify_core.action_links import ActionLinks
from notify_core.redact import url_origin
from notify_core.secret_refs import read_secret

log = logging.getLogger(__name__)

PD_SEVERITY = {"critical": "critical", "major": "error", "minor": "warning", "warning": "warning"}


@dataclass
class Sent:
    """One attempt's result. `retry`: worth trying again later (else final)."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retry: bool = True
    info: dict[str, Any] = field(default_factory=dict)


class Sender(Protocol):
    async def send(self, job: Job) -> Sent: ...


def dedup_key(tenant: str, incident_id: str) -> str:
    """PagerDuty's incident key: the same for every page and change of one incident."""
    return f"towerco-notify/{tenant}/{incident_id}"


def _fields(job: Job, link_base: Callable[[], str]) -> dict[str, str]:
    link = f"{link_base().rstrip('/')}/#incident={job.incident_id}"
    return page_fields(job.event, job.severity, link)


class PageLinks:
    """A page's links: the dashboard's, and (with action links) one to acknowledge and one
    to resolve as `actor`, the person or address the page goes to."""

    def __init__(self, base: Callable[[], str], links: ActionLinks | None = None) -> None:
        self.base, self.links = base, links

    async def fields(self, job: Job, actor: str) -> dict[str, str]:
        root = self.base().rstrip("/")
        link = f"{root}/#incident={job.incident_id}"
        actions: dict[str, str] = {}
        if self.links is not None and job.action == "trigger":
            for action in ("acknowledge", "resolve"):
                token = await self.links.mint(job.tenant_id, job.incident_id, action, actor)
                actions[action] = f"{root}/a/{token}"
        return page_fields(job.event, job.severity, link, actions)


async def _post_json(session: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> Sent:
    try:
        async with session.post(
            url, data=orjson.dumps(payload), headers={"Content-Type": "application/json"}
        ) as resp:
            body = (await resp.read())[:300].decode("utf-8", "replace")
            if resp.status < 300:
                return Sent(True, resp.status)
            # 4xx but 408/429: the payload or the key is wrong, trying again cannot help
            retry = resp.status >= 500 or resp.status in (408, 429)
            return Sent(False, resp.status, f"HTTP {resp.status}: {body}", retry)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # an error's text may quote the URL: only its origin leaves the process
        return Sent(False, None, f"{type(exc).__name__}: {exc}".replace(url, url_origin(url)))


class ChatSender:
    """Slack and Teams incoming webhooks; the URL is read from its env var or file now."""

    def __init__(self, kind: str, http: HttpClient, links: PageLinks) -> None:
        self.kind, self.http, self.links = kind, http, links

    async def send(self, job: Job) -> Sent:
        target = Target.model_validate(job.target)
        ref = getattr(target, self.kind)
        url = read_secret(ref.source()) if ref is not None else None
        if not url:
            return Sent(False, None, f"{self.kind} webhook URL is unset ({ref.source()[1]})")
        f = await self.links.fields(job, self.kind)  # whoever in the channel clicks
        text = render(self.kind, f, job.templates)
        payload = slack_payload(text, f) if self.kind == "slack" else teams_payload(text, f)
        return await _post_json(self.http.session, url, payload)


def slack_payload(text: str, f: dict[str, str]) -> dict[str, Any]:
    def button(action: str, label: str, style: str) -> dict[str, Any]:
        return {
            "type": "button",
            "action_id": f"towerco_{action}",
            "text": {"type": "plain_text", "text": label},
            "value": f["incident_id"],
            "style": style,
        }

    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {  # with the Slack app's interactivity on, these act (chatops_api.py)
                "type": "actions",
                "elements": [
                    button("acknowledge", "Acknowledge", "primary"),
                    button("resolve", "Resolve", "danger"),
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"incident {f['incident_id']} · policy {f['policy']} · "
                        f"cycle {f['cycle']}",
                    }
                ],
            },
        ],
    }


def teams_payload(text: str, f: dict[str, str]) -> dict[str, Any]:
    facts = [
        {"title": "Site", "value": f["site"]},
        {"title": "Severity", "value": f["severity"]},
        {"title": "Level", "value": f["level"]},
        {"title": "Incidents", "value": f["incidents"]},
    ]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": text, "weight": "Bolder", "wrap": True},
            {"type": "FactSet", "facts": facts},
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": "Open", "url": f["link"]},
            {"type": "Action.OpenUrl", "title": "Acknowledge", "url": f["ack_link"]},
            {"type": "Action.OpenUrl", "title": "Resolve", "url": f["resolve_link"]},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


class PagerDutySender:
    def __init__(self, http: HttpClient, url: str, link_base: Callable[[], str]) -> None:
        self.http, self.url, self.link_base = http, url, link_base

    async def send(self, job: Job) -> Sent:
        target = Target.model_validate(job.target)
        assert target.pagerduty is not None
        key = read_secret(target.pagerduty.source())
        if not key:
            return Sent(False, None, f"routing key unset ({target.pagerduty.source()[1]})")
        return await _post_json(
            self.http.session, self.url, pagerduty_payload(job, key, self.link_base)
        )


def pagerduty_payload(job: Job, routing_key: str, link_base: Callable[[], str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": job.action,
        "dedup_key": dedup_key(job.tenant_id, job.incident_id),
    }
    if job.action != "trigger":
        return body
    f = _fields(job, link_base)
    body["payload"] = {
        "summary": f"{f['title']} at {f['site']} (level {f['level']})"[:1024],
        "source": f["site"],
        "severity": PD_SEVERITY.get(f["severity"], "info"),
        "component": f["site"],
        "group": f["tenant"],
        "custom_details": {
            "tenant_id": f["tenant"],
            "incident_id": f["incident_id"],
            "title": f["title"],
            "level": int(f["level"]),
            "policy": f["policy"],
            "incidents": job.event.get("incidents") or [job.incident_id],
        },
    }
    body["links"] = [{"href": f["link"], "text": "towerco-notify dashboard"}]
    body["client"] = "towerco-notify"
    body["client_url"] = f["link"]
    return body


class EmailSender:
    def __init__(self, smtp_url: str | None, sender: str, links: PageLinks) -> None:
        self.smtp_url, self.sender, self.links = smtp_url, sender, links

    async def send(self, job: Job) -> Sent:
        if not self.smtp_url:
            return Sent(False, None, "NOTIFY_SMTP_URL is not set", retry=False)
        target = Target.model_validate(job.target)
        f = await self.links.fields(job, f"email:{target.email}")
        return await self.deliver(email_message(job, str(target.email), self.sender, f))

    async def plain(self, to: str, subject: str, text: str) -> Sent:
        """A plain-text message (a person's page, a verification code)."""
        if not self.smtp_url:
            return Sent(False, None, "NOTIFY_SMTP_URL is not set", retry=False)
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = subject.replace("\n", " ")[:200], self.sender, to
        msg.set_content(text)
        return await self.deliver(msg)

    async def deliver(self, msg: EmailMessage) -> Sent:
        import aiosmtplib

        assert self.smtp_url is not None
        url = urlsplit(self.smtp_url)
        implicit_tls = url.scheme == "smtps"
        try:
            await aiosmtplib.send(
                msg,
                hostname=url.hostname or "localhost",
                port=url.port or (465 if implicit_tls else 25),
                username=unquote(url.username) if url.username else None,
                password=unquote(url.password) if url.password else None,
                use_tls=implicit_tls,
                start_tls=None if not implicit_tls else False,  # STARTTLS when offered
                timeout=10,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return Sent(False, exc.code, f"SMTP {exc.code}: {exc.message}", exc.code >= 400)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Sent(False, None, f"{type(exc).__name__}: {exc}")
        return Sent(True, 250)


def email_message(job: Job, to: str, sender: str, f: dict[str, str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = render("email_subject", f, job.templates).replace("\n", " ")[:200]
    msg["From"] = sender
    msg["To"] = to
    msg["X-Towerco-Incident"] = f"{job.tenant_id}/{job.incident_id}"
    text = render("email", f, job.templates)
    msg.set_content(text)
    escaped = html.escape(text).replace("\n", "<br>\n")
    link, ack, resolve = (
        html.escape(f[k], quote=True) for k in ("link", "ack_link", "resolve_link")
    )
    msg.add_alternative(
        f'<html><body><p>{escaped}</p><p><a href="{ack}">Acknowledge</a> · '
        f'<a href="{resolve}">Resolve</a> · <a href="{link}">Open the incident</a></p>'
        "</body></html>",
        subtype="html",
    )
    return msg


class WebhookJobSender:
    """The signed webhook through the outbox (it retries within one attempt)."""

    def __init__(self, webhooks: WebhookSender) -> None:
        self.webhooks = webhooks

    async def send(self, job: Job) -> Sent:
        url = str(job.target["webhook"])
        result = await self.webhooks.send(url, job.event)
        return Sent(
            bool(result["ok"]),
            result.get("status"),
            result.get("error"),
            retry=False,
            info={"attempts": result["attempts"], "url": url_origin(url)},
        )


class WebPushSender:
    def __init__(
        self,
        http: HttpClient,
        store: PushStore,
        keys: VapidKeys,
        subject: str,
        links: PageLinks,
    ) -> None:
        self.http, self.store, self.keys = http, store, keys
        self.subject, self.links = subject, links

    async def send(self, job: Job) -> Sent:
        target = Target.model_validate(job.target)
        assert target.webpush is not None
        subs = await self.store.for_target(job.tenant_id, target.webpush.role, target.webpush.user)
        if "pending" in job.state:
            subs = {k: v for k, v in subs.items() if k in job.state["pending"]}
        vapid = await self.keys.vapid()
        failed, dropped, sent = [], 0, 0
        for sub_id, sub in subs.items():
            # each subscriber's own links: the acknowledge action acts as them
            f = await self.links.fields(job, str(sub.get("user_id") or "webpush"))
            data = orjson.dumps(
                {
                    "title": f"[{f['severity']}] {f['title']}",
                    "body": render("webpush", f, job.templates),
                    "incident_id": job.incident_id,
                    "site_id": job.event.get("site_id"),
                    "severity": f["severity"],
                    "level": job.event.get("level"),
                    "url": f["link"],
                    "ack_url": f["ack_link"],
                    "actions": [
                        {"action": "acknowledge", "title": "Acknowledge"},
                        {"action": "open", "title": "Open"},
                    ],
                }
            ).decode()
            try:
                result = await self._push(job.tenant_id, sub_id, sub, data, vapid)
            except Exception as exc:  # the key or the claims (configuration): not retried
                return Sent(False, None, f"{type(exc).__name__}: {exc}", retry=False)
            if result == "sent":
                sent += 1
            elif result == "dropped":
                dropped += 1
            else:
                failed.append(sub_id)
        job.state["pending"] = failed
        info: dict[str, Any] = {"sent": sent, "dropped": dropped, "failed": len(failed)}
        if failed:
            return Sent(False, None, f"{len(failed)} subscription(s) failed", info=info)
        return Sent(True, 201 if sent else None, None if sent else "no subscription", info=info)

    async def _push(
        self, tenant: str, sub_id: str, sub: dict[str, Any], data: str, vapid: Any
    ) -> Literal["sent", "dropped", "failed"]:
        """One notification to one subscription: `dropped` when the push service says it
        is gone (404/410: removed here), `failed` when it could not be reached; anything
        else (the key, the claims) raises."""
        from pywebpush import WebPushException, webpush_async

        try:
            await webpush_async(
                sub["subscription"],
                data=data,
                vapid_private_key=vapid,
                vapid_claims={"sub": self.subject},
                ttl=3600,
                timeout=10,
                aiohttp_session=self.http.session,
                headers={"Urgency": "high"},
            )
            return "sent"
        except WebPushException as exc:
            if getattr(exc.response, "status", None) in (404, 410):
                await self.store.remove(tenant, sub_id)  # expired or unsubscribed
                return "dropped"
            return "failed"
        except (aiohttp.ClientError, TimeoutError, OSError):
            return "failed"

    async def to_user(self, tenant: str, user: str, data: dict[str, Any]) -> Sent:
        """One notification to every subscription `user` registered (a person's page)."""
        subs = await self.store.for_target(tenant, None, user)
        if not subs:
            return Sent(False, None, "no push subscription", retry=False)
        vapid = await self.keys.vapid()
        body = orjson.dumps(data).decode()
        results = [await self._push(tenant, k, sub, body, vapid) for k, sub in subs.items()]
        sent = results.count("sent")
        return Sent(sent > 0, 201 if sent else None, None if sent else "no subscription took it")
