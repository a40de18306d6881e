"""Action links: `{NOTIFY_PUBLIC_URL}/a/{token}` in a page (email, chat, Web Push) that
acknowledges or resolves the incident as the person the page went to.

One token per (incident, action, recipient), 192 random bits, kept in Redis (memory in the
embedded mode): usable once, until `NOTIFY_ACTION_LINK_TTL` has passed. A used or expired
token is remembered a week longer so that it answers "gone" (410) rather than "unknown"
(404). Using one is one atomic step (a small script on its own key), so two clicks, two
tabs or two servers act once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from notify_core.redis.keys import RedisKeys

REMEMBER_S = 7 * 86400  # a used or expired token answers 410 this long, then 404
Use = Literal["ok", "gone", "unknown"]


@dataclass(frozen=True, slots=True)
class Link:
    tenant: str
    incident_id: str
    action: str  # acknowledge | resolve
    actor: str  # who acts: the user (or address) the page went to
    expires_at: float


_USE_LUA = """
local v = redis.call('HMGET', KEYS[1], 'tenant', 'incident', 'action', 'actor', 'exp', 'used')
if not v[1] then return false end
local state = 'ok'
if v[6] == '1' or tonumber(v[5]) <= tonumber(ARGV[1]) then
  state = 'gone'
elseif ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'used', '1')
end
return {state, v[1], v[2], v[3], v[4], v[5]}
"""


class ActionLinks:
    def __init__(
        self,
        redis: Redis | None,
        prefix: str,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self.ttl_s = ttl_s
        self._clock = clock
        self._memory: dict[str, tuple[Link, bool]] = {}
        self._script = redis.register_script(_USE_LUA) if redis is not None else None

    async def mint(self, tenant: str, incident_id: str, action: str, actor: str) -> str:
        token = secrets.token_urlsafe(24)
        link = Link(tenant, incident_id, action, actor, self._clock() + self.ttl_s)
        if self._redis is None:
            self._memory[token] = (link, False)
            return token
        key = self._keys.action_link(token)
        fields: dict[str | bytes, str | bytes] = {
            "tenant": tenant,
            "incident": incident_id,
            "action": action,
            "actor": actor,
            "exp": repr(link.expires_at),
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.expire(key, int(self.ttl_s + REMEMBER_S))
        await pipe.execute()
        return token

    async def peek(self, token: str) -> tuple[Use, Link | None]:
        """What the token would do, without using it (a GET: mail scanners fetch links)."""
        return await self._look(token, consume=False)

    async def use(self, token: str) -> tuple[Use, Link | None]:
        """Use it: `ok` once; `gone` when used or expired; `unknown` otherwise."""
        return await self._look(token, consume=True)

    async def _look(self, token: str, consume: bool) -> tuple[Use, Link | None]:
        if not _plausible(token):
            return "unknown", None
        now = self._clock()
        if self._redis is None:
            found = self._memory.get(token)
            if found is None:
                return "unknown", None
            link, used = found
            if used or link.expires_at <= now:
                return "gone", link
            if consume:
                self._memory[token] = (link, True)
            return "ok", link
        assert self._script is not None
        raw = await self._script(
            keys=[self._keys.action_link(token)], args=[repr(now), "1" if consume else "0"]
        )
        if not raw:
            return "unknown", None
        state, tenant, incident, action, actor, expires = (_text(x) for x in raw)
        link = Link(tenant, incident, action, actor, float(expires))
        return ("ok" if state == "ok" else "gone"), link


def _plausible(token: str) -> bool:
    return 20 <= len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
