"""`/api/v1/push/...`: the browsers' Web Push subscriptions and the VAPID public key.

Any signed-in user registers the `PushSubscription` of their browser (kept with their
roles, so a `webpush: {role: oncall}` target reaches them) and removes it; a user lists
and removes only their own. The endpoint must be an https URL, or http on a loopback
address (a local push service in development and tests): a subscription is where the
daemon will POST, so it is not a way to make it call arbitrary hosts.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from escalation.receivers.push import PushStore, VapidKeys, subscription_id
from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, audit_http, authenticated, error_reply, json_reply
from sio_server.contract.models import PushSubscriptionBody, PushUnsubscribeBody
from sio_server.contract.queries import parse_body


def endpoint_problem(endpoint: str) -> str | None:
    try:
        url = urlsplit(endpoint)
        host = url.hostname or ""
    except ValueError:
        return "endpoint: not a URL"
    if url.scheme == "https" and host:
        return None
    if url.scheme == "http" and host:
        try:
            if ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            if host == "localhost":
                return None
    return "endpoint: must be an https URL (http only on a loopback address)"


class PushApi:
    def __init__(
        self, gate: ApiGate, store: PushStore, keys: VapidKeys, audit: AuditLog | None
    ) -> None:
        self.gate = gate
        self.store, self.keys, self.audit = store, keys, audit

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/push/vapid-public-key", self.public_key)
        app.router.add_post("/api/v1/push/subscriptions", self.subscribe)
        app.router.add_get("/api/v1/push/subscriptions", self.mine)
        app.router.add_delete("/api/v1/push/subscriptions", self.unsubscribe_body)
        app.router.add_delete("/api/v1/push/subscriptions/{id}", self.unsubscribe)

    @authenticated("push")
    async def public_key(self, request: web.Request, p: Principal) -> web.Response:
        return json_reply({"public_key": await self.keys.public_key()})

    @authenticated("push")
    async def subscribe(self, request: web.Request, p: Principal) -> web.Response:
        body = await parse_body(request, PushSubscriptionBody)
        problem = endpoint_problem(body.endpoint)
        if problem is not None:
            metrics.HTTP_REQUESTS.labels("push", "400").inc()
            return error_reply(400, problem)
        sub = body.model_dump(exclude_none=True, by_alias=True)
        sid = await self.store.add(p.tenant_id, p.user_id, sorted(p.roles), sub)
        await audit_http(self.audit, p, "push_subscribe", sid, request)
        metrics.HTTP_REQUESTS.labels("push", "201").inc()
        return json_reply({"ok": True, "id": sid, "user_id": p.user_id}, 201)

    @authenticated("push")
    async def mine(self, request: web.Request, p: Principal) -> web.Response:
        subs = [
            {"id": sid, "endpoint_origin": _origin(r["subscription"]["endpoint"]),
             "created_at": r["created_at"]}
            for sid, r in (await self.store.all(p.tenant_id)).items()
            if r["user_id"] == p.user_id
        ]  # fmt: skip
        return json_reply({"subscriptions": subs})

    async def _remove(self, request: web.Request, p: Principal, sid: str) -> web.Response:
        if not await self.store.remove(p.tenant_id, sid, user=p.user_id):
            return error_reply(404, "no such subscription of yours")
        await audit_http(self.audit, p, "push_unsubscribe", sid, request)
        return json_reply({"ok": True, "id": sid})

    @authenticated("push")
    async def unsubscribe(self, request: web.Request, p: Principal) -> web.Response:
        return await self._remove(request, p, request.match_info["id"])

    @authenticated("push")
    async def unsubscribe_body(self, request: web.Request, p: Principal) -> web.Response:
        body = await parse_body(request, PushUnsubscribeBody)
        return await self._remove(request, p, subscription_id(body.endpoint))


def _origin(endpoint: str) -> str:
    from notify_core.redact import url_origin

    return url_origin(endpoint)  # the path is the browser's capability: not shown
