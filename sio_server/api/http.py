"""The HTTP API's plumbing, shared by every resource: JSON answers in one shape, the
`@authenticated` gate (Bearer JWT, the per-token rate limit, a query or body the models
refuse as 400), the audit of what a user did over HTTP, and CORS."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog, audit_record
from sio_server.admission.auth import Authenticator, AuthError, Principal
from sio_server.admission.limits import HttpRateLimiter, retry_headers
from sio_server.admission.origin import OriginPolicy
from sio_server.contract.queries import RequestError


def json_reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_reply(status: int, message: str) -> web.Response:
    """Every refusal of the API: `{"ok": false, "error": message}`."""
    return json_reply({"ok": False, "error": message}, status)


class ApiGate:
    """Who a request is (its Bearer token) and whether it may go now (its token's rate)."""

    def __init__(self, auth: Authenticator, http_rate: HttpRateLimiter | None) -> None:
        self.auth = auth
        self.http_rate = http_rate

    async def principal(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("missing bearer token")
        return await self.auth.authenticate(token.strip())


Handler = Callable[[Any, web.Request, Principal], Awaitable[web.Response]]


def authenticated(
    route: str,
) -> Callable[[Handler], Callable[[Any, web.Request], Awaitable[web.Response]]]:
    """Bearer JWT -> Principal for the handler (through the resource's `gate`); 401
    (counted, no detail) otherwise, 429 past the token's rate, 400 for a `RequestError`."""

    def wrap(fn: Handler) -> Callable[[Any, web.Request], Awaitable[web.Response]]:
        @functools.wraps(fn)
        async def handler(self: Any, request: web.Request) -> web.Response:
            gate: ApiGate = self.gate
            try:
                principal = await gate.principal(request)
            except AuthError as exc:
                metrics.AUTH_FAILURES.labels("http", exc.reason.split(":")[0]).inc()
                metrics.HTTP_REQUESTS.labels(route, "401").inc()
                return error_reply(401, "authentication failed")
            wait = gate.http_rate.retry_after(principal) if gate.http_rate else None
            if wait is not None:
                metrics.HTTP_RATE_LIMITED.inc()
                metrics.HTTP_REQUESTS.labels(route, "429").inc()
                response = error_reply(429, f"rate limited: retry after {wait}s")
                response.headers.update(retry_headers(wait))
                return response
            try:
                return await fn(self, request, principal)
            except RequestError as exc:  # sio_server/contract/queries.py: the query's model
                metrics.HTTP_REQUESTS.labels(route, "400").inc()
                return error_reply(400, str(exc))

        return handler

    return wrap


async def audit_http(
    audit: AuditLog | None, p: Principal, action: str, target: str, request: web.Request
) -> None:
    """What a principal did over the HTTP API, in the audit trail (when there is one)."""
    if audit is not None:
        await audit.record(
            audit_record(
                p.tenant_id, p.user_id, action, target, "ok", "http", remote_addr=request.remote
            )
        )


def _cors_headers(origin: str, preflight: bool) -> dict[str, str]:
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if preflight:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-ID",
                "Access-Control-Max-Age": "600",
            }
        )
    return headers


def cors_middleware(origins: OriginPolicy) -> Any:
    """CORS for the HTTP API: preflights answered for the listed origins only, and
    `Access-Control-Allow-Origin` on their answers; any other origin gets none (the
    browser then keeps the answer from the page)."""

    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        origin = request.headers.get("Origin")
        allowed = origins.cors_origin(origin)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if allowed is None:
                metrics.ORIGIN_REFUSED.labels("http").inc()
                return web.Response(status=403)
            return web.Response(status=204, headers=_cors_headers(allowed, preflight=True))
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own refusals (no such route, a method not allowed, a body too
            # large) answer in the API's shape, JSON, keeping their headers (Allow)
            if exc.status < 400:
                raise
            response = error_reply(exc.status, exc.reason.lower())
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
        if allowed is not None:
            response.headers.update(_cors_headers(allowed, preflight=False))
        return response

    return cors
