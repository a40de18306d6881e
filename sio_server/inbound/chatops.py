"""Acting from Slack and PagerDuty: their signed callbacks, as one action each.

- `POST /api/v1/integrations/slack/interactions`: a button of a page in Slack
  (`action_id` `towerco_acknowledge` / `towerco_resolve`, `value` the incident id). Taken
  only with a valid `X-Slack-Signature` (`v0=` + hex HMAC-SHA256 of
  `v0:{X-Slack-Request-Timestamp}:{raw body}` with `NOTIFY_SLACK_SIGNING_SECRET`) and a
  timestamp within 300 s, else 401. The Slack user acts as the user whose verified `slack`
  contact method holds their id; an unknown Slack user is told, ephemerally, to link
  their account, and nothing changes.
- `POST /api/v1/integrations/pagerduty/webhook`: V3 webhooks signed with
  `NOTIFY_PAGERDUTY_WEBHOOK_SECRET` (`X-PagerDuty-Signature`: `v1=` + hex HMAC-SHA256 of the
  raw body, several allowed while a secret rotates), else 401. `incident.acknowledged` /
  `incident.resolved` of an incident we paged (its `incident_key` is our dedup key)
  acknowledge / resolve ours, by `pagerduty:<agent>`; nothing is sent back to PagerDuty.

The same Slack action or PagerDuty event delivered twice acts once (Redis `SET NX`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import parse_qs

import orjson
from aiohttp import web
from redis.asyncio import Redis

from escalation.people.contacts import PeopleStore
from notify_core.obs import metrics
from notify_core.redis.keys import RedisKeys
from sio_server.admission.auth import Principal
from sio_server.api.http import error_reply, json_reply
from sio_server.incident_actions import IncidentActions

SLACK_SKEW_S = 300
SLACK_ACTIONS = {"towerco_acknowledge": "acknowledge", "towerco_resolve": "resolve"}
PD_ACTIONS = {"incident.acknowledged": "acknowledge", "incident.resolved": "resolve"}
DEDUP_PREFIX = "towerco-notify/"  # PagerDuty's incident key for ours: towerco-notify/<t>/<id>
ONCE_S = 24 * 3600


class Once:
    """`first(key)`: True the first time within a day (Redis `SET NX`, else memory)."""

    def __init__(self, redis: Redis | None, prefix: str) -> None:
        self._redis, self._keys = redis, RedisKeys(prefix)
        self._seen: dict[str, float] = {}

    async def first(self, key: str) -> bool:
        if self._redis is not None:
            name = self._keys.shared("chatops-once", hashlib.sha256(key.encode()).hexdigest())
            return bool(await self._redis.set(name, b"1", nx=True, ex=ONCE_S))
        now = time.time()
        if len(self._seen) > 100_000:
            self._seen = {k: t for k, t in self._seen.items() if t > now - ONCE_S}
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


def slack_signature_ok(secret: str, timestamp: str, body: bytes, given: str, now: float) -> bool:
    try:
        skew = abs(now - int(timestamp))
    except ValueError:
        return False
    if skew > SLACK_SKEW_S:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def pagerduty_signature_ok(secret: str, body: bytes, header: str) -> bool:
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # compare every one, so timing tells nothing about which matched
    results = [hmac.compare_digest(expected, s.strip()) for s in header.split(",") if s.strip()]
    return any(results)


class ChatOpsApi:
    def __init__(
        self,
        actions: IncidentActions,
        people: PeopleStore,
        once: Once,
        slack_secret: Callable[[], str | None],
        pagerduty_secret: Callable[[], str | None],
    ) -> None:
        self.actions, self.people, self.once = actions, people, once
        self.slack_secret, self.pagerduty_secret = slack_secret, pagerduty_secret

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/integrations/slack/interactions", self.slack)
        app.router.add_post("/api/v1/integrations/pagerduty/webhook", self.pagerduty)

    async def slack(self, request: web.Request) -> web.Response:
        secret = self.slack_secret()
        body = await request.content.read(256 * 1024)
        ts = request.headers.get("X-Slack-Request-Timestamp", "")
        given = request.headers.get("X-Slack-Signature", "")
        if not secret or not slack_signature_ok(secret, ts, body, given, time.time()):
            metrics.CHATOPS.labels("slack", "refused").inc()
            return error_reply(401, "authentication failed")
        try:
            payload = orjson.loads(parse_qs(body.decode())["payload"][0])
            action = payload["actions"][0]
            verb = SLACK_ACTIONS[action["action_id"]]
            incident, slack_user = str(action["value"]), str(payload["user"]["id"])
        except (KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError):
            metrics.CHATOPS.labels("slack", "invalid").inc()
            return error_reply(400, "payload: not a towerco button action")
        found = await self.people.by_slack(slack_user)
        if found is None:
            metrics.CHATOPS.labels("slack", "unknown_user").inc()
            text = (
                "Your Slack account is not linked to towerco-notify: add your Slack user id "
                f"({slack_user}) as a contact method, then try again."
            )
            return json_reply(
                {"response_type": "ephemeral", "replace_original": False, "text": text}
            )
        tenant, user = found
        key = f"slack:{payload.get('team', {}).get('id')}:{slack_user}:{action.get('action_ts')}"
        if not await self.once.first(key):
            metrics.CHATOPS.labels("slack", "repeat").inc()
            return json_reply({"response_type": "ephemeral", "text": "Already done."})
        sites = await self.people.sites_of(tenant, user)  # as their own dashboard would
        who = Principal(user, tenant, frozenset({"oncall"}), sites, time.time() + 60)
        outcome = await self.actions.act(
            who, incident, verb, "slack", request.remote, origin="slack"
        )
        metrics.CHATOPS.labels("slack", "ok" if outcome.ok else "refused_action").inc()
        done = f"{verb}d" if outcome.ok else f"not done: {outcome.error}"
        return json_reply({"response_type": "ephemeral", "text": f"Incident {incident} {done}."})

    async def pagerduty(self, request: web.Request) -> web.Response:
        secret = self.pagerduty_secret()
        body = await request.content.read(1024 * 1024)
        header = request.headers.get("X-PagerDuty-Signature", "")
        if not secret or not pagerduty_signature_ok(secret, body, header):
            metrics.CHATOPS.labels("pagerduty", "refused").inc()
            return error_reply(401, "authentication failed")
        try:
            event = orjson.loads(body)["event"]
            kind, data = str(event["event_type"]), event.get("data") or {}
        except (KeyError, ValueError, TypeError):
            metrics.CHATOPS.labels("pagerduty", "invalid").inc()
            return error_reply(400, "body: not a PagerDuty V3 webhook event")
        verb = PD_ACTIONS.get(kind)
        key = str(data.get("incident_key") or "")
        if verb is None or not key.startswith(DEDUP_PREFIX) or key.count("/") < 2:
            return json_reply({"ok": True, "ignored": kind})  # not ours, or not an action
        tenant, incident = key[len(DEDUP_PREFIX) :].split("/", 1)
        if not await self.once.first(f"pagerduty:{event.get('id')}"):
            metrics.CHATOPS.labels("pagerduty", "repeat").inc()
            return json_reply({"ok": True, "repeat": True})
        agent = event.get("agent") or {}
        actor = f"pagerduty:{agent.get('summary') or agent.get('id') or 'unknown'}"[:128]
        who = Principal(actor, tenant, frozenset({"oncall"}), None, time.time() + 60)
        outcome = await self.actions.act(
            who, incident, verb, "pagerduty", request.remote, origin="pagerduty"
        )
        metrics.CHATOPS.labels("pagerduty", "ok" if outcome.ok else "refused_action").inc()
        if not outcome.ok:
            return error_reply(outcome.status, outcome.error or "refused")
        return json_reply({"ok": True, "incident_id": incident, "action": verb})
