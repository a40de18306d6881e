"""`/api/v1/me/contact-methods`, `/api/v1/me/notification-rules` and, for admins,
`/api/v1/users/{user_id}/contact-methods`: how each person is paged.

A new method is unverified and gets a 6-digit code through itself; `verify` with the code
makes it pageable (five wrong codes lock it for an hour). Admins manage anyone of their
tenant and may create a method already verified (linking accounts from a directory
export); that is audited. A `webpush` method names one of the user's own push
subscriptions and is verified by it.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from escalation.people.contacts import (
    MAX_AFTER_S,
    ContactMethod,
    PeopleStore,
    Rule,
    Rules,
)
from escalation.people.reach import PersonSender
from escalation.receivers.push import PushStore
from notify_core.obs.audit import AuditLog
from notify_core.thresholds.rules import parse_duration
from notify_core.wire.events import is_ident
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, audit_http, authenticated, error_reply, json_reply
from sio_server.contract.models import ContactMethodBody, NotificationRulesBody
from sio_server.contract.queries import parse_body


class PeopleApi:
    def __init__(
        self,
        gate: ApiGate,
        store: PeopleStore,
        sender: PersonSender | None,
        push: PushStore | None,
        audit: AuditLog | None,
    ) -> None:
        self.gate = gate
        self.store, self.sender, self.push, self.audit = store, sender, push, audit

    def add_routes(self, app: web.Application) -> None:
        for base in ("/api/v1/me", "/api/v1/users/{user_id}"):
            app.router.add_get(f"{base}/contact-methods", self.list_methods)
            app.router.add_post(f"{base}/contact-methods", self.add_method)
            app.router.add_post(f"{base}/contact-methods/{{id}}/verify", self.verify)
            app.router.add_delete(f"{base}/contact-methods/{{id}}", self.delete_method)
        app.router.add_get("/api/v1/me/notification-rules", self.get_rules)
        app.router.add_put("/api/v1/me/notification-rules", self.put_rules)

    def _whose(self, request: web.Request, p: Principal) -> str | web.Response:
        """The user the request is about: the caller (`/me`), or for an admin anyone of
        the tenant (`/users/{user_id}`)."""
        user = request.match_info.get("user_id")
        if user is None:
            return p.user_id
        if not p.has_any_role("admin"):
            return error_reply(403, "forbidden: needs role admin")
        if not is_ident(user):
            return error_reply(400, "user_id: must be 1-64 of [A-Za-z0-9_.-]")
        return user

    @authenticated("people")
    async def list_methods(self, request: web.Request, p: Principal) -> web.Response:
        user = self._whose(request, p)
        if isinstance(user, web.Response):
            return user
        methods = await self.store.methods(p.tenant_id, user)
        return json_reply({"contact_methods": [m.view() for m in methods]})

    @authenticated("people")
    async def add_method(self, request: web.Request, p: Principal) -> web.Response:
        user = self._whose(request, p)
        if isinstance(user, web.Response):
            return user
        body = (await parse_body(request, ContactMethodBody)).root
        kind, value = body.type, body.value
        pre_verified = body.verified is True
        if pre_verified and not (p.has_any_role("admin") and "user_id" in request.match_info):
            return error_reply(403, "forbidden: only admins create verified methods, for others")
        if kind == "webpush":  # the user's own subscription: verified by registering it
            subs = await self.push.for_target(p.tenant_id, None, user) if self.push else {}
            if value not in subs:
                return error_reply(400, "value: not one of this user's push subscriptions")
            pre_verified = True
        method = ContactMethod(secrets.token_hex(6), user, kind, value, verified=pre_verified)
        sent_to = None
        if not pre_verified:
            method, code = method.with_code(time.time())
            if self.sender is not None:
                sent = await self.sender.send_code(p.tenant_id, method, code)
                sent_to = "sent" if sent.ok else f"not sent: {sent.error}"
        await self.store.put_method(p.tenant_id, method)
        if pre_verified and kind != "webpush":
            await audit_http(self.audit, p, "contact_method_linked", f"{user}/{method.id}", request)
        view: dict[str, Any] = method.view()
        if sent_to is not None:
            view["code"] = sent_to
        return json_reply(view, 201)

    @authenticated("people")
    async def verify(self, request: web.Request, p: Principal) -> web.Response:
        user = self._whose(request, p)
        if isinstance(user, web.Response):
            return user
        method = await self.store.method(p.tenant_id, user, request.match_info["id"])
        if method is None:
            return error_reply(404, "no such contact method")
        try:
            code = str((await request.json()).get("code", ""))
        except (ValueError, AttributeError):
            return error_reply(400, 'body: expected {"code": "123456"}')
        checked, result = method.check(code, time.time())
        await self.store.put_method(p.tenant_id, checked)
        if result == "ok":
            return json_reply({"verified": True})
        if result == "locked":
            return error_reply(429, "locked: too many wrong codes; try again in an hour")
        if result == "expired":
            return error_reply(400, "code: expired or none pending; add the method again")
        return error_reply(400, "code: wrong")

    @authenticated("people")
    async def delete_method(self, request: web.Request, p: Principal) -> web.Response:
        user = self._whose(request, p)
        if isinstance(user, web.Response):
            return user
        if not await self.store.delete_method(p.tenant_id, user, request.match_info["id"]):
            return error_reply(404, "no such contact method")
        return web.Response(status=204)

    @authenticated("people")
    async def get_rules(self, request: web.Request, p: Principal) -> web.Response:
        return json_reply((await self.store.rules(p.tenant_id, p.user_id)).view())

    @authenticated("people")
    async def put_rules(self, request: web.Request, p: Principal) -> web.Response:
        body = await parse_body(request, NotificationRulesBody)
        mine = {m.id for m in await self.store.methods(p.tenant_id, p.user_id)}
        parsed: dict[str, tuple[Rule, ...]] = {}
        for name, rules in (("default", body.default), ("important", body.important)):
            out = []
            for i, rule in enumerate(rules):
                where = f"{name}.{i}"
                after = parse_duration(rule.after)  # the model's pattern: a duration
                if after > MAX_AFTER_S:
                    return error_reply(400, f"{where}.after: at most 24h (got {rule.after!r})")
                ident = rule.contact_method_id
                if ident not in mine:
                    return error_reply(
                        400, f"{where}.contact_method_id: not one of yours ({ident[:32]!r})"
                    )
                out.append(Rule(after, ident))
            parsed[name] = tuple(out)
        rules_in = Rules(parsed["default"], parsed["important"])
        await self.store.put_rules(p.tenant_id, p.user_id, rules_in)
        return json_reply(rules_in.view())
