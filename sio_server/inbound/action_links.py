"""`GET` and `POST /a/{token}`: acting on an incident from the page itself (an email, a
chat message, a push notification), without signing in.

A GET changes nothing (mail scanners and link previews fetch every link): it answers a
small page naming the incident and the action, with one button that POSTs to the same
URL. The POST uses the token once (notify_core/action_links.py) and takes the action as
the person the page went to, through the same gate, audit (`source: link`) and topic as a
dashboard click. Used, expired and resolved links answer 410, unknown ones 404; those
pages say nothing about the incident.
"""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from notify_core.action_links import ActionLinks, Link
from notify_core.obs import metrics
from notify_core.state.incidents import IncidentStore
from sio_server.admission.auth import Principal
from sio_server.incident_actions import IncidentActions

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token must not leave in a Referer
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
VERB = {"acknowledge": "Acknowledge", "resolve": "Resolve"}


def _page(status: int, title: str, body: str) -> web.Response:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:18px system-ui,sans-serif;max-width:32rem;margin:2rem auto;"
        "padding:0 1rem}button{font-size:1.3rem;padding:.8rem 1.6rem;min-width:12rem}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(status=status, text=text, content_type="text/html", headers=HEADERS)


GONE = (410, "This link no longer works", "<p>It was used already, or it expired.</p>")
UNKNOWN = (404, "Unknown link", "<p>This link is not one of ours.</p>")


class ActionLinksApi:
    def __init__(
        self,
        links: ActionLinks,
        incidents: IncidentStore | None,
        actions: IncidentActions,
        sites_of: Callable[[str, str], Awaitable[frozenset[str] | None]] | None = None,
    ) -> None:
        """`sites_of(tenant, user)`: the sites the person may see by their last token (an
        action from a page follows it, as their dashboard would)."""
        self.links = links
        self.incidents = incidents
        self.actions = actions
        self.sites_of = sites_of

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/a/{token}", self.show)
        app.router.add_post("/a/{token}", self.act)

    async def _title(self, link: Link) -> str | None:
        """The incident's title, or None when it is resolved (the link is spent)."""
        if self.incidents is None:
            return link.incident_id
        state = await self.incidents.get(link.tenant, link.incident_id)
        if state is None or state.status == "resolved":
            return None
        return state.title or link.incident_id

    async def show(self, request: web.Request) -> web.Response:
        state, link = await self.links.peek(request.match_info["token"])
        if state == "unknown" or link is None:
            return _page(*UNKNOWN)
        title = await self._title(link) if state == "ok" else None
        if title is None:
            return _page(*GONE)
        verb = VERB.get(link.action, link.action)
        body = (
            f"<p>{html.escape(title)}<br><small>incident {html.escape(link.incident_id)}"
            f"</small></p><form method='post'><button type='submit'>{verb}</button></form>"
        )
        return _page(200, f"{verb} this incident?", body)

    async def act(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        state, link = await self.links.peek(token)
        if state == "ok" and link is not None and await self._title(link) is None:
            state = "gone"  # resolved meanwhile: the link is spent
        if state == "ok":
            state, link = await self.links.use(token)
        if state == "unknown" or link is None:
            metrics.ACTION_LINKS.labels("unknown").inc()
            return _page(*UNKNOWN)
        if state == "gone":
            metrics.ACTION_LINKS.labels("gone").inc()
            return _page(*GONE)
        sites = await self.sites_of(link.tenant, link.actor) if self.sites_of else None
        who = Principal(link.actor, link.tenant, frozenset({"oncall"}), sites, link.expires_at)
        outcome = await self.actions.act(
            who, link.incident_id, link.action, "link", request.remote, origin="link"
        )
        metrics.ACTION_LINKS.labels("ok" if outcome.ok else "refused").inc()
        if not outcome.ok:
            return _page(outcome.status, "Not done", f"<p>{html.escape(outcome.error or '')}</p>")
        done = "acknowledged" if link.action == "acknowledge" else "resolved"
        when = time.strftime("%H:%M:%S UTC", time.gmtime())
        body = f"<p>Incident {html.escape(link.incident_id)} {done} at {when}.</p>"
        return _page(200, f"Incident {done}", body)
