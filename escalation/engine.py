"""The escalation engine: fetch state, ask the pure policy what is due, deliver, reschedule.

Handed a publisher (store-then-emit) by the composition root; imports neither the
pipeline nor the Socket.IO server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from escalation.oncall.directory import OnCallDirectory, Paged
from escalation.policy import EscalationState, Policy, Step, advance, select_policy
from escalation.receivers.delivery import Deliveries
from escalation.scheduler import TimerScheduler
from escalation.store import EscalationStore
from notify_core.obs import metrics
from notify_core.obs.log_fields import about
from notify_core.redis.write_behind import UNREACHABLE
from notify_core.sites_config import Inventory
from notify_core.state.timeline import Timeline
from notify_core.suppression.policy import Muted, Notice
from notify_core.wire import events

log = logging.getLogger(__name__)

RETRY_AFTER_CRASH_S = 5.0
MUTE_RECHECK_S = 5.0  # a status-based suppression (maintenance, site down) has no end time
MAX_CONCURRENT_TICKS = 32

Publish = Callable[[dict[str, Any], str | None], Awaitable[str | None]]


def _epoch_s(iso_text: str) -> float:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


class EscalationEngine:
    def __init__(
        self,
        policies: Callable[[], list[Policy]],
        store: EscalationStore,
        timeline: Timeline,
        publish: Publish,
        scheduler: TimerScheduler,
        deliveries: Deliveries | None = None,
        clock: Callable[[], float] = time.time,
        muter: Callable[[Notice], Muted | None] | None = None,
        oncall: OnCallDirectory | None = None,
        sites: Callable[[], Inventory] | None = None,
    ) -> None:
        """`policies()`: the policies in force (escalation.yaml: new incidents pick from
        them; a running chain keeps its policy, by name, while it exists); `oncall`: who
        is on call, asked when a level naming `schedule:` or `site_oncall:` fires;
        `sites()`: the inventory in force (sites.yaml): regions for policies that match
        them, and the sites behind a parent (`affected_sites`)."""
        self.oncall = oncall
        self.sites = sites or Inventory
        self.muter = muter
        self.policies = policies
        self.store = store
        self.timeline = timeline
        self.publish = publish
        self.scheduler = scheduler
        self.deliveries = deliveries
        self.clock = clock
        self._ticks = asyncio.Semaphore(MAX_CONCURRENT_TICKS)
        # escalation state of the incidents a pipeline batch is about to alert (read_ahead)
        self._ahead: dict[tuple[str, str], EscalationState | None] = {}
        # timers set by a pipeline batch, held until its state is written (hold_timers)
        self._held: dict[tuple[str, str], float | None] | None = None

    def _policy(self, name: str) -> Policy | None:
        return next((p for p in self.policies() if p.name == name), None)

    # -- incident events (from the pipeline) -------------------------------------
    async def read_ahead(self, keys: list[tuple[str, str]]) -> None:
        """Read the escalation state of the incidents a batch alerts, in one call. Each entry
        serves one `on_alert`; any write of this engine drops it (so a resolve earlier in
        the batch is seen), and the timer job always reads the store itself."""
        missing = [key for key in dict.fromkeys(keys) if key not in self._ahead]
        if missing:
            self._ahead.update(await self.store.get_many(missing))

    def forget(self) -> None:
        self._ahead.clear()

    def hold_timers(self) -> None:
        """Until `release_timers`, the timers that alerts and actions set are held, the
        latest per incident. A timer written before the escalation state it reads could
        fire (in the leader, any process) and find no state; and held, a batch's timers
        cost one round trip to the job store instead of one per critical alert."""
        if self._held is None:
            self._held = {}

    async def release_timers(self) -> None:
        """Write the held timers (call it after the batch's state writes are sent). If the
        job store cannot be reached this raises and keeps them held, to be released again;
        any other failure (a bug) drops them, logged and counted, so it cannot hold the
        partition (the incidents' next alert or action sets their timers again)."""
        held, self._held = self._held, None
        if not held:
            return
        try:
            await self.scheduler.apply(held)
        except UNREACHABLE:
            self._held = held
            raise
        except Exception:
            metrics.STATE_WRITE_ERRORS.inc(len(held))
            log.exception("%d escalation timer(s) could not be written; dropped", len(held))

    def _set_timer(self, tenant: str, incident_id: str, at: float | None) -> Future[None] | None:
        """Held during a pipeline batch (written with it), else written in the background:
        the future says when it is stored (a tick awaits it)."""
        if self._held is not None:
            self._held[(tenant, incident_id)] = at
            return None
        if at is None:
            return self.scheduler.cancel(tenant, incident_id)
        return self.scheduler.schedule(tenant, incident_id, at)

    async def _put(self, tenant: str, incident_id: str, state: EscalationState) -> None:
        self._ahead.pop((tenant, incident_id), None)
        await self.store.put(tenant, incident_id, state)

    async def on_alert(
        self, tenant: str, incident_id: str, site: str | None, severity: str, title: str
    ) -> None:
        key = (tenant, incident_id)
        if key in self._ahead:
            existing = self._ahead.pop(key)
        else:
            existing = await self.store.get(tenant, incident_id)
        if existing is not None and existing.status != "resolved":
            if existing.group is not None:
                return  # a member of a storm's chain: the chain has the timer
            # raised again (or redelivered after a crash): make sure its timer exists
            policy = self._policy(existing.policy)
            if policy is not None:
                self._reschedule(tenant, incident_id, policy, existing, self.clock())
            return
        await self.timeline.add(
            tenant, incident_id, "raised", severity=severity, site_id=site, title=title
        )
        region = self.sites().region(tenant, site)
        policy = select_policy(self.policies(), tenant, site, severity, region)
        if policy is None:
            return
        now = self.clock()
        group_id = policy.group_of(site)
        if group_id is not None:
            await self._join(tenant, incident_id, group_id, policy, site, severity, title, now)
            return
        state = EscalationState(policy.name, "open", now, site=site, title=title, severity=severity)
        await self._put(tenant, incident_id, state)
        await self.timeline.add(tenant, incident_id, "escalation_started", policy=policy.name)
        self._reschedule(tenant, incident_id, policy, state, now)

    async def _join(
        self,
        tenant: str,
        incident_id: str,
        group_id: str,
        policy: Policy,
        site: str | None,
        severity: str,
        title: str,
        now: float,
    ) -> None:
        """A storm: the incident joins its site's open chain, or starts one whose clock
        begins after `group_wait` (the storm gathers before the first page)."""
        group = await self.store.get(tenant, group_id)
        if group is None or group.status != "open":
            group = EscalationState(
                policy.name,
                "open",
                now + policy.group_wait,
                site=site,
                title=title,
                severity=severity,
                members=[incident_id],
            )
            await self.timeline.add(tenant, incident_id, "escalation_started", policy=policy.name)
        elif incident_id not in group.members:
            group.members.append(incident_id)
        await self._put(tenant, group_id, group)
        member = EscalationState(
            policy.name, "grouped", now, site=site, title=title, severity=severity, group=group_id
        )
        await self._put(tenant, incident_id, member)
        await self.timeline.add(tenant, incident_id, "grouped", members=len(group.members))
        self._reschedule(tenant, group_id, policy, group, now)

    async def _member_done(self, tenant: str, member: EscalationState, status: str) -> None:
        """A member acknowledged or resolved: when every member of its chain is, the chain
        stops (acknowledging every incident of the group stops it)."""
        assert member.group is not None
        group = await self.store.get(tenant, member.group)
        if group is None or group.status != "open":
            return
        states = await self.store.get_many([(tenant, m) for m in group.members])
        done = [
            s for s in states.values() if s is not None and s.status in ("acknowledged", "resolved")
        ]
        if len(done) < len(group.members):
            return
        everything_resolved = all(s.status == "resolved" for s in done)
        group.status = "resolved" if everything_resolved else "acknowledged"
        group.acked_at = self.clock()
        await self._put(tenant, member.group, group)
        self._set_timer(tenant, member.group, None)

    async def on_action(
        self,
        tenant: str,
        incident_id: str,
        status: str,
        by: str,
        kind: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self.timeline.add(tenant, incident_id, kind or status, by=by, **(details or {}))
        state = await self.store.get(tenant, incident_id)
        if state is None or state.status == "resolved":
            return
        now = self.clock()
        from_pagerduty = (details or {}).get("source") == "pagerduty"
        if status in ("acknowledged", "resolved") and state.fired and not from_pagerduty:
            await self._tell_receivers(tenant, incident_id, state, status)
        if state.group is not None:
            if status in ("acknowledged", "resolved"):
                state.status = status
                await self._put(tenant, incident_id, state)
                await self._member_done(tenant, state, status)
            return
        if status == "resolved":
            state.status = "resolved"
            await self._put(tenant, incident_id, state)
            self._set_timer(tenant, incident_id, None)
            return
        if status == "snoozed" and details and details.get("until"):
            until = _epoch_s(details["until"])
            state.status, state.snoozed_until = "snoozed", until
            await self._put(tenant, incident_id, state)
            self._set_timer(tenant, incident_id, until)  # re-arms then (durable, like any)
            return
        if kind == "unsnoozed" and state.status == "snoozed":
            # back now: an unacknowledged incident escalates again from level 1
            if status == "open":
                state = replace(
                    state, status="open", epoch=now, acked_at=None, fired=set(), snoozed_until=None
                )
            else:
                state.status, state.snoozed_until = "acknowledged", None
            await self._put(tenant, incident_id, state)
            policy = self._policy(state.policy)
            if policy is not None:
                self._reschedule(tenant, incident_id, policy, state, now)
            return
        if status == "acknowledged" and state.status in ("open", "snoozed"):
            state.status, state.acked_at, state.snoozed_until = "acknowledged", now, None
            await self._put(tenant, incident_id, state)
            policy = self._policy(state.policy)
            if policy is not None and policy.ack_timeout is not None:
                self._set_timer(tenant, incident_id, now + policy.ack_timeout)
            else:
                self._set_timer(tenant, incident_id, None)

    # -- the timer job -----------------------------------------------------------
    async def tick(self, tenant: str, incident_id: str) -> None:
        """The job body. Bounded concurrency (a burst of due jobs must not exhaust the Redis
        pool); a failure reschedules the job soon instead of losing the chain."""
        async with self._ticks:
            try:
                await self._tick(tenant, incident_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "escalation tick %s/%s failed; retrying in %.0fs",
                    tenant,
                    incident_id,
                    RETRY_AFTER_CRASH_S,
                    extra=about(tenant, incident_id),
                )
                self.scheduler.schedule(tenant, incident_id, self.clock() + RETRY_AFTER_CRASH_S)

    async def _tick(self, tenant: str, incident_id: str) -> None:
        state = await self.store.get(tenant, incident_id)
        if state is None or state.group is not None:
            return  # a storm's member pages through its chain
        policy = self._policy(state.policy)
        if policy is None:
            log.warning(
                "policy %s of %s/%s no longer exists; escalation stops",
                state.policy,
                tenant,
                incident_id,
                extra=about(tenant, incident_id),
            )
            return
        now = self.clock()
        new, due, next_at = advance(policy, state, now)
        if new.status == "open" and await self._held_back(tenant, incident_id, policy, new, now):
            return
        if due:
            # APScheduler removed this job before running it: persist a retry first, so a
            # crash in the middle of delivering runs this tick again instead of losing it.
            await self.scheduler.ensure(tenant, incident_id, now + RETRY_AFTER_CRASH_S)
        if new.epoch != state.epoch:
            await self._put(tenant, incident_id, new)
            if state.status == "snoozed":
                await self.timeline.add(tenant, incident_id, "snooze_ended", rearmed=True)
            else:
                await self.timeline.add(
                    tenant,
                    incident_id,
                    "retriggered",
                    reason="acknowledged but not resolved within ack_timeout",
                )
        for step in due:
            await self._deliver(tenant, incident_id, policy, new, step, now)
        if next_at is not None:
            await self.scheduler.ensure(tenant, incident_id, next_at)  # stored before done
        elif due:
            await asyncio.wrap_future(self.scheduler.cancel(tenant, incident_id))

    async def _held_back(
        self, tenant: str, incident_id: str, policy: Policy, state: EscalationState, now: float
    ) -> bool:
        """Suppression (maintenance, silence, inhibition: the one muter the pipeline uses
        too): True when no level may fire now; the tick is taken again when the reason
        ends (or, for a status, every MUTE_RECHECK_S). When it has ended, the chain starts
        over from level 1 and the incident's viewers hear `suppressed: null`."""
        if self.muter is None:
            return False
        source = "threshold" if incident_id.startswith("thr-") else None
        notice = Notice(tenant, incident_id, state.site, state.severity, None, source, state.epoch)
        muted = self.muter(notice)
        if muted is not None:
            metrics.SUPPRESSED.labels(muted.by).inc()
            if not state.muted:
                state.muted = True
                await self._put(tenant, incident_id, state)
                await self.timeline.add(tenant, incident_id, "suppressed", **muted.view())
            until = muted.until if muted.until is not None else now + MUTE_RECHECK_S
            await self.scheduler.ensure(tenant, incident_id, min(until, now + MUTE_RECHECK_S))
            return True
        if not state.muted:
            return False
        fresh = replace(state, status="open", epoch=now, fired=set(), muted=False)
        await self._put(tenant, incident_id, fresh)
        await self.timeline.add(tenant, incident_id, "suppression_ended", rearmed=True)
        update = events.incident_update(
            tenant,
            incident_id,
            "open",
            "suppression",
            datetime.fromtimestamp(now, UTC),
            state.site,
            {"suppressed": None},
        )
        await self.publish(update, f"unmuted/{incident_id}/{int(now * 1000)}")
        pending = self._reschedule(tenant, incident_id, policy, fresh, now)
        if pending is not None:
            await asyncio.wrap_future(pending)
        return True

    def _reschedule(
        self, tenant: str, incident_id: str, policy: Policy, state: EscalationState, now: float
    ) -> Future[None] | None:
        _, due, next_at = advance(policy, state, now)
        at = now if due else next_at
        return self._set_timer(tenant, incident_id, at) if at is not None else None

    async def _deliver(
        self,
        tenant: str,
        incident_id: str,
        policy: Policy,
        state: EscalationState,
        step: Step,
        now: float,
    ) -> None:
        level = policy.levels[step.level]
        paged = await self._on_call(tenant, level.targets, state.site, now)
        event = events.escalation(
            tenant,
            incident_id,
            datetime.fromtimestamp(now, UTC),
            step.level + 1,
            step.cycle + 1,
            policy.name,
            list(level.targets),
            state.title,
            state.site,
            state.members,
            [p.view() for p in paged],
        )
        if state.site is not None and (behind := self.sites().dependents(tenant, state.site)):
            event["affected_sites"] = behind
        targets = event["targets"]
        # Publish first: its dedupe key makes a re-run (after a crash, or by a racing
        # process) store and emit nothing new. Then the receivers' jobs, idempotent per
        # step, into the durable outbox: a crash after this point still delivers them
        # once. Then claim: the one process that wins records the step.
        await self.publish(event, f"esc/{incident_id}/{step.key}")
        hidden: list[str] = []
        if self.deliveries is not None:
            hidden = await self.deliveries.page(policy, step.level, step.key, event, state.severity)
        if not await self.store.claim(tenant, incident_id, step.key):
            return
        for user in hidden:
            await self.timeline.add(
                tenant,
                incident_id,
                "not_paged",
                user_id=user,
                level=step.level + 1,
                reason=f"may not see site {state.site or '-'}",
            )
        metrics.ESCALATIONS.inc()
        metrics.ESCALATION_DELAY.observe(max(0.0, now - step.due))
        await self.timeline.add(
            tenant,
            incident_id,
            "notified",
            level=step.level + 1,
            cycle=step.cycle + 1,
            targets=targets,
            delay_s=round(now - step.due, 3),
        )
        for nobody in [p for p in paged if not p.users]:
            await self._nobody_on_call(tenant, incident_id, step, nobody, now)
        if self.deliveries is not None:
            self.deliveries.wake()

    async def _on_call(
        self, tenant: str, targets: Any, site: str | None, now: float
    ) -> list[Paged]:
        """Who the level's `schedule:` / `site_oncall:` targets reach now."""
        names = [t.schedule for t in targets if t.schedule]
        site_oncall = any(t.site_oncall for t in targets)
        if not names and not site_oncall:
            return []
        if self.oncall is None:
            return [Paged(n, ()) for n in names] + ([Paged(None, (), True)] if site_oncall else [])
        at = datetime.fromtimestamp(now, UTC)
        region = self.sites().region(tenant, site)
        return await self.oncall.page(tenant, names, site_oncall, site, at, region)

    async def _nobody_on_call(
        self, tenant: str, incident_id: str, step: Step, nobody: Paged, now: float
    ) -> None:
        """Loudly: a timeline entry, and a notice to the tenant's admins; the chain
        goes on to its next level."""
        where = nobody.schedule or "the schedules covering the site (none does)"
        log.warning("%s: level %d: nobody on call in %s", incident_id, step.level + 1, where)
        metrics.NOBODY_ON_CALL.inc()
        await self.timeline.add(
            tenant,
            incident_id,
            "nobody_on_call",
            message="nobody on call",
            level=step.level + 1,
            schedule=nobody.schedule,
        )
        notice = events.SystemNotice(
            tenant_id=tenant,
            title="Nobody on call",
            message=f"Incident {incident_id} reached level {step.level + 1}: nobody is on "
            f"call in {where}.",
            priority="error",
            timestamp=datetime.fromtimestamp(now, UTC),
        )
        event = events.system_notification(notice, ["admin"], incident_id)
        await self.publish(event, f"nobody/{incident_id}/{step.key}/{nobody.schedule}")

    async def _tell_receivers(
        self, tenant: str, incident_id: str, state: EscalationState, status: str
    ) -> None:
        """PagerDuty hears of the acknowledgement or resolution of what it was paged for."""
        policy = self._policy(state.policy)
        if self.deliveries is None or policy is None:
            return
        fired = {int(key.rsplit(":", 1)[1]) for key in state.fired}
        fired = {i for i in fired if i < len(policy.levels)}
        run = "final" if status == "resolved" else str(int(state.epoch * 1000))
        action = "resolve" if status == "resolved" else "acknowledge"
        await self.deliveries.change(policy, tenant, incident_id, action, fired, run)

    async def stop(self) -> None:
        """Nothing of the engine runs in the background (deliveries are the worker's)."""
