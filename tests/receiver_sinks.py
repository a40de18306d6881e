"""Local stand-ins for the services receivers talk to: an SMTP server (aiosmtpd), chat and
PagerDuty webhooks that record what they get, and a Web Push service that checks the
VAPID JWT and decrypts the payload with the subscription's keys, as a browser vendor's
push service and the browser would."""

from __future__ import annotations

import base64
import os
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import http_ece
import jwt
import orjson
from aiohttp import web
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import serve_app
from towerco_notify.embedded_broker import free_port


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Browser:
    """A push subscription's keys, held as a browser holds them."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self) -> dict[str, Any]:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return orjson.loads(plain)


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos)})
        self.messages.append(
            message_from_bytes(envelope.original_content, policy=policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


class ReceiverSinks:
    def __init__(self) -> None:
        self.port = 0
        self.requests: list[dict[str, Any]] = []  # {path, headers, json | body}
        self.browsers: dict[str, Browser] = {}  # push endpoint name -> its keys
        self.pushed: list[dict[str, Any]] = []  # {name, claims, data}
        self.flags: set[str] = set()
        self.mailbox = _Mailbox()
        self.smtp_port = free_port()
        self._smtp = Controller(self.mailbox, hostname="127.0.0.1", port=self.smtp_port)
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(f"{self.base}/push/{name}")
        return self.browsers[name]

    def of(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.read()
        entry: dict[str, Any] = {"path": request.path, "headers": dict(request.headers)}
        try:
            entry["json"] = orjson.loads(body)
        except orjson.JSONDecodeError:
            entry["body"] = body
        self.requests.append(entry)
        if request.path.startswith("/down"):
            return web.Response(status=503, text="down for maintenance")
        key = entry.get("json", {}).get("dedup_key") if "json" in entry else None
        if request.path == "/pd-flaky" and f"refused:{key}" not in self.flags:
            self.flags.add(f"refused:{key}")  # the first event of each incident: 503
            entry["status"] = 503
            return web.Response(status=503, text="try later")
        if request.path.startswith("/slackapi/"):  # Slack's Web API answers JSON
            return web.json_response({"ok": True, "channel": "D0", "ts": "1.2"})
        if request.path.startswith("/pd"):
            entry["status"] = 202
            return web.json_response({"status": "success", "dedup_key": key}, status=202)
        return web.Response(status=200, text="ok")

    async def _push(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        if name.startswith("gone"):
            self.requests.append({"path": request.path, "status": 410})
            return web.Response(status=410, text="subscription expired")
        browser = self.browsers.get(name)
        if browser is None:
            return web.Response(status=404)
        # the push service's check: `vapid t=<ES256 JWT>, k=<public key>`, aud = our origin
        auth = request.headers.get("Authorization", "")
        fields = dict(part.strip().split("=", 1) for part in auth.removeprefix("vapid ").split(","))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        claims = jwt.decode(fields["t"], public, algorithms=["ES256"], audience=self.base)
        self.pushed.append(
            {
                "name": name,
                "claims": claims,
                "encoding": request.headers.get("Content-Encoding"),
                "ttl": request.headers.get("TTL"),
                "data": browser.decrypt(body),
            }
        )
        return web.Response(status=201)

    async def start(self) -> None:
        self._smtp.start()
        app = web.Application()
        app.router.add_post("/push/{name}", self._push)
        app.router.add_post("/{tail:.*}", self._record)
        self._runner, self.port = await serve_app(app)

    async def stop(self) -> None:
        self._smtp.stop()
        if self._runner is not None:
            await self._runner.cleanup()
