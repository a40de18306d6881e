"""Web Push: the browsers' subscriptions per user, and the daemon's VAPID key pair.

A subscription is the browser's `PushSubscription` JSON (`endpoint`, `keys.p256dh`,
`keys.auth`), kept with the user and roles of the token that registered it, so a
`webpush: {role: oncall}` target reaches whoever holds that role. At most
`MAX_PER_USER` per user (the oldest goes). Redis: one hash per tenant; memory in the
embedded mode.

The VAPID key: `NOTIFY_VAPID_PRIVATE_KEY` (a PEM file or its base64url raw key), else one
generated once and kept in Redis so every process signs with the same key (the
browsers subscribed with its public half).
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from notify_core.redis.keys import RedisKeys

MAX_PER_USER = 10


def subscription_id(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()[:24]


class PushStore(Protocol):
    async def add(
        self, tenant: str, user: str, roles: list[str], subscription: dict[str, Any]
    ) -> str: ...

    async def remove(self, tenant: str, sub_id: str, user: str | None = None) -> bool:
        """Remove one subscription (only `user`'s own when given)."""

    async def all(self, tenant: str) -> dict[str, dict[str, Any]]: ...

    async def for_target(
        self, tenant: str, role: str | None, user: str | None
    ) -> dict[str, dict[str, Any]]: ...


def _record(user: str, roles: list[str], subscription: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": user,
        "roles": sorted(roles),
        "subscription": subscription,
        "created_at": time.time(),
    }


def _matches(rec: dict[str, Any], role: str | None, user: str | None) -> bool:
    return (user is not None and rec["user_id"] == user) or (
        role is not None and role in rec["roles"]
    )


def _over_limit(recs: dict[str, dict[str, Any]], user: str) -> list[str]:
    mine = sorted((r["created_at"], sid) for sid, r in recs.items() if r["user_id"] == user)
    return [sid for _, sid in mine[: max(0, len(mine) - MAX_PER_USER)]]


class MemoryPushStore:
    def __init__(self) -> None:
        self._subs: dict[str, dict[str, dict[str, Any]]] = {}

    async def add(
        self, tenant: str, user: str, roles: list[str], subscription: dict[str, Any]
    ) -> str:
        sid = subscription_id(subscription["endpoint"])
        recs = self._subs.setdefault(tenant, {})
        recs[sid] = _record(user, roles, subscription)
        for old in _over_limit(recs, user):
            recs.pop(old, None)
        return sid

    async def remove(self, tenant: str, sub_id: str, user: str | None = None) -> bool:
        recs = self._subs.get(tenant, {})
        rec = recs.get(sub_id)
        if rec is None or (user is not None and rec["user_id"] != user):
            return False
        del recs[sub_id]
        return True

    async def all(self, tenant: str) -> dict[str, dict[str, Any]]:
        return dict(self._subs.get(tenant, {}))

    async def for_target(
        self, tenant: str, role: str | None, user: str | None
    ) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in (await self.all(tenant)).items() if _matches(v, role, user)}


class RedisPushStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis, self._keys = redis, RedisKeys(prefix)

    def _key(self, tenant: str) -> str:
        return self._keys.push_subscriptions(tenant)

    async def add(
        self, tenant: str, user: str, roles: list[str], subscription: dict[str, Any]
    ) -> str:
        sid = subscription_id(subscription["endpoint"])
        key = self._key(tenant)
        await self._redis.hset(key, sid, orjson.dumps(_record(user, roles, subscription)))
        stale = _over_limit(await self.all(tenant), user)
        if stale:
            await self._redis.hdel(key, *stale)
        return sid

    async def remove(self, tenant: str, sub_id: str, user: str | None = None) -> bool:
        key = self._key(tenant)
        if user is not None:
            raw = await self._redis.hget(key, sub_id)
            if raw is None or orjson.loads(raw)["user_id"] != user:
                return False
        return bool(await self._redis.hdel(key, sub_id))

    async def all(self, tenant: str) -> dict[str, dict[str, Any]]:
        raw = await self._redis.hgetall(self._key(tenant))
        return {
            (k.decode() if isinstance(k, bytes) else k): orjson.loads(v) for k, v in raw.items()
        }

    async def for_target(
        self, tenant: str, role: str | None, user: str | None
    ) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in (await self.all(tenant)).items() if _matches(v, role, user)}


def _key_text(configured: str) -> str:
    """The key itself: the file's content when `configured` names a file."""
    path = Path(configured)
    if len(configured) < 4096 and not configured.startswith("-----") and path.is_file():
        return path.read_text().strip()
    return configured


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class VapidKeys:
    """The VAPID key pair: configured, or generated once and shared through Redis."""

    def __init__(self, configured: str | None, redis: Redis | None, prefix: str) -> None:
        self._configured, self._redis = configured, redis
        self._key = f"{prefix}push:vapid-private-pem"
        self._vapid: Any = None

    async def vapid(self) -> Any:
        from py_vapid import Vapid

        if self._vapid is not None:
            return self._vapid
        if self._configured:
            text = _key_text(self._configured.strip())
            if text.startswith("-----"):
                self._vapid = Vapid.from_pem(text.encode())
            else:
                self._vapid = Vapid.from_string(private_key=text)
            return self._vapid
        fresh = Vapid()
        fresh.generate_keys()
        pem = fresh.private_pem()
        if self._redis is not None:
            await self._redis.set(self._key, pem, nx=True)  # the first process's key wins
            pem = await self._redis.get(self._key) or pem
        self._vapid = Vapid.from_pem(pem)
        return self._vapid

    async def public_key(self) -> str:
        """The application server key a browser subscribes with (base64url, uncompressed
        P-256 point), as `PushManager.subscribe({applicationServerKey})` takes it."""
        from cryptography.hazmat.primitives import serialization

        vapid = await self.vapid()
        raw = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return _b64url(raw)
