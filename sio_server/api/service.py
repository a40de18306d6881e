"""The daemon's own endpoints: liveness (`/healthz`), readiness (`/readyz`, 503 until every
check passes), Prometheus metrics (`/metrics`) and the OpenAPI description."""

from __future__ import annotations

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from notify_core.obs.readiness import Readiness
from sio_server.api.http import json_reply
from sio_server.contract.openapi import openapi


class ServiceApi:
    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness
        self._openapi: bytes | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/v1/openapi.json", self.openapi)

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 description, from the models the handlers validate with."""
        if self._openapi is None:
            self._openapi = orjson.dumps(openapi())
        return web.Response(body=self._openapi, content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        return json_reply({"ok": True})

    async def readyz(self, request: web.Request) -> web.Response:
        ok, checks = await self.readiness.status()
        return json_reply({"ready": ok, "checks": checks}, 200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
