"""From a page to the receivers: jobs into the outbox, and the worker that sends them.

`Deliveries` is what the escalation engine calls: `page()` before it claims a level (the
jobs are in the outbox before anything can be lost) and `change()` when an incident that
paged PagerDuty is acknowledged or resolved. `DeliveryWorker` takes due jobs under a
lease and sends each in its own task, at most `per_type` at once per receiver type (a
slow or dead receiver delays no other), retrying with capped exponential backoff up to
`max_attempts`; every attempt is a timeline entry and a
`notify_receiver_deliveries_total{type,result}` sample. A job that gives up tells the
tenant's admins (a `system_notification` to the admin role room).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from escalation.people.contacts import PeopleStore
from escalation.people.reach import page_plan, person_jobs
from escalation.policy import Policy
from escalation.receivers.outbox import Job, Outbox
from escalation.receivers.senders import Sender, Sent
from escalation.targets import Target
from notify_core.obs import metrics
from notify_core.obs.log_fields import about
from notify_core.retry import wait_s
from notify_core.state.timeline import Timeline
from notify_core.wire import events

log = logging.getLogger(__name__)

Publish = Callable[[dict[str, Any], str | None], Awaitable[str | None]]
TAKE = 64  # due jobs leased at a time; a full batch is followed at once by the next


class Deliveries:
    def __init__(
        self,
        outbox: Outbox,
        wake: Callable[[], None] | None = None,
        people: PeopleStore | None = None,
    ) -> None:
        """`people`: the users' contact methods and rules; a page that names users
        (`target_users`) reaches each of them through their own rules."""
        self.outbox = outbox
        self._wake = wake or (lambda: None)
        self.people = people

    async def page(
        self,
        policy: Policy,
        level: int,
        step_key: str,
        event: dict[str, Any],
        severity: str,
    ) -> list[str]:
        """Jobs for the receiver targets of `policy.levels[level]` and for the users the
        page names (idempotent per step); the users not paged because their profile may
        not see the incident's site."""
        tenant, incident = event["tenant_id"], event["incident_id"]
        jobs = [
            Job(
                id=f"{tenant}/{incident}/{step_key}/{i}",
                type=kind,
                tenant_id=tenant,
                incident_id=incident,
                target=target.model_dump(exclude_none=True),
                event=event,
                severity=severity,
                templates=dict(policy.templates),
            )
            for i, target in enumerate(policy.levels[level].targets)
            if (kind := target.receiver) is not None
        ]
        await self.outbox.put(jobs)
        users = list(event.get("target_users") or ())
        if self.people is None or not users:
            return []
        site = event.get("site_id")
        allowed: list[str] = []
        hidden: list[str] = []
        for user in users:  # the one visibility rule, on the profile of their last token
            sites = await self.people.sites_of(tenant, user)
            (allowed if sites is None or site in sites else hidden).append(user)
        found = await page_plan(self.people, tenant, allowed, severity == "critical")
        by_delay: dict[float, list[Job]] = {}
        for job, after in person_jobs(found, event, severity, step_key, dict(policy.templates)):
            by_delay.setdefault(after, []).append(job)
        now = time.time()
        for after, due in sorted(by_delay.items()):
            await self.outbox.put(due, now + after if after else None)
        return hidden

    async def change(
        self,
        policy: Policy,
        tenant: str,
        incident_id: str,
        action: str,
        fired_levels: set[int],
        run: str,
    ) -> None:
        """PagerDuty `acknowledge` / `resolve` for the targets of the levels that paged
        (`run`: the chain run acknowledged, so a re-trigger's later ack is sent again)."""
        seen: set[str] = set()
        jobs = []
        for li in sorted(fired_levels):
            for target in policy.levels[li].targets:
                if target.pagerduty is None:
                    continue
                ref = ":".join(target.pagerduty.source())
                if ref in seen:
                    continue
                seen.add(ref)
                jobs.append(
                    Job(
                        id=f"{tenant}/{incident_id}/pd-{action}/{run}/{ref}",
                        type="pagerduty",
                        tenant_id=tenant,
                        incident_id=incident_id,
                        target=target.model_dump(exclude_none=True),
                        event={"tenant_id": tenant, "incident_id": incident_id},
                        action=action,
                    )
                )
        await self.outbox.put(jobs)
        if jobs:
            self.wake()

    def wake(self) -> None:
        self._wake()


class DeliveryWorker:
    def __init__(
        self,
        outbox: Outbox,
        senders: Mapping[str, Sender],
        timeline: Timeline,
        publish: Publish,
        *,
        max_attempts: int = 8,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        lease_s: float = 120.0,
        poll_s: float = 0.5,
        per_type: int = 4,
    ) -> None:
        self.outbox, self.senders, self.timeline, self.publish = outbox, senders, timeline, publish
        self.max_attempts, self.base_backoff_s = max_attempts, base_backoff_s
        self.max_backoff_s, self.lease_s, self.poll_s = max_backoff_s, lease_s, poll_s
        self._limits = {kind: asyncio.Semaphore(per_type) for kind in senders}
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()
        self.process = f"{socket.gethostname()}:{os.getpid()}"  # who sent, in the timeline

    def wake(self) -> None:
        self._woken.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="receiver deliveries")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)

    async def _loop(self) -> None:
        while True:
            jobs: list[Job] = []
            try:
                jobs = await self.outbox.take(TAKE, self.lease_s)
                for job in jobs:
                    if job.id in self._busy:
                        continue  # still being sent here (a lease shorter than a send)
                    self._busy.add(job.id)
                    task = asyncio.create_task(self._run(job))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("receiver outbox unreachable; trying again")
            if len(jobs) == TAKE and len(self._running) < TAKE * 4:
                await asyncio.sleep(0)  # a full batch: more are due, take them now
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.poll_s)
            self._woken.clear()

    async def _run(self, job: Job) -> None:
        try:
            sender = self.senders.get(job.type)
            async with self._limits.get(job.type) or contextlib.nullcontext():
                if sender is None:
                    sent = Sent(False, None, f"no {job.type} receiver configured", retry=False)
                else:
                    sent = await sender.send(job)
            await self._settle(job, sent)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "delivery %s failed unexpectedly; it will be retried",
                job.id,
                extra=about(job.tenant_id, job.incident_id),
            )
        finally:
            self._busy.discard(job.id)

    async def _settle(self, job: Job, sent: Sent) -> None:
        job.attempts += 1
        final = sent.ok or not sent.retry or job.attempts >= self.max_attempts
        result = "ok" if sent.ok else ("gave_up" if final else "failed")
        told = str(sent.info.get("result") or "")
        if told.startswith("dropped") or told == "throttled":
            result = told.split(":")[0]  # not a failure: nobody to tell, nothing to retry
        kind = str(job.target.get("kind")) if job.type == "person" else job.type
        metrics.RECEIVER_DELIVERIES.labels(kind, result).inc()
        await self._record(job, sent, result)
        if result in ("dropped", "throttled"):
            await self.outbox.done(job.id)
            return
        if not final:
            at = time.time() + wait_s(job.attempts, self.base_backoff_s, self.max_backoff_s)
            await self.outbox.retry(job, at)
            return
        await self.outbox.done(job.id)
        if not sent.ok:
            log.warning(
                "%s delivery for %s/%s gave up after %d attempt(s): %s",
                job.type,
                job.tenant_id,
                job.incident_id,
                job.attempts,
                sent.error,
                extra=about(job.tenant_id, job.incident_id),
            )
            await self._tell_admins(job, sent)

    async def _record(self, job: Job, sent: Sent, result: str) -> None:
        if job.type == "person":  # a person reached by one of their contact methods
            reached: dict[str, Any] = {
                "type": job.target.get("kind"),
                "user_id": job.target.get("user"),
                "result": sent.info.get("result") or result,
                "attempt": job.attempts,
                "level": job.event.get("level"),
                "process": self.process,
            }
            if sent.error and result not in ("dropped", "throttled"):
                reached["error"] = sent.error[:300]
            await self.timeline.add(job.tenant_id, job.incident_id, "delivery", **reached)
            return
        if job.type == "webhook":  # its own entry, as before the outbox: url, attempts
            await self.timeline.add(
                job.tenant_id,
                job.incident_id,
                "webhook",
                level=job.event.get("level"),
                ok=sent.ok,
                status=sent.status,
                error=sent.error,
                **sent.info,
            )
            return
        details: dict[str, Any] = {
            "receiver": job.type,
            "target": Target.model_validate(job.target).describe(),
            "attempt": job.attempts,
            "process": self.process,
            "ok": sent.ok,
            "status": sent.status,
            **sent.info,
        }
        if job.type == "pagerduty":
            details["action"] = job.action
        if "level" in job.event:
            details["level"] = job.event["level"]
        if sent.error:
            details["error"] = sent.error[:300]
        await self.timeline.add(job.tenant_id, job.incident_id, "delivery", **details)

    async def _tell_admins(self, job: Job, sent: Sent) -> None:
        notice = events.SystemNotice(
            tenant_id=job.tenant_id,
            title=f"{job.type} receiver failing",
            message=(
                f"A {job.type} page for incident {job.incident_id} could not be delivered "
                f"after {job.attempts} attempt(s): {sent.error or 'failed'}"
            )[:2000],
            priority="error",
            timestamp=datetime.now(UTC),
        )
        event = events.system_notification(notice, ["admin"], job.incident_id)
        await self.publish(event, f"receiver-down/{job.id}")
