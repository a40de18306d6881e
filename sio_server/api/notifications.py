"""`GET /api/v1/notifications`: the tenant history as the caller may see it, for polling
clients and a screen's first page (newest `limit`, or everything after `since`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from notify_core.history.store import History
from notify_core.obs import metrics
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, authenticated, json_reply
from sio_server.contract.queries import NotificationsQuery, parse_query

SCAN_PAGE = 1000
MAX_SCAN = 20_000  # events examined per request, so a filtered query stays bounded


class NotificationsApi:
    def __init__(self, gate: ApiGate, history: History) -> None:
        self.gate = gate
        self.history = history

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/notifications", self.notifications)

    @authenticated("notifications")
    async def notifications(self, request: web.Request, principal: Principal) -> web.Response:
        route = "notifications"
        q = parse_query(request.query, NotificationsQuery)
        since, limit, types = q.since, q.limit, q.type_set
        if since is None:
            out, cursor = await self._newest(principal, limit, types)
        else:
            out, cursor = await self._after(principal, since, limit, types)
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return json_reply({"notifications": out, "next": cursor})

    async def _after(
        self, principal: Principal, since: str, limit: int, types: set[str] | None
    ) -> tuple[list[dict[str, Any]], str]:
        """Visible events after `since`, oldest first; `next` the last id examined."""
        out: list[dict[str, Any]] = []
        cursor, scanned = since, 0
        while len(out) < limit and scanned < MAX_SCAN:
            page = await self.history.read_after(principal.tenant_id, cursor, SCAN_PAGE)
            for event in page:
                cursor = event["id"]
                if principal.can_see(event) and (types is None or event["type"] in types):
                    out.append(event)
                    if len(out) == limit:
                        break
            scanned += len(page)
            if len(page) < SCAN_PAGE:
                break
        return out, cursor

    async def _newest(
        self, principal: Principal, limit: int, types: set[str] | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """No cursor: the newest `limit` visible events, oldest first; `next` the newest id
        of the history, so the next poll (`since=next`) gets only what came after."""
        out: list[dict[str, Any]] = []
        head: str | None = None
        before: str | None = None
        scanned = 0
        while len(out) < limit and scanned < MAX_SCAN:
            page = await self.history.read_before(principal.tenant_id, before, SCAN_PAGE)
            if page and head is None:
                head = page[0]["id"]
            for event in page:
                before = event["id"]
                if principal.can_see(event) and (types is None or event["type"] in types):
                    out.append(event)
                    if len(out) == limit:
                        break
            scanned += len(page)
            if len(page) < SCAN_PAGE:
                break
        out.reverse()
        return out, head
