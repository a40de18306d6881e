"""Webhook targets: a JSON POST signed with HMAC-SHA256, retried with capped backoff.

Headers: `X-Towerco-Timestamp: <unix seconds>` and
`X-Towerco-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
A receiver recomputes the HMAC over the raw body and rejects stale timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any

import aiohttp
import orjson
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from notify_core.obs import metrics
from notify_core.redact import url_origin

log = logging.getLogger(__name__)


class WebhookFailed(Exception):
    pass


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


class HttpClient:
    """One aiohttp session for the receivers, opened and closed by the lifecycle owner;
    `session` may be handed out before `start` (it is created lazily, on the loop)."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def start(self) -> None:
        _ = self.session

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class WebhookSender:
    """Signs and posts on the receivers' one HTTP session (`http`, whose lifecycle the
    composition root owns), each attempt within `timeout_s`."""

    def __init__(
        self,
        secret: bytes,
        http: HttpClient,
        attempts: int = 4,
        max_backoff_s: float = 5.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._secret = secret
        self._http = http
        self._attempts = attempts
        self._max_backoff = max_backoff_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST until a 2xx or the attempts run out; returns {ok, status, attempts, error}."""
        body = orjson.dumps(payload)
        attempts, status, error = 0, None, None
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.2, max=self._max_backoff),
                retry=retry_if_exception_type((WebhookFailed, aiohttp.ClientError, TimeoutError)),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    ts = str(int(time.time()))
                    headers = {
                        "Content-Type": "application/json",
                        "X-Towerco-Timestamp": ts,
                        "X-Towerco-Signature": sign(self._secret, ts, body),
                    }
                    async with self._http.session.post(
                        url, data=body, headers=headers, timeout=self._timeout
                    ) as resp:
                        status = resp.status
                        if status >= 300:
                            raise WebhookFailed(f"HTTP {status}")
            metrics.WEBHOOKS.labels("ok").inc()
            return {"ok": True, "status": status, "attempts": attempts}
        except Exception as exc:
            # an error's text may quote the URL: only its origin leaves the process
            error = f"{type(exc).__name__}: {exc}".replace(url, url_origin(url))
            metrics.WEBHOOKS.labels("failed").inc()
            log.warning(
                "webhook %s failed after %d attempt(s): %s", url_origin(url), attempts, error
            )
            return {"ok": False, "status": status, "attempts": attempts, "error": error}
