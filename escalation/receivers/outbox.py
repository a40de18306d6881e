"""The durable outbox of receiver deliveries: written before a level is claimed, taken
under a lease by any process's `DeliveryWorker`, removed when delivered.

A job's id is stable per (incident, step, target), and a delivered id is remembered for
`DONE_TTL_S`: the re-run of a page after a crash (the escalation tick runs again) puts
the same ids, which are no-ops. A worker that dies mid-delivery leaves its jobs leased;
they are due again when the lease runs out (at-least-once).

Redis: one hash of job bodies, one sorted set of due times, one of delivered ids, all
under the `{outbox}` hash tag (one slot on a Redis Cluster); every key a script touches
is in its KEYS.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from notify_core.redis.keys import RedisKeys

DONE_TTL_S = 7 * 86400.0


@dataclass
class Job:
    """One delivery to one receiver target."""

    id: str
    type: str  # email | slack | teams | pagerduty | webpush | webhook
    tenant_id: str
    incident_id: str
    target: dict[str, Any]  # the Target, as in escalation.yaml
    event: dict[str, Any]  # the page (`escalation` event) or the incident change
    severity: str = ""
    action: str = "trigger"  # pagerduty: trigger | acknowledge | resolve
    templates: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    state: dict[str, Any] = field(default_factory=dict)  # e.g. web push: pending endpoints

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes | str) -> Job:
        return cls(**orjson.loads(raw))


class Outbox(Protocol):
    async def put(self, jobs: list[Job], at: float | None = None) -> None:
        """Add jobs due at `at` (now); an id already pending or delivered is a no-op."""

    async def take(self, limit: int, lease_s: float, now: float | None = None) -> list[Job]:
        """Up to `limit` due jobs, each leased for `lease_s` (due again if not settled)."""

    async def done(self, job_id: str) -> None: ...

    async def retry(self, job: Job, at: float) -> None:
        """Keep `job` (its new attempts and state) and make it due at `at`."""

    async def pending(self) -> int: ...


class MemoryOutbox:
    """The embedded mode's outbox: one process, nothing survives a restart."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._due: dict[str, float] = {}
        self._done: dict[str, float] = {}

    async def put(self, jobs: list[Job], at: float | None = None) -> None:
        at = time.time() if at is None else at
        for job in jobs:
            if job.id not in self._jobs and job.id not in self._done:
                self._jobs[job.id], self._due[job.id] = job, at

    async def take(self, limit: int, lease_s: float, now: float | None = None) -> list[Job]:
        now = time.time() if now is None else now
        ids = sorted((at, i) for i, at in self._due.items() if at <= now)[:limit]
        for _, job_id in ids:
            self._due[job_id] = now + lease_s
        return [Job(**asdict(self._jobs[i])) for _, i in ids]

    async def done(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        self._due.pop(job_id, None)
        now = time.time()
        self._done[job_id] = now
        if len(self._done) > 100_000:
            self._done = {k: v for k, v in self._done.items() if v > now - DONE_TTL_S}

    async def retry(self, job: Job, at: float) -> None:
        if job.id in self._jobs:
            self._jobs[job.id], self._due[job.id] = job, at

    async def pending(self) -> int:
        return len(self._jobs)


_PUT = """
for i = 1, #ARGV - 1, 2 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 0 and not redis.call('ZSCORE', KEYS[3], id) then
    redis.call('HSET', KEYS[1], id, ARGV[i + 1])
    redis.call('ZADD', KEYS[2], ARGV[#ARGV], id)
  end
end
return 0
"""
_TAKE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  local body = redis.call('HGET', KEYS[1], id)
  if body then
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    table.insert(out, body)
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return out
"""
_DONE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2] - ARGV[3])
return 0
"""
_RETRY = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 0
"""


class RedisOutbox:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        keys = RedisKeys(prefix)
        self._keys = [keys.shared("outbox", part) for part in ("jobs", "due", "done")]
        self._put = redis.register_script(_PUT)
        self._take = redis.register_script(_TAKE)
        self._done = redis.register_script(_DONE)
        self._retry = redis.register_script(_RETRY)

    async def put(self, jobs: list[Job], at: float | None = None) -> None:
        if not jobs:
            return
        args: list[Any] = []
        for job in jobs:
            args += [job.id, job.dumps()]
        await self._put(keys=self._keys, args=[*args, time.time() if at is None else at])

    async def take(self, limit: int, lease_s: float, now: float | None = None) -> list[Job]:
        now = time.time() if now is None else now
        raw = await self._take(keys=self._keys[:2], args=[now, now + lease_s, limit])
        return [Job.loads(body) for body in raw]

    async def done(self, job_id: str) -> None:
        await self._done(keys=self._keys, args=[job_id, time.time(), DONE_TTL_S])

    async def retry(self, job: Job, at: float) -> None:
        await self._retry(keys=self._keys[:2], args=[job.id, job.dumps(), at])

    async def pending(self) -> int:
        return int(await self._redis.hlen(self._keys[0]))
