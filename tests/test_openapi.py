"""`/api/v1/openapi.json`: an OpenAPI 3.1 description generated from the models the
handlers validate with, covering every route the application registers."""

from __future__ import annotations

import aiohttp

from sio_server.contract.models import ActionBody


async def test_openapi_covers_every_registered_route(daemon, base_url):
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/api/v1/openapi.json") as r,
    ):
        assert r.status == 200
        doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    registered = set()
    for route in daemon.server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method in ("HEAD", "*") or not path or path.startswith("/socket.io"):
            continue
        registered.add((route.method.lower(), path))
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert registered and registered <= described, registered - described
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for answer in op["responses"].values():
                for content in answer.get("content", {}).values():  # a 204 has none
                    ref = content["schema"].get("$ref")
                    if ref:
                        assert ref.rsplit("/", 1)[1] in schemas, (path, ref)
    action = doc["paths"]["/api/v1/incidents/{incident_id}/{action}"]["post"]
    assert action["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ActionBody"
    )
    assert schemas["ActionBody"] == ActionBody.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    incident = schemas["Incident"]["properties"]
    for field in (
        "incident_id",
        "status",
        "severity",
        "site_id",
        "title",
        "opened_at",
        "acknowledged_by",
        "assignee",
        "suppressed",
        "snoozed_until",
        "escalation_level",
        "last_event_id",
    ):
        assert field in incident, field


async def test_refusals_of_the_api_are_json_with_their_headers(base_url):
    """aiohttp's own 404 and 405 under /api answer in the API's shape (the document says
    every refusal is an Error), and a 405 keeps its Allow header."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/api/v1/no-such-thing") as r:
            assert r.status == 404 and r.content_type == "application/json"
            assert (await r.json())["ok"] is False
        async with http.delete(f"{base_url}/api/v1/incidents") as r:
            assert r.status == 405 and r.content_type == "application/json"
            assert "GET" in r.headers["Allow"]
        async with http.get(f"{base_url}/static/no-such-file.js") as r:  # not the API: as before
            assert r.status == 404
