"""Durable timers with APScheduler 3 (`AsyncIOScheduler`).

One `date` job per incident, id `esc:<tenant>:<incident>`, function referenced as
`escalation.jobs:fire` with plain-id arguments, so it survives a restart in the Redis
job store. `misfire_grace_time=None`: a job that came due while the daemon was down
runs right after start, never skipped; `coalesce=True`: once, never twice (and the
step claim in the store makes the delivery itself exactly-once).

The Redis job store is synchronous: every call to it runs on one job-store thread, in
order (escalation/apscheduler_adapter.py moves APScheduler's own reads there too), so a
slow or paused Redis stalls no socket. A job is written in one (an upsert,
not APScheduler's check-then-write of two to four); the timers a pipeline batch sets are
written together (`apply`: one round trip for the batch, the latest time per incident), and
a burst of new jobs is followed by one scan of the store, not one each.

Every process may add jobs; only the leader's scheduler runs them (the others stay
paused), and the leader wakes up every second to see jobs added by others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.util import datetime_to_utc_timestamp
from redis import Redis as SyncRedis
from redis import exceptions as redis_exceptions

from escalation.apscheduler_adapter import OffLoopScheduler
from notify_core.obs import metrics
from notify_core.redis.keys import RedisKeys
from notify_core.retry import until_done_blocking

log = logging.getLogger(__name__)

JOB_FUNC = "escalation.jobs:fire"
REDIS_DOWN = (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError, OSError)


class UpsertRedisJobStore(RedisJobStore):
    """`add_job` replaces a job of the same id in one round trip. Every job here is added
    with `replace_existing=True`, so APScheduler's existence check (and, on a hit, the
    second check and write of `update_job`) would only cost round trips."""

    _batch: Any = None  # a pipeline while `batched`: writes wait in it

    def __init__(self, client: SyncRedis, **kwargs: Any) -> None:
        """On `client` (a single server's, a cluster's or Sentinel's master's), not on a
        client of APScheduler's own making from connection arguments."""
        super().__init__(**kwargs)
        self.redis = client

    def shutdown(self) -> None:
        self.redis.close()  # APScheduler's reaches for `connection_pool`, which a cluster lacks

    def add_job(self, job: Job) -> None:
        state = pickle.dumps(job.__getstate__(), self.pickle_protocol)
        with self._writes() as pipe:
            pipe.hset(self.jobs_key, job.id, state)
            if job.next_run_time:
                pipe.zadd(
                    self.run_times_key, {job.id: datetime_to_utc_timestamp(job.next_run_time)}
                )
            else:
                pipe.zrem(self.run_times_key, job.id)

    def remove_job(self, job_id: str) -> None:
        if self._batch is None:
            super().remove_job(job_id)
            return
        # batched: removing a job that does not exist is not reported (no round trip to ask)
        self._batch.hdel(self.jobs_key, job_id)
        self._batch.zrem(self.run_times_key, job_id)

    @contextlib.contextmanager
    def _writes(self) -> Iterator[Any]:
        if self._batch is not None:
            yield self._batch
            return
        with self.redis.pipeline() as pipe:
            yield pipe
            pipe.execute()

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Writes (add, replace, remove) wait and go in one transaction at the end; none
        is sent if the block raises."""
        with self.redis.pipeline() as pipe:
            self._batch = pipe
            try:
                yield
            finally:
                self._batch = None
            pipe.execute()


class TimerScheduler:
    def __init__(self, redis: SyncRedis | None, prefix: str) -> None:
        """`redis`: the job store's synchronous client (notify_core/redis/factory.py), or
        None to keep jobs in memory."""
        # what its jobs carry to find their engine (escalation/jobs.py): the Redis key
        # prefix, or for jobs in memory (they die with the process) this scheduler alone
        self.deployment = prefix if redis else f"memory-{uuid.uuid4().hex[:8]}"
        jobstore: Any
        if redis is not None:
            keys = RedisKeys(prefix)
            jobstore = UpsertRedisJobStore(
                redis,
                # one slot: a change writes both in one transaction
                jobs_key=keys.shared("apscheduler", "jobs"),
                run_times_key=keys.shared("apscheduler", "run_times"),
            )
        else:
            jobstore = MemoryJobStore()
        self._store = jobstore
        # every job-store call runs here, in order, never on the event loop
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="escalation-jobstore")
        self._closing = False
        self.scheduler = OffLoopScheduler(
            self._io,
            jobstores={"default": jobstore},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._waker: asyncio.Task[None] | None = None
        self.active = False

    # -- writes: on the job-store thread ---------------------------------------------
    def schedule(self, tenant: str, incident_id: str, at: float) -> Future[None]:
        """Set the timer (written in the background, in order, retried while the store is
        unreachable); `await ensure(...)` or `drain()` to know it is stored."""
        return self._write(self._schedule_now, tenant, incident_id, at)

    def cancel(self, tenant: str, incident_id: str) -> Future[None]:
        return self._write(self._cancel_now, tenant, incident_id)

    async def ensure(self, tenant: str, incident_id: str, at: float) -> None:
        """Set the timer and return once it is in the store."""
        await asyncio.wrap_future(self.schedule(tenant, incident_id, at))

    async def apply(self, timers: Mapping[tuple[str, str], float | None]) -> None:
        """Set (a time) or cancel (None) the timer of each (tenant, incident), in one round
        trip to the Redis job store. Raises what the Redis client raises if it cannot
        reach Redis; nothing is written then, and applying the same again is safe."""
        await asyncio.wrap_future(self._io.submit(self._apply_now, dict(timers)))

    async def drain(self) -> None:
        """Return once every write asked for so far is done."""
        await asyncio.wrap_future(self._io.submit(lambda: None))

    def _write(self, fn: Any, *args: Any) -> Future[None]:
        return self._io.submit(
            until_done_blocking,
            "escalation timer write",
            lambda: fn(*args),
            REDIS_DOWN,
            log,
            lambda: self._closing,
        )

    def _schedule_now(self, tenant: str, incident_id: str, at: float) -> None:
        self.scheduler.add_job(
            JOB_FUNC,
            "date",
            run_date=datetime.fromtimestamp(at, UTC),
            args=[tenant, incident_id, self.deployment],
            id=f"esc:{tenant}:{incident_id}",
            replace_existing=True,
        )

    def _cancel_now(self, tenant: str, incident_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(f"esc:{tenant}:{incident_id}")

    def _apply_now(self, timers: Mapping[tuple[str, str], float | None]) -> None:
        store = self._store
        with (
            store.batched() if isinstance(store, UpsertRedisJobStore) else contextlib.nullcontext()
        ):
            for (tenant, incident_id), at in timers.items():
                if at is None:
                    self._cancel_now(tenant, incident_id)
                else:
                    self._schedule_now(tenant, incident_id, at)

    async def start(self) -> None:
        self.scheduler.start(paused=True)

    def activate(self) -> None:
        """This process is the leader: run due jobs."""
        if not self.active:
            self.active = True
            self.scheduler.resume()
            metrics.ESCALATION_LEADER.set(1)
            self._waker = asyncio.create_task(self._wake(), name="escalation-waker")
            log.info("escalation scheduler active (leader)")

    def deactivate(self) -> None:
        if self.active:
            self.active = False
            self.scheduler.pause()
            metrics.ESCALATION_LEADER.set(0)
            if self._waker:
                self._waker.cancel()
            log.info("escalation scheduler paused (standby)")

    async def _wake(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.scheduler.wakeup()
            except Exception:
                log.exception("scheduler wakeup failed")

    async def stop(self) -> None:
        self.deactivate()
        if self._waker:
            with contextlib.suppress(asyncio.CancelledError):
                await self._waker
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), 5.0)  # what was asked is written
        self._closing = True
        self.scheduler.shutdown(wait=False)
        await asyncio.to_thread(self._io.shutdown, wait=True, cancel_futures=True)
