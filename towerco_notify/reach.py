"""What reaches people away from the screen, built in one place for the root: one HTTP
client (webhooks and every receiver), email, Web Push, SMS and voice (Twilio-compatible),
Slack direct messages and the person sender that uses a user's own contact methods
(`Reach`, shared by the pipeline's pages and the server's verification codes); and the
receivers' outbox with the worker that sends pages through them (`build_receivers`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from escalation.people.contacts import PeopleStore
from escalation.people.reach import PersonSender, Slack, Twilio
from escalation.people.replies import SmsReplies
from escalation.receivers.delivery import Deliveries, DeliveryWorker, Publish
from escalation.receivers.push import PushStore, VapidKeys
from escalation.receivers.senders import (
    ChatSender,
    EmailSender,
    PageLinks,
    PagerDutySender,
    Sender,
    WebhookJobSender,
    WebPushSender,
)
from escalation.webhooks import HttpClient, WebhookSender
from notify_core.action_links import ActionLinks
from notify_core.secret_refs import read_secret
from notify_core.settings import Settings
from towerco_notify.stores import Stores


@dataclass(frozen=True)
class Reach:
    http: HttpClient  # a part of the root's lifecycle (its session opens on start)
    page_links: PageLinks
    email: EmailSender
    push: WebPushSender
    sms_replies: SmsReplies
    person: PersonSender
    twilio_token: Callable[[], str | None]  # read when used: a rotated file is picked up


def build_reach(
    s: Settings,
    stores: Stores,
    people: PeopleStore,
    action_links: ActionLinks,
    push_store: PushStore,
    vapid: VapidKeys,
    public_url: Callable[[], str],
) -> Reach:
    """`public_url()`: where pages link to (known once the server listens)."""
    http = HttpClient(timeout_s=10.0)
    links = PageLinks(public_url, action_links)
    smtp = s.smtp_url.get_secret_value() if s.smtp_url else None
    email = EmailSender(smtp, s.smtp_from, links)
    push = WebPushSender(http, push_store, vapid, s.vapid_subject, links)
    replies = SmsReplies(stores.redis, s.redis_prefix)
    token_file = s.twilio_auth_token_file

    def twilio_token() -> str | None:
        if token_file is not None:
            return read_secret(("file", str(token_file)))
        return s.twilio_auth_token.get_secret_value() if s.twilio_auth_token else None

    person = PersonSender(
        people,
        stores.incidents,
        http,
        links,
        email.plain,
        Twilio(s.twilio_url, s.twilio_account_sid, twilio_token, s.twilio_from),
        Slack(s.slack_api_url, s.slack_bot_token.get_secret_value() if s.slack_bot_token else None),
        push.to_user,
        public_url,
        replies,
    )
    return Reach(http, links, email, push, replies, person, twilio_token)


def build_receivers(
    s: Settings,
    reach: Reach,
    stores: Stores,
    people: PeopleStore,
    publish: Publish,
    webhook_secret: bytes,
    public_url: Callable[[], str],
) -> tuple[DeliveryWorker, Deliveries]:
    """The outbox and the worker that sends pages to email, chat, PagerDuty, Web Push,
    webhooks and people by name (escalation/receivers/, escalation/people/)."""
    outbox = stores.outbox
    http, links = reach.http, reach.page_links
    senders: dict[str, Sender] = {
        "email": reach.email,
        "slack": ChatSender("slack", http, links),
        "teams": ChatSender("teams", http, links),
        "pagerduty": PagerDutySender(http, s.pagerduty_url, public_url),
        "webpush": reach.push,
        "webhook": WebhookJobSender(WebhookSender(webhook_secret, http)),
        "person": reach.person,
    }
    worker = DeliveryWorker(
        outbox,
        senders,
        stores.timeline,
        publish,
        max_attempts=s.receiver_attempts,
        max_backoff_s=s.receiver_max_backoff_s,
    )
    return worker, Deliveries(outbox, worker.wake, people)
