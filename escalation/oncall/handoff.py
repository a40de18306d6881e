"""Handoff notices: when who is on call in a schedule changes, the incoming people hear,
through their contact methods, what they inherit (the open, acknowledged and snoozed
incidents of what the schedule covers).

Every process that pages runs the watch; the last set of users per schedule is kept in
Redis (`oncall-handoff:{tenant}`), and a change is claimed with a compare-and-set, so each
handoff is told once however many watch. The first look at a schedule only records it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
from redis.asyncio import Redis

from escalation.oncall.directory import OnCallDirectory
from escalation.oncall.schedule import Schedule, Schedules
from notify_core.lifecycle import Background
from notify_core.redis.keys import RedisKeys
from notify_core.sites_config import Inventory
from notify_core.state.incidents import IncidentStore

log = logging.getLogger(__name__)

Tell = Callable[[str, str, str, str], Awaitable[int]]  # (tenant, user, subject, text) -> sent

_CAS_LUA = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class HandoffWatch:
    def __init__(
        self,
        schedules: Callable[[], Schedules],
        directory: OnCallDirectory,
        incidents: IncidentStore,
        sites: Callable[[], Inventory],
        tell: Tell,
        redis: Redis | None,
        prefix: str = "",
        interval_s: float = 30.0,
    ) -> None:
        self._schedules, self._directory, self._incidents = schedules, directory, incidents
        self._sites, self._tell, self._redis = sites, tell, redis
        self._keys = RedisKeys(prefix)
        self._memory: dict[tuple[str, str], str] = {}
        self._cas = redis.register_script(_CAS_LUA) if redis is not None else None
        self._background = Background.every("on-call handoff", interval_s, self._tick_now)

    async def start(self) -> None:
        await self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def _tick_now(self) -> None:
        await self.tick(datetime.now(UTC))

    async def tick(self, now: datetime) -> int:
        """Check every schedule once; the number of handoffs told."""
        told = 0
        for (tenant, _), schedule in sorted(self._schedules().items()):
            users = sorted(await self._directory.users(tenant, schedule, now))
            new = orjson.dumps(users).decode()
            old = await self._last(tenant, schedule.name)
            if old == new:
                continue
            if not await self._swap(tenant, schedule.name, old, new):
                continue  # another process told this one
            if old is None:
                continue  # the first look: nothing handed over
            incoming = [u for u in users if u not in orjson.loads(old)]
            if incoming:
                await self._notify(tenant, schedule, incoming)
                told += 1
        return told

    async def _last(self, tenant: str, name: str) -> str | None:
        if self._redis is None:
            return self._memory.get((tenant, name))
        raw = await self._redis.hget(self._keys.tenant("oncall-handoff", tenant), name)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def _swap(self, tenant: str, name: str, old: str | None, new: str) -> bool:
        if self._redis is None:
            if self._memory.get((tenant, name)) != old:
                return False
            self._memory[(tenant, name)] = new
            return True
        assert self._cas is not None
        key = self._keys.tenant("oncall-handoff", tenant)
        return bool(await self._cas(keys=[key], args=[name, old or "", new]))

    async def _notify(self, tenant: str, schedule: Schedule, incoming: list[str]) -> None:
        covers = schedule.covers
        sites = self._sites()
        now_ms = int(time.time() * 1000)
        held = []
        for incident_id, state in await self._incidents.list(tenant, False):
            current = state.current(now_ms)
            if covers is not None and (covers.sites or covers.regions):
                region = sites.region(tenant, current.site_id)
                if current.site_id not in covers.sites and region not in covers.regions:
                    continue
            held.append(f"{incident_id} [{current.status}, {current.severity}] {current.title}")
        subject = f"You are on call now: {schedule.name}"
        lines = "\n".join(held[:50]) or "nothing open"
        text = f"{subject}. {len(held)} incident(s) open, acknowledged or snoozed:\n{lines}\n"
        for user in incoming:
            sent = await self._tell(tenant, user, subject, text)
            log.info(
                "handoff of %s/%s told to %s (%d method(s))", tenant, schedule.name, user, sent
            )
