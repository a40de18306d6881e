"""`GET /api/v1/thresholds`: the threshold rules in force for the caller's tenant (and only
its sites, for a site-restricted user), with the config's reload generation."""

from __future__ import annotations

from aiohttp import web

from notify_core.in_force import View
from notify_core.obs import metrics
from notify_core.thresholds.rules import RuleSet
from sio_server.admission.auth import Principal
from sio_server.api.http import ApiGate, authenticated, error_reply, json_reply


class ThresholdsApi:
    def __init__(self, gate: ApiGate, rules: View[RuleSet] | None) -> None:
        self.gate = gate
        self.rules = rules

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/thresholds", self.thresholds)

    @authenticated("thresholds")
    async def thresholds(self, request: web.Request, principal: Principal) -> web.Response:
        """Effective rules for the caller's tenant (operators and admins)."""
        route = "thresholds"
        if not principal.has_any_role("operator", "admin"):
            metrics.HTTP_REQUESTS.labels(route, "403").inc()
            return error_reply(403, "forbidden: needs role operator or admin")
        if self.rules is None:
            return json_reply(
                {"tenant_id": principal.tenant_id, "rules": {"tenant": {}, "sites": {}}}
            )
        described = self.rules.current.describe(principal.tenant_id)
        if principal.sites is not None:
            described["sites"] = {
                s: r for s, r in described["sites"].items() if s in principal.sites
            }
        metrics.HTTP_REQUESTS.labels(route, "200").inc()
        return json_reply(
            {
                "tenant_id": principal.tenant_id,
                "generation": self.rules.generation,
                "rules": described,
            }
        )
