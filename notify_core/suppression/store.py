"""Where maintenance windows, silences and site statuses live, and the snapshot read from.

Redis (hashes `{prefix}suppression` and `{prefix}site-status`, a version counter bumped on
each change) or memory in the embedded mode. Every process that decides (pipelines, the
escalation scheduler) holds a snapshot, refreshed within a second of a change, so deciding
(`notify_core.suppression.policy.mutes`) is a pure call with no I/O on the alert path.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import time as dtime
from typing import Any

import orjson
from redis.asyncio import Redis

from notify_core.in_force import fixed
from notify_core.redis.keys import RedisKeys
from notify_core.redis.snapshot_follower import UNCHANGED, FollowedSnapshot
from notify_core.sites_config import Inventory
from notify_core.suppression.config import Suppression
from notify_core.suppression.policy import Index, Muted, Notice, Silence, State, Window

log = logging.getLogger(__name__)


def window_to_json(w: Window) -> bytes:
    d = w._asdict()
    d["site_ids"] = sorted(w.site_ids)
    d["start"] = w.start.isoformat() if w.start else None
    d["end"] = w.end.isoformat() if w.end else None
    return orjson.dumps(d)


def window_from_json(raw: bytes | str) -> Window:
    d = orjson.loads(raw)
    d["site_ids"] = frozenset(d["site_ids"])
    d["days"] = tuple(d.get("days") or ())
    d["start"] = dtime.fromisoformat(d["start"]) if d.get("start") else None
    d["end"] = dtime.fromisoformat(d["end"]) if d.get("end") else None
    return Window(**d)


def window_view(w: Window) -> dict[str, Any]:
    return {**orjson.loads(window_to_json(w)), "site_ids": sorted(w.site_ids)}


class SuppressionStore(FollowedSnapshot):
    what = "suppression"

    def __init__(
        self,
        redis: Redis | None,
        prefix: str = "",
        config: Callable[[], Suppression] | None = None,
        sites: Callable[[], Inventory] | None = None,
    ) -> None:
        """`config()`: suppression.yaml's windows and inhibition in force; `sites()`: the
        inventory whose dependencies topology follows (both views of the config in force,
        `notify_core.in_force`: read when deciding, so a reload is seen at once)."""
        self._redis = redis
        keys = RedisKeys(prefix)  # one slot: the transactions below touch them together
        self._hash = keys.shared("suppression")
        self._status_hash = keys.shared("suppression", "site-status")
        self._since_hash = keys.shared("suppression", "site-status-since")
        self._version_key = keys.shared("suppression", "v")
        self._version: Any = None
        self._windows: dict[str, Window] = {}  # "tenant:id" -> window (API-made)
        self._silences: dict[str, Silence] = {}
        self._status: dict[tuple[str, str], str] = {}
        # bumped by every local change: a refresh whose reads began before one must not
        # put the older copy back (it skips; the next refresh reads the newer version)
        self._local_writes = 0
        self._writing = 0  # local writes on their way to Redis
        self._since: dict[tuple[str, str], float] = {}  # when each status began (unix s)
        self._sites = sites if sites is not None else fixed(Inventory())
        self._config = config if config is not None else fixed(Suppression())
        self._index: Index | None = None  # of the state, rebuilt after a change
        # the files the index was built on: a reload swaps them whole (identity is enough)
        self._index_config: Suppression | None = None
        self._index_sites: Inventory | None = None

    @property
    def config(self) -> Suppression:
        """config/suppression.yaml (windows, inhibition) in force."""
        return self._config()

    @property
    def sites(self) -> Inventory:
        """config/sites.yaml (regions, dependencies) in force."""
        return self._sites()

    # -- deciding ------------------------------------------------------------------
    def state(self) -> State:
        config, sites = self.config, self.sites
        windows = (*self._windows.values(), *config.windows)
        return State(
            self._status,
            windows,
            tuple(self._silences.values()),
            config.site_down,
            sites if len(sites) else None,
            self._since,
            config.topology_window,
        )

    def mutes(self, n: Notice, now: float | None = None) -> Muted | None:
        """The pure decision (`notify_core.suppression.policy`) on the current snapshot."""
        index, config, sites = self._index, self._config(), self._sites()
        if index is None or config is not self._index_config or sites is not self._index_sites:
            index = self._index = Index(self.state())  # changed, or a reload put new files
            self._index_config, self._index_sites = config, sites
        return index.mutes(n, time.time() if now is None else now)

    def windows(self, tenant: str) -> list[Window]:
        every = (*self._windows.values(), *self.config.windows)
        return [w for w in every if w.tenant_id == tenant]

    def silences(self, tenant: str, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        return [s for s in self._silences.values() if s.tenant_id == tenant and s.ends_at > now]

    def all_windows(self) -> list[Window]:
        """Every tenant's windows: made over HTTP and from suppression.yaml."""
        return [*self._windows.values(), *self.config.windows]

    def all_silences(self) -> list[Silence]:
        return list(self._silences.values())

    def site_statuses(self, tenant: str) -> dict[str, str]:
        """The last status each site of `tenant` reported (`towerco.sites.status`)."""
        return {site: status for (t, site), status in self._status.items() if t == tenant}

    def window(self, tenant: str, ident: str) -> Window | None:
        return self._windows.get(f"{tenant}:{ident}")

    def silence(self, tenant: str, ident: str) -> Silence | None:
        return self._silences.get(f"{tenant}:{ident}")

    # -- changing ----------------------------------------------------------------------
    async def put_window(self, w: Window) -> None:
        async with self._local():
            await self._set(f"w:{w.tenant_id}:{w.id}", window_to_json(w))
        self._windows[f"{w.tenant_id}:{w.id}"] = w
        self._index = None

    async def put_silence(self, s: Silence) -> None:
        async with self._local():
            await self._set(f"s:{s.tenant_id}:{s.id}", orjson.dumps(s._asdict()))
        self._silences[f"{s.tenant_id}:{s.id}"] = s
        self._index = None

    async def delete(self, kind: str, tenant: str, ident: str) -> bool:
        async with self._local():
            return await self._delete(kind, tenant, ident)

    async def _delete(self, kind: str, tenant: str, ident: str) -> bool:
        table: dict[str, Any] = self._windows if kind == "w" else self._silences
        found = table.pop(f"{tenant}:{ident}", None) is not None
        self._index = None
        if self._redis is not None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hdel(self._hash, f"{kind}:{tenant}:{ident}")
            pipe.incr(self._version_key)
            removed, _ = await pipe.execute()
            found = found or bool(removed)
        return found

    async def site_status(
        self, tenant: str, site: str, status: str, at: float | None = None
    ) -> str | None:
        """Record a site's status (that began at `at`, unix s: the report's timestamp);
        the previous one."""
        previous = self._status.get((tenant, site))
        self._status[(tenant, site)] = status
        if previous != status:
            since = time.time() if at is None else at
            self._since[(tenant, site)] = since
            if self._redis is not None:
                async with self._local():
                    pipe = self._redis.pipeline(transaction=False)
                    pipe.hset(self._status_hash, f"{tenant}/{site}", status)
                    pipe.hset(self._since_hash, f"{tenant}/{site}", repr(since))
                    pipe.incr(self._version_key)
                    await pipe.execute()
        return previous

    def status_since(self, tenant: str, site: str) -> float | None:
        return self._since.get((tenant, site))

    @contextlib.asynccontextmanager
    async def _local(self) -> AsyncIterator[None]:
        """Around a local change: a refresh reading meanwhile does not overwrite it."""
        self._writing += 1
        self._local_writes += 1
        try:
            yield
        finally:
            self._writing -= 1
            self._local_writes += 1

    async def _set(self, field: str, value: bytes) -> None:
        if self._redis is not None:
            await self._write(field, value)

    # -- following ---------------------------------------------------------------------
    async def refresh(self) -> None:
        if self._redis is None or (version := await self._changed()) is UNCHANGED:
            return
        writes = self._local_writes
        pipe = self._redis.pipeline(transaction=True)  # one consistent read of all three
        pipe.hgetall(self._hash)
        pipe.hgetall(self._status_hash)
        pipe.hgetall(self._since_hash)
        raw, statuses, begun = await pipe.execute()
        if self._local_writes != writes or self._writing:
            return  # this process changed something meanwhile: read again next time
        windows, silences = {}, {}
        now = time.time()
        for field, value in raw.items():
            kind, tenant, ident = field.decode().split(":", 2)
            if kind == "w":
                windows[f"{tenant}:{ident}"] = window_from_json(value)
            else:
                s = Silence(**orjson.loads(value))
                if s.ends_at > now - 86400:  # an expired silence is listed a day more
                    silences[f"{tenant}:{ident}"] = s
        status = {}
        for field, value in statuses.items():
            tenant, site = field.decode().split("/", 1)
            status[(tenant, site)] = value.decode()
        since = {}
        for field, value in begun.items():
            tenant, site = field.decode().split("/", 1)
            since[(tenant, site)] = float(value)
        self._windows, self._silences, self._status = windows, silences, status
        self._since = since
        self._index = None
        self._version = version
