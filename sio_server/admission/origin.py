"""The Origin rule, one for every transport: Socket.IO (both transports), the plain
WebSocket, SSE, and the HTTP API's CORS answers.

A browser names the page that opened a connection in `Origin`. With no origins configured
(`NOTIFY_CORS_ORIGINS` unset) only the daemon's own origin (`scheme://host[:port]` of the
request) may connect; with a list, exactly those. A request with no `Origin` is not from a
browser page (curl, a server, a mobile app) and is allowed: it cannot ride a user's
cookies, and every path needs a token anyway. `*` in the list allows any origin.
"""

from __future__ import annotations

from typing import Any

from notify_core.obs import metrics


class OriginPolicy:
    def __init__(self, allowed: list[str]) -> None:
        self._any = "*" in allowed
        self._allowed = frozenset(o.rstrip("/") for o in allowed if o != "*")

    @property
    def configured(self) -> bool:
        return self._any or bool(self._allowed)

    def allows(self, origin: str | None, scheme: str, host: str | None) -> bool:
        """May a page of `origin` connect to this daemon at `scheme://host`?"""
        if origin is None:
            return True
        origin = origin.rstrip("/")
        if self.configured:
            return self._any or origin in self._allowed
        return host is not None and origin == f"{scheme}://{host}"

    def check(self, origin: str | None, scheme: str, host: str | None, transport: str) -> bool:
        """`allows`, counting each refusal by transport."""
        ok = self.allows(origin, scheme, host)
        if not ok:
            metrics.ORIGIN_REFUSED.labels(transport).inc()
        return ok

    def for_engineio(self, origin: str | None, environ: dict[str, Any]) -> bool:
        """python-engineio's `cors_allowed_origins` callable (it asks only when the request
        has an Origin). engine.io asks twice for a refused request (the check, then the
        answer's CORS headers): the verdict is kept in the request's environ so that a
        refusal is counted once."""
        verdict = environ.get("towerco.origin_allowed")
        if verdict is None:
            verdict = environ["towerco.origin_allowed"] = self.check(
                origin, environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST"), "socketio"
            )
        return bool(verdict)

    def cors_origin(self, origin: str | None) -> str | None:
        """The `Access-Control-Allow-Origin` for an HTTP API answer: only listed origins."""
        if origin is None or not self.configured:
            return None
        origin = origin.rstrip("/")
        return origin if self._any or origin in self._allowed else None
