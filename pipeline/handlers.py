"""Turn one decoded Kafka message into stored, emitted notifications.

I/O is limited to the publisher, the incident store and the dead-letter sink handed
in; the decision of what to publish is made from the decoded input alone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from notify_core.history.store import Dedupe, SourcePosition
from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog, audit_record
from notify_core.redis.replication import ReplicaConfirm, ReplicasBehind
from notify_core.redis.write_behind import UNREACHABLE, WriteBehind
from notify_core.retry import Backoff, until_done
from notify_core.state.incidents import IncidentState, IncidentStore, ReadAhead, epoch_ms
from notify_core.suppression.policy import Notice, suppression_fields
from notify_core.suppression.store import SuppressionStore
from notify_core.wire import events
from notify_core.wire.events import (
    TOPIC_ACTIONS,
    TOPIC_ALERTS,
    TOPIC_KPIS,
    TOPIC_SITES,
    ActionPayload,
    IncidentPayload,
    KpiMessage,
    SiteStatusPayload,
)
from pipeline.envelope import BadInput, Decoded, decode, decode_kpi
from pipeline.incident_actions import apply_action
from pipeline.kafka.batches import Incoming
from pipeline.kpi_alerts import KpiAlerts
from pipeline.listener import BatchListener, IncidentListener
from pipeline.publisher import Item, Publisher
from pipeline.runs import After, Run

log = logging.getLogger(__name__)
T = TypeVar("T")

DeadLetterSink = Callable[[bytes], Awaitable[None]]
_new_tuple = tuple.__new__
MAX_RAW_IN_DEADLETTER = 64 * 1024


def dedupe_key(topic: str, raw: bytes) -> str:
    """Stable across redelivery and producer retries of the same message."""
    return hashlib.blake2b(topic.encode() + b"\x00" + raw, digest_size=12).hexdigest()


def kpi_position(raw: bytes | None, partition: int | None, offset: int | None) -> Dedupe:
    """A KPI update's history dedupe: its Kafka position, or (not from Kafka) its content
    hash, which a sample from Kafka does not need (it is computed per sample otherwise)."""
    if partition is None or offset is None:
        return dedupe_key(TOPIC_KPIS, raw or b"")
    return _new_tuple(SourcePosition, (TOPIC_KPIS, partition, offset))  # per sample: no __new__


def deadletter_record(
    source: str,
    topic: str,
    raw: bytes | None,
    reason: str,
    partition: int | None = None,
    offset: int | None = None,
) -> bytes:
    text = (raw or b"")[:MAX_RAW_IN_DEADLETTER].decode("utf-8", errors="replace")
    return orjson.dumps(
        {
            "source": source,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "reason": reason,
            "raw": text,
            "received_at": datetime.now(UTC).isoformat(),
        }
    )


class MessageHandler:
    def __init__(
        self,
        publisher: Publisher,
        incidents: IncidentStore,
        deadletter: DeadLetterSink,
        kpi_alerts: KpiAlerts | None = None,
        listener: IncidentListener | None = None,
        coalesce_kpis: bool = False,
        max_backoff_s: float = 5.0,
        writes: WriteBehind | None = None,
        suppression: SuppressionStore | None = None,
        audit: AuditLog | None = None,
        replicas: ReplicaConfirm | None = None,
        snooze_minute_s: float = 60.0,
    ) -> None:
        """`replicas`: with NOTIFY_REDIS_MIN_REPLICAS, a message or batch counts as
        handled (its offsets may be committed) only once Redis replicas confirmed its
        writes; until then it is handled again (its dedupe keeps it once)."""
        self.replicas = replicas if replicas is not None and replicas.enabled else None
        self.minute_ms = int(snooze_minute_s * 1000)
        self.audit = audit
        self.suppression = suppression
        self.max_backoff_s = max_backoff_s
        self.writes = writes
        self.coalesce_kpis = coalesce_kpis
        self.listener = listener
        self.publisher = publisher
        self.incidents = incidents
        self.deadletter = deadletter
        self.kpi_alerts = kpi_alerts

    async def handle(
        self,
        topic: str,
        raw: bytes | None,
        timestamp_ms: int | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> str | None:
        """Process one message; returns the stored id, None if dead-lettered or a duplicate."""
        metrics.EVENTS_CONSUMED.labels(topic).inc()
        return await self._replicated(
            partial(self._handle, topic, raw, timestamp_ms, partition, offset)
        )

    async def _replicated(self, step: Callable[[], Awaitable[T]]) -> T:
        """`step()`, then (with NOTIFY_REDIS_MIN_REPLICAS) the replicas' confirmation of
        its writes; unconfirmed, the whole step is done again after a pause: a failover in
        between may have lost what the old master had, and every step is safe to repeat
        (notifications deduped by key, state writes idempotent)."""
        if self.replicas is None:
            return await step()
        backoff = Backoff("replica confirmation", log, 0.1, self.max_backoff_s)
        while True:
            result = await step()
            try:
                await self.replicas.confirm()
                return result
            except (ReplicasBehind, *UNREACHABLE) as exc:
                await backoff.failed(exc)

    async def _handle(
        self,
        topic: str,
        raw: bytes | None,
        timestamp_ms: int | None,
        partition: int | None,
        offset: int | None,
    ) -> str | None:
        try:
            key = dedupe_key(topic, raw or b"")
            if topic == TOPIC_KPIS:
                position = kpi_position(raw, partition, offset)
                return await self._kpi(decode_kpi(raw), key, timestamp_ms, partition, position)
            return await self._publish(decode(topic, raw), key, timestamp_ms)
        except Exception as exc:  # a bug must not stop the partition; record it instead
            await self._reject(topic, raw, partition, offset, exc)
            return None

    async def _until_done(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run a state step again and again while its store is unreachable (the offset
        waits, as for the history append): a Redis blip must not dead-letter alerts or
        lose their escalation. Steps are safe to repeat: state writes are idempotent,
        notifications are deduped by key, the escalation hooks take redelivery."""
        return await until_done(what, step, UNREACHABLE, log, 0.05, self.max_backoff_s)

    async def _reject(
        self,
        topic: str,
        raw: bytes | None,
        partition: int | None,
        offset: int | None,
        exc: Exception,
    ) -> None:
        """Dead-letter a message that failed: bad input says why, a bug is logged too."""
        if isinstance(exc, BadInput):
            reason = exc.reason
        else:
            log.exception("unexpected failure on %s[%s]@%s", topic, partition, offset)
            reason = f"internal error: {type(exc).__name__}: {exc}"
        await self._dead_letter(topic, raw, partition, offset, reason)

    async def _dead_letter(
        self,
        topic: str,
        raw: bytes | None,
        partition: int | None,
        offset: int | None,
        reason: str,
    ) -> None:
        metrics.DEAD_LETTERS.labels("kafka").inc()
        log.warning("dead-letter %s[%s]@%s: %s", topic, partition, offset, reason)
        await self.deadletter(deadletter_record("kafka", topic, raw, reason, partition, offset))

    async def handle_batch(self, batch: list[Incoming]) -> None:
        """Process one fetch of messages with the same outcome as `handle` on each, in order.

        Their notifications are published together (`pipeline/runs.py`): one history
        round trip for the lot, then emitted in input order, then what follows each
        (state writes, escalation timers). A KPI sample that crosses a threshold goes
        alone, after the run before it, since it raises or resolves incidents.

        With `coalesce_kpis`, the quiet samples of a site in a run become one
        `kpi_update` (latest value per KPI, timestamp and dedupe key of the newest).

        The Redis stores' writes (incident, escalation, timeline) are queued meanwhile
        and sent together: before the next notifications are stored, and here at the
        end, before the batch is acked (notify_core/redis/write_behind.py); the escalation
        timers the batch sets are written after them, also in one round trip.
        """
        counts: dict[str, int] = {}
        for topic, _raw, _ts, _partition, _offset in batch:
            counts[topic] = counts.get(topic, 0) + 1
        for topic, n in counts.items():
            metrics.EVENTS_CONSUMED.labels(topic).inc(n)
        await self._replicated(partial(self._handle_whole_batch, batch))

    async def _handle_whole_batch(self, batch: list[Incoming]) -> None:
        writes = self.writes
        decoded = await self._read_ahead(batch)
        listener = self.listener if isinstance(self.listener, BatchListener) else None
        if writes is not None:
            writes.open()
        if listener is not None:
            listener.hold_timers()
        try:
            await self._handle_batch(batch, decoded)
        finally:
            if writes is not None:
                writes.close()
                await self._until_done("state writes", writes.flush)
            if listener is not None:  # after the state they read is in Redis
                await self._until_done("escalation timers", listener.release_timers)
                listener.forget()
            if isinstance(self.incidents, ReadAhead):
                self.incidents.forget()

    async def _read_ahead(self, batch: list[Incoming]) -> list[Decoded | Exception | None]:
        """Decode the non-KPI messages, and fetch the incidents they name (and the
        escalation state of those alerted) in one call each."""
        decoded: list[Decoded | Exception | None] = []
        keys: list[tuple[str, str]] = []
        alerted: list[tuple[str, str]] = []
        for topic, raw, _ts, _partition, _offset in batch:
            if topic == TOPIC_KPIS:
                decoded.append(None)
                continue
            try:
                d = decode(topic, raw)
            except Exception as exc:  # raised again in turn, so it is dead-lettered in order
                decoded.append(exc)
                continue
            decoded.append(d)
            incident = getattr(d.payload, "incident_id", None)
            if incident:
                keys.append((d.envelope.tenant_id, incident))
                if topic == TOPIC_ALERTS:
                    alerted.append((d.envelope.tenant_id, incident))
        try:  # on failure, each message reads what it needs itself
            if keys and isinstance(self.incidents, ReadAhead):
                await self.incidents.prefetch(keys)
            if alerted and isinstance(self.listener, BatchListener):
                await self.listener.read_ahead(alerted)
        except Exception:
            log.warning("reading ahead for %d incidents failed", len(keys), exc_info=True)
        return decoded

    async def _handle_batch(
        self, batch: list[Incoming], decoded: list[Decoded | Exception | None]
    ) -> None:
        alerts = self.kpi_alerts
        run = Run(self.coalesce_kpis)
        wall = time.time()
        for (topic, raw, ts_ms, partition, offset), d in zip(batch, decoded, strict=True):
            source = (topic, raw, partition, offset)
            try:
                if topic != TOPIC_KPIS:
                    if isinstance(d, Exception):
                        raise d
                    assert d is not None
                    key = dedupe_key(topic, raw or b"")
                    item, after = await self._until_done(
                        "incident state", partial(self._prepare, d, key, ts_ms)
                    )
                    run.add(item, after, source)
                    continue
                msg = decode_kpi(raw)
                position = kpi_position(raw, partition, offset)
                if alerts is None:
                    run.add_kpi(msg, position, ts_ms, None, source, False)
                    continue
                assessment = alerts.assess(msg, wall)
                if assessment.transitions:
                    await self._flush(run)
                    key = dedupe_key(topic, raw or b"")  # the incidents' dedupe derives from it
                    await self._until_done(
                        "KPI state",
                        partial(alerts.finish, msg, assessment, key, ts_ms, partition, position),
                    )
                    continue
                persist = (
                    partial(alerts.persist, assessment, partition) if assessment.writes else None
                )
                run.add_kpi(msg, position, ts_ms, persist, source, assessment.firing)
            except Exception as exc:  # as in `handle`: record it, keep the partition going
                await self._reject(topic, raw, partition, offset, exc)
        await self._flush(run)

    async def _flush(self, run: Run) -> None:
        """Publish a run in one call, then what follows each message; a failure costs
        only the messages it concerns (dead-lettered), as in `handle`."""
        entries = run.take()
        if not entries:
            return
        merged = sum(len(e.steps) - 1 for e in entries)
        if merged:
            metrics.KPI_COALESCED.inc(merged)
        pending = [(e, item) for e in entries if (item := e.item()) is not None]
        failed: set[int] = set()
        try:
            await self.publisher.publish_many([item for _, item in pending])
        except Exception:
            log.exception("publishing %d notifications together failed; one by one", len(pending))
            for e, item in pending:
                try:
                    await self.publisher.publish(*item)
                except Exception as exc:
                    failed.add(id(e))
                    for _, src in e.steps:
                        await self._reject(*src, exc)
        for e in entries:
            if id(e) in failed:
                continue
            for after, src in e.steps:
                if after is None:
                    continue
                try:
                    await self._until_done("follow-up", after)
                except Exception as exc:
                    await self._reject(*src, exc)

    async def _kpi(
        self,
        msg: KpiMessage,
        key: str,
        ts_ms: int | None,
        partition: int | None,
        position: Dedupe,
    ) -> str | None:
        alerts = self.kpi_alerts
        if alerts is None:
            update = events.kpi_update(msg, msg.payload)
            return await self.publisher.publish(update, position, ts_ms)
        assessment = alerts.assess(msg)  # once: it moves the alert state on
        return await self._until_done(
            "KPI state", partial(alerts.finish, msg, assessment, key, ts_ms, partition, position)
        )

    async def _publish(self, d: Decoded, key: str, ts_ms: int | None) -> str | None:
        item, after = await self._until_done(
            "incident state", partial(self._prepare, d, key, ts_ms)
        )
        event_id = await self.publisher.publish(*item) if item is not None else None
        if after is not None:
            await self._until_done("incident follow-up", after)
        return event_id

    async def _prepare(
        self, d: Decoded, key: str, ts_ms: int | None
    ) -> tuple[Item | None, After | None]:
        """Apply a non-KPI message to the incident state: the notification to publish
        (None when nothing changes) and what to do once it is stored."""
        env = d.envelope
        if d.topic == TOPIC_ALERTS:
            assert isinstance(d.payload, IncidentPayload)
            inc = d.payload
            known = await self.incidents.get(env.tenant_id, inc.incident_id)
            if known is not None and known.outdates(epoch_ms(env.timestamp)):
                metrics.STALE_ALERTS.inc()
                log.info(
                    "alert %s/%s raised at %s is older than its resolution; dropped",
                    env.tenant_id,
                    inc.incident_id,
                    env.timestamp.isoformat(),
                )
                return None, None
            if known is None or known.status == "resolved" or known.severity != inc.severity:
                reopened = known is None or known.status == "resolved"
                opened = (
                    epoch_ms(env.timestamp) if reopened or known is None else known.opened_at_ms
                )
                await self.incidents.put(
                    env.tenant_id,
                    inc.incident_id,
                    IncidentState(
                        env.site_id, inc.severity, "open", title=inc.title, opened_at_ms=opened
                    ),
                )
            after: After | None = None
            if self.listener is not None:  # idempotent: also on a redelivery
                after = partial(
                    self.listener.on_alert,
                    env.tenant_id,
                    inc.incident_id,
                    env.site_id,
                    inc.severity,
                    inc.title,
                )
            event = events.incident_alert(env, inc, env.payload)
            began = known.opened_at_ms if known is not None and known.status != "resolved" else None
            opened_s = (began if began is not None else epoch_ms(env.timestamp)) / 1000
            event.update(
                self._muted(
                    Notice(
                        env.tenant_id,
                        inc.incident_id,
                        env.site_id,
                        inc.severity,
                        opened_at=opened_s,
                    )
                )
            )
            after = self._noting(env.tenant_id, inc.incident_id, event, after)
            return (event, key, ts_ms), after
        if d.topic == TOPIC_SITES:
            assert isinstance(d.payload, SiteStatusPayload)
            if self.suppression is not None and env.site_id:  # maintenance, site-down
                status = d.payload.status
                before = await self.suppression.site_status(
                    env.tenant_id, env.site_id, status, env.timestamp.timestamp()
                )
                entered = status == "maintenance" and before != "maintenance"
                left = before == "maintenance" and status != "maintenance"
                if self.audit is not None and (entered or left):
                    # a site entering or leaving maintenance from the site topic
                    action = "maintenance_start" if entered else "maintenance_end"
                    await self.audit.record(
                        audit_record(
                            env.tenant_id, None, action, f"status:{env.site_id}", "ok", "kafka"
                        )
                    )
            return (events.site_status(env, d.payload), key, ts_ms), None
        if d.topic == TOPIC_ACTIONS:
            assert isinstance(d.payload, ActionPayload)
            return await self._action(env.tenant_id, env.timestamp, d.payload, key, ts_ms)
        raise BadInput(f"no handler for topic {d.topic}")

    async def _action(
        self, tenant: str, ts: datetime, act: ActionPayload, key: str, ts_ms: int | None
    ) -> tuple[Item | None, After | None]:
        known = await self.incidents.get(tenant, act.incident_id)
        applied = apply_action(known, act, epoch_ms(ts), self.minute_ms)
        if act.via is None and self.audit is not None:  # from another system, trusted
            await self.audit.record(
                audit_record(
                    tenant,
                    act.user_id,
                    act.action,
                    act.incident_id,
                    "ok",
                    "kafka",
                    None if applied is not None else "changes nothing",
                )
            )
        if applied is None:  # idempotent: nothing changes, nothing is broadcast
            return None, None
        if applied.state is not None:
            await self.incidents.put(tenant, act.incident_id, applied.state)
        site = known.site_id if known else None
        if act.source is not None:
            applied = applied._replace(changed={**applied.changed, "source": act.source})
        event = events.incident_update(
            tenant, act.incident_id, applied.status, act.user_id, ts, site, applied.changed
        )
        after: After | None = None
        if self.listener is not None and known is not None:  # idempotent; also on redelivery
            details = {k: v for k, v in applied.changed.items() if k != "action"}
            after = partial(
                self.listener.on_action,
                tenant,
                act.incident_id,
                applied.status,
                act.user_id,
                applied.kind,
                details,
            )
        if known is not None:
            after = self._noting(tenant, act.incident_id, event, after)
        return (event, key, ts_ms), after

    def _muted(self, notice: Notice) -> dict[str, Any]:
        """The alert's `suppressed` (why it is quiet now, or None) and `caused_by`."""
        muted = self.suppression.mutes(notice) if self.suppression is not None else None
        if muted is not None:
            metrics.SUPPRESSED.labels(muted.by).inc()
        return suppression_fields(muted)

    def _noting(
        self, tenant: str, incident_id: str, event: dict[str, Any], after: After | None
    ) -> After:
        """`after`, preceded by recording the stored event's id as the incident's latest
        (`last_event_id` in the incident list; the event has its id once published)."""

        async def note() -> None:
            event_id = event.get("id")
            if event_id:
                state = await self.incidents.get(tenant, incident_id)
                if state is not None and state.last_event_id != event_id:
                    await self.incidents.put(
                        tenant, incident_id, replace(state, last_event_id=event_id)
                    )
            if after is not None:
                await after()

        return note


def system_notice_event(raw: bytes) -> dict[str, Any]:
    """Validate a Redis `system_notifications` message into a notification."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"message must be a JSON object, got {type(data).__name__}")
    try:
        notice = events.SystemNotice.model_validate(data)
    except ValidationError as exc:
        raise BadInput(events.describe_error(exc)) from None
    return events.system_notification(notice)
