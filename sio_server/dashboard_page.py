"""The dashboard as served: the page with its security headers, its static files, and
`GET /api/v1/client-config` (how it signs in, before it has a token). One place, because
the three depend on each other: an OpenID provider configured for sign-in is also an
origin the page's Content-Security-Policy must let it reach."""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

# every file the page may load; nothing else under /static/ is served
STATIC_FILES = {
    "socket.io.min.js": "application/javascript",
    "oidc-client-ts.min.js": "application/javascript",
    "notify-client.js": "application/javascript",
    "notify-client.d.ts": "application/typescript",
    "dashboard.js": "application/javascript",
    "dashboard-push.js": "application/javascript",
    "dashboard-list.js": "application/javascript",
    "dashboard-detail.js": "application/javascript",
    "dashboard-ops.js": "application/javascript",
    "dashboard-map.js": "application/javascript",
    "dashboard-me.js": "application/javascript",
    "dashboard-report.js": "application/javascript",
    "dashboard-signin.js": "application/javascript",
    "sw.js": "application/javascript",
    "dashboard.css": "text/css",
    "manifest.webmanifest": "application/manifest+json",
    "icon.svg": "image/svg+xml",
}


def security_headers(connect_to: list[str]) -> dict[str, str]:
    """The page's headers: scripts, styles and connections from this origin only, plus the
    origins in `connect_to` (the OpenID provider's discovery and token endpoints)."""
    connect = " ".join(["'self'", *connect_to])
    return {
        "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:; connect-src {connect}; worker-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class DashboardPage:
    """`oidc`: `{"issuer", "client_id", "scopes"}` when the dashboard signs in with an
    OpenID provider, else None (a token pasted or in the URL fragment)."""

    def __init__(self, oidc: dict[str, Any] | None) -> None:
        self._config = orjson.dumps({"oidc": oidc})
        self._headers = security_headers([origin_of(oidc["issuer"])] if oidc else [])

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/api/v1/client-config", self.client_config)

    async def page(self, request: web.Request) -> web.Response:
        body = resources.files("sio_server").joinpath("static", "index.html").read_bytes()
        return web.Response(body=body, content_type="text/html", headers=self._headers)

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            body = orjson.dumps({"ok": False, "error": f"name: no such file (got {name[:64]!r})"})
            return web.Response(body=body, status=404, content_type="application/json")
        body = resources.files("sio_server").joinpath("static", name).read_bytes()
        return web.Response(
            body=body, content_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=3600"}
        )

    async def client_config(self, request: web.Request) -> web.Response:
        """What the dashboard needs before it has a token (no auth): how to sign in."""
        return web.Response(body=self._config, content_type="application/json")
