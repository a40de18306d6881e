"""Attacks with tokens: a revoked token kept live and presented anew, tokens with a wrong or
missing audience or issuer, keys from an identity provider's JWKS (rotated), and the
secrets that must never leave the process (webhook URLs, Redis passwords)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from notify_core.redact import mask_password, url_origin
from notify_core.wire.events import TOPIC_ALERTS
from sio_server.admission.auth import Authenticator, AuthError
from tests.helpers import TEST_SECRET, NodeClient, WsClient, alert, new_tenant
from tests.test_plain_ws import ws_url


async def _http(base_url: str, token: str, method: str, path: str, body=None):
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{base_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as r,
    ):
        return r.status, await r.json()


async def test_a_revoked_token_is_cut_live_and_refused_anew(base_url, token):
    tenant = new_tenant()
    victim = token(tenant, "contractor")
    other_user = token(tenant, "colleague")
    admin = token(tenant, "root", ["admin"])
    sio = await NodeClient.start(base_url, victim, ["websocket"])
    ws = await WsClient.start(ws_url(base_url, tenant, "contractor", victim))
    stay = await NodeClient.start(base_url, other_user, ["polling"])
    try:
        await sio.connected()
        await stay.connected()
        await ws.frame(lambda f: f.get("type") == "connection_established")
        assert (await _http(base_url, victim, "GET", "/api/v1/incidents"))[0] == 200
        # the attack's premise: a fired contractor keeps a valid 1 h token
        status, body = await _http(
            base_url, admin, "POST", "/api/v1/admin/revocations", {"user_id": "contractor"}
        )
        assert status == 201 and body["revocation"]["user_id"] == "contractor"
        started = time.monotonic()
        await sio.wait_for(lambda m: m["kind"] == "disconnect", 5)
        await ws.wait_for(lambda m: m["kind"] == "close", 5)
        assert time.monotonic() - started < 5
        status, _ = await _http(base_url, victim, "GET", "/api/v1/incidents")
        assert status == 401
        again = await NodeClient.start(base_url, victim, ["websocket"])
        try:
            refused = await again.wait_for(lambda m: m["kind"] in ("connect", "connect_error"))
            assert refused == {
                "kind": "connect_error",
                "client": 0,
                "message": "authentication failed",
            }
        finally:
            await again.close()
        # the positive twins: another user stays, and a token issued after still works
        beat = await stay.emit("heartbeat", {})
        assert beat["ok"] is True and not [m for m in stay.lines if m["kind"] == "disconnect"]
        await asyncio.sleep(1.1)
        fresh = token(tenant, "contractor")
        assert (await _http(base_url, fresh, "GET", "/api/v1/incidents"))[0] == 200
        status, listed = await _http(base_url, admin, "GET", "/api/v1/admin/revocations")
        assert [r["user_id"] for r in listed["revocations"]] == ["contractor"]
        status, _ = await _http(base_url, other_user, "GET", "/api/v1/admin/revocations")
        assert status == 403
    finally:
        await sio.close()
        await ws.close()
        await stay.close()


async def test_revocation_by_jti_and_bad_requests(base_url, token):
    tenant = new_tenant()
    admin = token(tenant, "root", ["admin"])
    one, two = token(tenant, "u1"), token(tenant, "u1")
    jti = jwt.decode(one, options={"verify_signature": False})["jti"]
    status, _ = await _http(base_url, admin, "POST", "/api/v1/admin/revocations", {"jti": jti})
    assert status == 201
    assert (await _http(base_url, one, "GET", "/api/v1/incidents"))[0] == 401
    assert (await _http(base_url, two, "GET", "/api/v1/incidents"))[0] == 200  # only that one
    for bad in ({}, {"jti": 5}, {"jti": "a", "user_id": "b"}, {"user_id": "a:b"}):
        status, body = await _http(base_url, admin, "POST", "/api/v1/admin/revocations", bad)
        assert status == 400 and body["error"]
    # an operator may not revoke, and an admin only in its own tenant
    assert (await _http(base_url, one, "POST", "/api/v1/admin/revocations", {"jti": "x"}))[0] in (
        401,
        403,
    )
    other_admin = token(new_tenant(), "root", ["admin"])
    await _http(base_url, other_admin, "POST", "/api/v1/admin/revocations", {"user_id": "u1"})
    assert (await _http(base_url, two, "GET", "/api/v1/incidents"))[0] == 200


def _claims(**extra):
    now = int(time.time())
    return {
        "sub": "u1",
        "tenant_id": "t1",
        "roles": ["operator"],
        "iat": now,
        "exp": now + 600,
        **extra,
    }


def test_audience_and_issuer_when_configured_and_not_when_not():
    plain = Authenticator(TEST_SECRET)
    strict = Authenticator(TEST_SECRET, audience="towerco-notify", issuer="https://idp.example")
    with_aud = jwt.encode(_claims(aud="towerco-notify", iss="https://idp.example"), TEST_SECRET)
    assert plain.verify(with_aud).user_id == "u1", "an aud is not refused when none is configured"
    assert strict.verify(with_aud).user_id == "u1"
    for bad in (
        _claims(aud="someone-else", iss="https://idp.example"),
        _claims(iss="https://idp.example"),  # no aud
        _claims(aud="towerco-notify", iss="https://evil.example"),
        _claims(aud="towerco-notify"),  # no iss
    ):
        with pytest.raises(AuthError):
            strict.verify(jwt.encode(bad, TEST_SECRET))


def test_tenant_and_roles_at_dotted_paths():
    auth = Authenticator(TEST_SECRET, tenant_claim="org.tenant", roles_claim="realm_access.roles")
    token = jwt.encode(
        {
            **_claims(),
            "tenant_id": "ignored",
            "org": {"tenant": "acme"},
            "realm_access": {"roles": ["oncall", "offline_access", "uma_authorization"]},
        },
        TEST_SECRET,
    )
    p = auth.verify(token)
    assert p.tenant_id == "acme" and p.roles == frozenset({"oncall"})
    with pytest.raises(AuthError, match=r"org\.tenant"):
        auth.verify(jwt.encode(_claims(), TEST_SECRET))


class Jwks:
    """A local identity provider's JWKS endpoint, whose keys can be rotated."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        self.url = ""

    def rotate(self) -> str:
        kid = uuid.uuid4().hex[:8]
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        return kid

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return web.json_response({"keys": keys})

    def token(self, kid: str, **claims) -> str:
        return jwt.encode(
            _claims(**claims), self.keys[kid], algorithm="RS256", headers={"kid": kid}
        )


async def test_jwks_keys_by_kid_and_rotation():
    idp = Jwks()
    app = web.Application()
    app.router.add_get("/jwks", idp.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        client = jwt.PyJWKClient(f"http://127.0.0.1:{port}/jwks", cooldown_duration=0)
        auth = Authenticator(None, jwks=client)
        first = idp.rotate()
        old_token = idp.token(first)
        assert (await auth.authenticate(old_token)).user_id == "u1"
        assert (await auth.authenticate(idp.token(first))).user_id == "u1"
        fetched = idp.fetches
        second = idp.rotate()  # the provider rotates: the new kid is fetched on sight
        assert (await auth.authenticate(idp.token(second))).user_id == "u1"
        assert idp.fetches > fetched
        with pytest.raises(AuthError):  # the retired key no longer signs anything
            await auth.authenticate(old_token)
        forged = jwt.encode(
            _claims(),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": second},
        )
        with pytest.raises(AuthError):
            await auth.authenticate(forged)
        with pytest.raises(AuthError):  # no HS256 without a secret
            await auth.authenticate(jwt.encode(_claims(), TEST_SECRET))
    finally:
        await runner.cleanup()


def test_redaction_helpers():
    assert (
        url_origin("https://hooks.slack.com/services/T0/B0/SECRET?x=1") == "https://hooks.slack.com"
    )
    assert url_origin("http://user:pw@10.0.0.1:8443/p") == "http://10.0.0.1:8443"
    assert mask_password("redis://:hunter2@redis:6379/0") == "redis://:***@redis:6379/0"
    assert mask_password("redis://redis:6379/0") == "redis://redis:6379/0"


async def test_webhook_secrets_appear_in_no_event_timeline_or_log(
    base_url, produce, token, hooks, caplog
):
    """The shipped test policy `hooks` pages a webhook at /flaky/hook and one that is down:
    the escalation event, the timeline and the logs name only scheme://host:port."""
    tenant = new_tenant()
    oncall = await NodeClient.start(base_url, token(tenant, "oc", ["oncall"]), ["websocket"])
    try:
        await oncall.connected()
        await produce(TOPIC_ALERTS, alert(tenant, "WH-1", "critical", site="hook-site"))
        esc = (await oncall.wait_for(lambda m: m.get("name") == "escalation", 20))["data"]
        hooks_seen = [t["webhook"] for t in esc["targets"] if "webhook" in t]
        assert hooks_seen and all(h.count("/") == 2 for h in hooks_seen), hooks_seen
        for _ in range(100):
            _, body = await _http(base_url, token(tenant), "GET", "/api/v1/incidents/WH-1/timeline")
            if sum(e["kind"] == "webhook" for e in body.get("timeline", [])) >= 2:
                break
            await asyncio.sleep(0.2)
        text = json.dumps(body) + json.dumps(esc) + caplog.text
        assert "webhook" in text and "127.0.0.1" in text  # the positive twin: they are named
        assert "/flaky" not in text and "/nobody-home" not in text
    finally:
        await oncall.close()


async def _cli(*args: str, **env: str) -> tuple[int, str, str]:
    from tests.helpers import cli_env, python_bin

    proc = await asyncio.create_subprocess_exec(
        python_bin(),
        "-m",
        "towerco_notify.cli",
        *args,
        env=cli_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_revoke_and_audit_from_the_shell(daemon, base_url, broker, redis_url, token):
    tenant = new_tenant()
    victim = token(tenant, "leaver")
    client = await NodeClient.start(base_url, victim, ["websocket"])
    try:
        await client.connected()
        code, out, err = await _cli(
            "revoke",
            "--tenant",
            tenant,
            "--user",
            "leaver",
            NOTIFY_REDIS_URL=redis_url,
            NOTIFY_REDIS_CLUSTER=str(daemon.settings.redis_cluster).lower(),
            NOTIFY_REDIS_PREFIX=daemon.settings.redis_prefix,
            NOTIFY_KAFKA_BOOTSTRAP=broker,
        )
        assert code == 0, err
        assert json.loads(out)["user_id"] == "leaver"
        await client.wait_for(lambda m: m["kind"] == "disconnect", 5)
    finally:
        await client.close()
    assert (await _http(base_url, victim, "GET", "/api/v1/incidents"))[0] == 401
    code, out, err = await _cli(
        "audit", "--since", "10m", "--tenant", tenant, NOTIFY_KAFKA_BOOTSTRAP=broker
    )
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["action"], r["target"], r["source"]) for r in records] == [
        ("revoke", "user:leaver", "cli")
    ]
    code, _, err = await _cli("revoke", "--tenant", tenant, "--user", "x")
    assert code == 2 and "NOTIFY_REDIS_URL" in err
    code, _, err = await _cli("audit", "--since", "yesterday", NOTIFY_KAFKA_BOOTSTRAP=broker)
    assert code == 2 and "--since" in err
