"""Who of a tenant is online, and who is looking at which incident, across server processes.

Each process keeps its own connections' share (per tenant: user → roles, connections,
since; per incident: the users viewing it) and writes it to Redis hashes whose fields are
`<process>|<user>` with an expiry inside the value, renewed every 10 s, so a process that
dies (SIGKILL) drops out within 30 s. A change is written and announced on a channel
about a second later (debounced: a wall of dashboards connecting at once is one update);
every process then reads the merged view and tells its own connections of that tenant
(`presence`) or of that incident's viewers room (`incident_viewers`). The embedded mode
does the same in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from notify_core.clock import iso_s
from notify_core.obs.log_fields import about
from notify_core.redis import factory as redis_factory
from notify_core.redis.keys import RedisKeys
from notify_core.retry import Backoff
from notify_core.wire import events
from notify_core.wire.rooms import tenant_room
from sio_server.admission.auth import Principal

log = logging.getLogger(__name__)

DEBOUNCE_S = 1.0
EVENT_USERS = 100  # users listed in a `presence` event (`count` says how many there are)
LEASE_S = 30.0

Emit = Callable[[dict[str, Any], list[str]], Awaitable[None]]


def viewers_room(tenant: str, incident_id: str) -> str:
    return f"viewers:{tenant}:{incident_id}"


@dataclass
class _Mine:
    roles: set[str] = field(default_factory=set)
    connections: int = 0
    since: float = 0.0


class Presence:
    def __init__(
        self, redis: Redis | None, prefix: str, emit: Emit, lease_s: float = LEASE_S
    ) -> None:
        """`lease_s`: how long a process's share outlives its last renewal (renewed every
        third of it): a SIGKILLed process's users are gone from every view by then."""
        self._lease = lease_s
        self._announced: dict[str, tuple[str, ...]] = {}  # tenant -> users last told
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._channel = f"{prefix}presence"
        self._emit = emit
        self._proc = uuid.uuid4().hex[:12]
        self._users: dict[str, dict[str, _Mine]] = {}  # tenant -> user -> this process's
        self._viewing: dict[tuple[str, str], dict[str, int]] = {}  # (t, inc) -> user -> n
        self._dirty: set[str] = set()  # tenants, and `tenant|incident` keys
        self._memory: dict[str, dict[str, bytes]] = {}  # the embedded mode's "Redis"
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    # -- connections come and go -------------------------------------------------
    def joined(self, p: Principal) -> None:
        mine = self._users.setdefault(p.tenant_id, {}).setdefault(p.user_id, _Mine())
        if mine.connections == 0:
            mine.since = time.time()
        mine.connections += 1
        mine.roles |= p.roles
        self._changed(p.tenant_id)

    def left(self, p: Principal, viewing: set[str]) -> None:
        users = self._users.get(p.tenant_id, {})
        mine = users.get(p.user_id)
        if mine is not None:
            mine.connections -= 1
            if mine.connections <= 0:
                del users[p.user_id]
        for incident_id in viewing:
            self.unview(p, incident_id)
        self._changed(p.tenant_id)

    def view(self, p: Principal, incident_id: str) -> None:
        users = self._viewing.setdefault((p.tenant_id, incident_id), {})
        users[p.user_id] = users.get(p.user_id, 0) + 1
        self._changed(f"{p.tenant_id}|{incident_id}")

    def unview(self, p: Principal, incident_id: str) -> None:
        users = self._viewing.get((p.tenant_id, incident_id))
        if not users or p.user_id not in users:
            return
        users[p.user_id] -= 1
        if users[p.user_id] <= 0:
            del users[p.user_id]
        if not users:
            del self._viewing[(p.tenant_id, incident_id)]
        self._changed(f"{p.tenant_id}|{incident_id}")

    def _changed(self, key: str) -> None:
        self._dirty.add(key)
        if self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_later(DEBOUNCE_S, self._spawn_flush)

    def _spawn_flush(self) -> None:
        self._flush = None
        task = asyncio.create_task(self.flush())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the shared view -------------------------------------------------------------
    def _hash(self, key: str) -> str:
        if "|" in key:
            tenant, incident = key.split("|", 1)
            return self._keys.presence(tenant, "viewers", incident)
        return self._keys.presence(key)

    def _my_fields(self, key: str, until: float) -> dict[str, bytes]:
        if "|" in key:
            tenant, incident = key.split("|", 1)
            viewers = self._viewing.get((tenant, incident), {})
            return {f"{self._proc}|{u}": orjson.dumps({"until": until}) for u in viewers}
        return {
            f"{self._proc}|{u}": orjson.dumps(
                {"until": until, "roles": sorted(m.roles), "n": m.connections, "since": m.since}
            )
            for u, m in self._users.get(key, {}).items()
        }

    async def _write(self, key: str) -> None:
        """Replace this process's fields of `key` with what it holds now."""
        name, mine = self._hash(key), self._my_fields(key, time.time() + self._lease)
        if self._redis is None:
            table = self._memory.setdefault(name, {})
            for f in [f for f in table if f.startswith(f"{self._proc}|")]:
                del table[f]
            table.update(mine)
            return
        fields: Any = await self._redis.hkeys(name)
        gone = [f for f in (x.decode() for x in fields) if f.startswith(f"{self._proc}|")]
        gone = [f for f in gone if f not in mine]
        pipe = self._redis.pipeline(transaction=False)
        if gone:
            pipe.hdel(name, *gone)
        if mine:
            pipe.hset(name, mapping=mine)  # type: ignore[arg-type]
            pipe.expire(name, max(1, int(self._lease * 4)))
        await pipe.execute()
        await self._redis.publish(self._channel, key)  # not pipelined: a cluster refuses it

    async def _read(self, key: str) -> dict[str, list[dict[str, Any]]]:
        """The live fields of `key` across processes, by user."""
        name = self._hash(key)
        if self._redis is None:
            raw: dict[Any, Any] = dict(self._memory.get(name, {}))
        else:
            raw = await self._redis.hgetall(name)
        now = time.time()
        out: dict[str, list[dict[str, Any]]] = {}
        for f, v in raw.items():
            f = f.decode() if isinstance(f, bytes) else f
            value = orjson.loads(v)
            if value["until"] > now:
                out.setdefault(f.split("|", 1)[1], []).append(value)
        return out

    async def users(self, tenant: str) -> list[dict[str, Any]]:
        """`GET /api/v1/presence`: who of the tenant is online, across processes."""
        merged = []
        for user, shares in sorted((await self._read(tenant)).items()):
            roles = sorted({r for s in shares for r in s.get("roles", [])})
            since = min(s.get("since", 0.0) for s in shares)
            merged.append(
                {
                    "user_id": user,
                    "roles": roles,
                    "connections": sum(s.get("n", 0) for s in shares),
                    "since": _iso(since),
                }
            )
        return merged

    async def viewers(self, tenant: str, incident_id: str) -> list[str]:
        return sorted(await self._read(f"{tenant}|{incident_id}"))

    async def flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            try:
                await self._write(key)
                if self._redis is None:
                    await self._announce(key)
            except Exception as exc:
                log.warning("presence update of %s failed (%s)", key, exc)

    async def _announce(self, key: str) -> None:
        """Tell this process's connections what changed (`key`: tenant or tenant|incident)."""
        if "|" in key:
            tenant, incident = key.split("|", 1)
            event = events.incident_viewers(tenant, incident, await self.viewers(tenant, incident))
            await self._emit(event, [viewers_room(tenant, incident)])
            return
        if key not in self._users:
            return
        users = await self.users(key)
        self._announced[key] = tuple(u["user_id"] for u in users)
        # every connection of the tenant gets this: past EVENT_USERS the list is cut (a
        # full list to N connections is N^2 bytes; GET /api/v1/presence has them all)
        event = events.presence(key, users, EVENT_USERS)
        await self._emit(event, [tenant_room(key)])

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._redis is not None:
            self._tasks = [
                asyncio.create_task(self._listen(), name="presence-listen"),
                asyncio.create_task(self._renew(), name="presence-renew"),
            ]

    async def stop(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        assert self._redis is not None
        backoff = Backoff("presence channel", log)
        while True:
            try:
                pubsub = await redis_factory.pubsub(self._redis)
                await pubsub.subscribe(self._channel)
                backoff.ok()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    key = message["data"].decode()
                    tenant = key.split("|", 1)[0]
                    if tenant in self._users or any(t == tenant for t, _ in self._viewing):
                        await self._announce(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await backoff.failed(exc)

    async def _renew(self) -> None:
        """Renew this process's shares; and tell this process's connections when another
        process's share lapsed (it died without saying goodbye)."""
        while True:
            await asyncio.sleep(self._lease / 3)
            keys = list(self._users) + [f"{t}|{i}" for t, i in self._viewing]
            for key in keys:
                try:
                    name, mine = self._hash(key), self._my_fields(key, time.time() + self._lease)
                    if mine and self._redis is not None:
                        await self._redis.hset(name, mapping=mine)  # type: ignore[arg-type]
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("renewing presence failed (%s)", exc)
            for tenant in list(self._users):
                try:
                    now_online = tuple(u["user_id"] for u in await self.users(tenant))
                    if now_online != self._announced.get(tenant, now_online):
                        await self._announce(tenant)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "presence check of %s failed (%s)", tenant, exc, extra=about(tenant)
                    )


def _iso(ts: float) -> str:
    return iso_s(ts)
