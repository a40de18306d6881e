"""Signing in to the dashboard with a real OpenID provider (the certified `oidc-provider`
package, RS256 JWT access tokens with an audience and a tenant claim) in Chromium: the
authorization code flow with PKCE, the live screen, renewal past a short token lifetime
without a lost or doubled incident, sign-out through the issuer; the attacker's side (a
replayed code, a forged state, a token of another issuer or audience); the phone opening a
page's link, signing in and acknowledging."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from notify_core.wire.events import TOPIC_ALERTS
from tests.conftest import eventually, own_daemon
from tests.helpers import NODE_DIR, alert, new_tenant, node_bin
from tests.test_browser import Browser, pytestmark  # noqa: F401  (skip without Chromium)
from towerco_notify.embedded_broker import free_port
from towerco_notify.runtime import Runtime

AUDIENCE = "urn:towerco:notify"  # a resource indicator: an absolute URI
CLIENT_ID = "noc-dashboard"
TOKEN_TTL_S = 20  # short: the renewal test lives past one token


@dataclass
class SignInSetup:
    base_url: str
    issuer: str
    tenant: str
    daemon: Runtime
    provider: asyncio.subprocess.Process


@pytest_asyncio.fixture(scope="module")
async def oidc(broker: str, redis_url: str, tmp_path_factory: Any) -> AsyncIterator[SignInSetup]:
    """A daemon that trusts the provider's JWKS (audience and issuer checked) and publishes
    it to the dashboard, and the provider with that daemon's page as redirect URI."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    async with own_daemon(
        broker,
        redis_url,
        tmp_path_factory.mktemp("signin-config"),
        jwt_jwks_url=f"{issuer}/jwks",
        jwt_audience=AUDIENCE,
        jwt_issuer=issuer,
        oidc_issuer=issuer,
        oidc_client_id=CLIENT_ID,
    ) as daemon:
        base = f"http://127.0.0.1:{daemon.http_port}"
        tenant = new_tenant()
        provider = await asyncio.create_subprocess_exec(
            node_bin(),
            str(NODE_DIR / "oidc_provider.mjs"),
            json.dumps(
                {
                    "port": port,
                    "clientId": CLIENT_ID,
                    "redirectUris": [f"{base}/"],
                    "postLogoutRedirectUris": [f"{base}/"],
                    "audience": AUDIENCE,
                    "tenant": tenant,
                    "roles": ["operator", "oncall"],
                    "accessTokenTtl": TOKEN_TTL_S,
                }
            ),
            cwd=str(NODE_DIR),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=sys.stderr,
        )
        try:
            assert provider.stdout is not None
            ready = json.loads(await asyncio.wait_for(provider.stdout.readline(), 30))
            assert ready["issuer"] == issuer
            yield SignInSetup(base, issuer, tenant, daemon, provider)
        finally:
            provider.kill()
            await provider.wait()


async def sign_in(browser: Browser, setup: SignInSetup, url: str, login: str) -> None:
    """Open `url` with no token: the dashboard goes to the issuer; sign in there."""
    await browser.do("open", url=url)
    await browser.do("wait", selector="input[name='login']")
    assert (await browser.do("url"))["url"].startswith(setup.issuer)
    await browser.do("fill", selector="input[name='login']", value=login)
    await browser.do("fill", selector="input[name='password']", value="any")
    await browser.do("click", selector="button[type='submit']")
    await browser.do("wait", selector="#status[data-state='live']", timeout=20000)


async def session_token(browser: Browser) -> dict[str, Any]:
    """The signed-in user oidc-client-ts keeps in this tab's sessionStorage."""
    value = (
        await browser.do(
            "eval",
            js="() => { const k = Object.keys(sessionStorage)"
            ".find((k) => k.startsWith('oidc.user:'));"
            " return k ? sessionStorage.getItem(k) : null; }",
        )
    )["value"]
    return json.loads(value) if value else {}


async def rows_now(browser: Browser) -> int:
    """The incidents the screen lists once loaded (the tenant's, from earlier tests too)."""
    await browser.do("wait", selector="body[data-loaded]", state="attached")
    return int(
        (
            await browser.do(
                "eval", js="() => document.getElementById('incidents').dataset.rows || '0'"
            )
        )["value"]
    )


class Steady:
    """Incidents for `tenant` every half second until `stop()`: stopped between two
    sends, never in the middle of one, so `produced` holds exactly what the broker has."""

    def __init__(self, produce: Any, tenant: str, prefix: str) -> None:
        self.produced: list[str] = []
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(produce, tenant, prefix))

    async def _run(self, produce: Any, tenant: str, prefix: str) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            await produce(
                TOPIC_ALERTS, alert(tenant, f"{prefix}-{i}", "minor", title=f"{prefix} {i}")
            )
            self.produced.append(f"{prefix}-{i}")
            await asyncio.sleep(0.5)

    async def stop(self) -> list[str]:
        self._stop.set()
        await self._task
        return self.produced


async def get(base: str, path: str, token: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(base + path, headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status


async def test_sign_in_with_pkce_stays_live_past_the_token_and_signs_out(oidc, produce):
    browser = await Browser.start()
    try:
        await sign_in(browser, oidc, f"{oidc.base_url}/", "alice")
        urls = (await browser.do("urls"))["urls"]
        auth = next(u for u in urls if u.startswith(f"{oidc.issuer}/auth"))
        asked = parse_qs(urlsplit(auth).query)
        assert asked["code_challenge_method"] == ["S256"] and len(asked["code_challenge"][0]) >= 43
        assert asked["client_id"] == [CLIENT_ID] and asked["response_type"] == ["code"]
        assert "code=" not in (await browser.do("url"))["url"]  # the address bar forgot it
        user = await session_token(browser)
        first = jwt.decode(user["access_token"], options={"verify_signature": False})
        assert first["aud"] == AUDIENCE and first["tenant_id"] == oidc.tenant
        assert user["refresh_token"]
        stored = (await browser.do("eval", js="() => JSON.stringify(localStorage)"))["value"]
        assert user["access_token"] not in stored and user["refresh_token"] not in stored
        tenant_line = (await browser.do("text", selector="#tenant"))["text"]
        assert tenant_line == f"{oidc.tenant} · alice"

        # incidents all along: before the renewal, between it and the old token's end, and
        # after the daemon cut the expired session and the screen came back with the new one
        before = await rows_now(browser)
        steady = Steady(produce, oidc.tenant, "RN")
        try:
            await browser.do("wait", selector="body[data-renewals='1']", timeout=TOKEN_TTL_S * 1000)
            renewed = (await session_token(browser))["access_token"]
            assert renewed != user["access_token"]
            # the daemon disconnects tokens that expired (every 15 s); the screen reconnects
            await browser.do("wait", selector="body[data-connects='2']", timeout=45000)
            await browser.do("wait", selector="#status[data-state='live']")
            await asyncio.sleep(2)
        finally:
            produced = await steady.stop()
        last = produced[-1]
        await browser.do("wait", selector=f"#incidents li[data-id='{last}']", timeout=15000)
        # every incident once: the list holds as many rows as were produced (it is virtual:
        # only the rows on screen are in the DOM), the count of open ones agrees
        await browser.do("wait", selector=f"#incidents[data-rows='{before + len(produced)}']")
        count = (await browser.do("text", selector="#incident-count"))["text"]
        assert count == str(before + len(produced))
        # the connection the daemon holds now is the renewed token's
        sessions = oidc.daemon.server.handlers.sessions.values()
        mine = [s.principal for s in sessions if s.principal.tenant_id == oidc.tenant]
        assert mine and all(p.expires_at > first["exp"] for p in mine)

        # sign out: through the issuer's end_session_endpoint and back to the dashboard,
        # which sends the next person at the screen to sign in (the issuer's session ended
        # too: its form, not a silent sign-in)
        await browser.do("click", selector="#signout")
        await browser.do("wait", selector="button[value='yes']")
        await browser.do("click", selector="button[value='yes']")
        await browser.do("wait", selector="input[name='login']")
        urls = (await browser.do("urls"))["urls"]
        ended = next(i for i, u in enumerate(urls) if u.startswith(f"{oidc.issuer}/session/end"))
        assert f"{oidc.base_url}/" in urls[ended:]  # back through the dashboard
        assert await session_token(browser) == {}
    finally:
        await browser.close()


async def test_a_replayed_code_a_forged_state_and_foreign_tokens_are_refused(oidc):
    browser = await Browser.start()
    try:
        await sign_in(browser, oidc, f"{oidc.base_url}/", "bob")  # the positive twin
        token = (await session_token(browser))["access_token"]
        assert await get(oidc.base_url, "/api/v1/incidents", token) == 200
        callback = next(u for u in (await browser.do("urls"))["urls"] if "code=" in u)

        # the callback again (history, a shared link): its state was used up
        await browser.do("open", url=callback)
        await browser.do("wait", selector="#auth-error", text="Sign-in refused")
        assert (await browser.do("text", selector="#status"))["text"] == "offline"
        # an attacker's code in a link (login CSRF): a state this tab never sent
        q = parse_qs(urlsplit(callback).query)
        forged = f"{oidc.base_url}/?code={q['code'][0]}x&state=forged&iss={q['iss'][0]}"
        await browser.do("open", url=forged)
        await browser.do("wait", selector="#auth-error", text="Sign-in refused")
        assert "code=" not in (await browser.do("url"))["url"]
    finally:
        await browser.close()

    # tokens the daemon must refuse although they look like the provider's
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    base_claims = {**claims, "iat": now, "exp": now + 300}
    forged_key = jwt.encode(base_claims, stranger, "RS256", headers={"kid": header["kid"]})
    assert await get(oidc.base_url, "/api/v1/incidents", forged_key) == 401
    unknown_kid = jwt.encode(base_claims, stranger, "RS256", headers={"kid": "other-issuer"})
    assert await get(oidc.base_url, "/api/v1/incidents", unknown_kid) == 401
    assert await get(oidc.base_url, "/api/v1/incidents", token) == 200  # still the twin


async def test_a_phone_opens_a_pages_link_signs_in_and_acknowledges(oidc, produce):
    await produce(
        TOPIC_ALERTS, alert(oidc.tenant, "PH-OIDC", "critical", site="s9", title="Genset failed")
    )
    browser = await Browser.start(phone=True)
    try:
        await sign_in(browser, oidc, f"{oidc.base_url}/#incident=PH-OIDC", "carol")
        # the fragment came back from the issuer: the incident is open on the phone
        await browser.do("wait", selector="#detail:not([hidden])", text="Genset failed")
        await browser.do("click", selector="#detail-ack")
        token = (await session_token(browser))["access_token"]

        async def acknowledged() -> bool:
            async with aiohttp.ClientSession() as http:
                async with http.get(
                    f"{oidc.base_url}/api/v1/incidents?status=acknowledged",
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    body = await r.json()
            return any(
                i["incident_id"] == "PH-OIDC" and i.get("acknowledged_by") == "carol"
                for i in body["incidents"]
            )

        await eventually(acknowledged, timeout=15)
    finally:
        await browser.close()


async def test_without_a_refresh_token_the_screen_renews_through_the_issuer(oidc, produce):
    """A provider that gives the dashboard no refresh token: before the token ends the page
    goes through the issuer again (its session still there: no form) and resumes from its
    last event: every incident once."""
    browser = await Browser.start()
    try:
        await sign_in(browser, oidc, f"{oidc.base_url}/", "norefresh-dave")
        first = await session_token(browser)
        assert first["access_token"] and not first.get("refresh_token")
        before = await rows_now(browser)
        steady = Steady(produce, oidc.tenant, "NR")
        try:
            for _ in range(TOKEN_TTL_S * 4):  # the renewal: at 3/4 of the token's life
                await asyncio.sleep(0.5)
                now = await session_token(browser)
                if now.get("access_token") not in (None, first["access_token"]):
                    break
            assert now["access_token"] != first["access_token"]
            await browser.do("wait", selector="#status[data-state='live']")
            await asyncio.sleep(2)
        finally:
            produced = await steady.stop()
        auths = [
            u for u in (await browser.do("urls"))["urls"] if u.startswith(f"{oidc.issuer}/auth")
        ]
        assert len(auths) >= 2  # through the issuer again, without its form
        await browser.do(
            "wait", selector=f"#incidents[data-rows='{before + len(produced)}']", timeout=15000
        )
    finally:
        await browser.close()
