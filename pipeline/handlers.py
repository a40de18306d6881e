"""Turn one decoded Kafka message into stored, emitted notifications.

I/O is limited to the publisher, the incident store and the dead-letter sink handed
in; the decision of what to publish is made from the decoded input alone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from notify_core import events, metrics
from notify_core.events import (
    TOPIC_ACTIONS,
    TOPIC_ALERTS,
    TOPIC_KPIS,
    TOPIC_SITES,
    ActionPayload,
    IncidentPayload,
    KpiMessage,
    SiteStatusPayload,
)
from notify_core.incidents import IncidentState, IncidentStore
from pipeline.envelope import BadInput, Decoded, decode, decode_kpi
from pipeline.kpi_alerts import Assessment, KpiAlerts
from pipeline.listener import IncidentListener
from pipeline.publisher import Item, Publisher

log = logging.getLogger(__name__)

DeadLetterSink = Callable[[bytes], Awaitable[None]]
# (topic, raw value, Kafka timestamp ms, partition, offset)
Incoming = tuple[str, bytes | None, int | None, int | None, int | None]
MAX_RAW_IN_DEADLETTER = 64 * 1024
_STATUS = {"acknowledge": "acknowledged", "resolve": "resolved"}


def dedupe_key(topic: str, raw: bytes) -> str:
    """Stable across redelivery and producer retries of the same message."""
    return hashlib.blake2b(topic.encode() + b"\x00" + raw, digest_size=12).hexdigest()


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
    ) -> None:
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
        return await self._handle(topic, raw, timestamp_ms, partition, offset)

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
                return await self._kpi(decode_kpi(raw), key, timestamp_ms, partition)
            return await self._publish(decode(topic, raw), key, timestamp_ms, partition)
        except Exception as exc:  # a bug must not stop the partition; record it instead
            await self._reject(topic, raw, partition, offset, exc)
            return None

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

        KPI samples that change no alert state (nearly all of them) are published
        together: one history round trip for the run of them, then emitted in order.
        Anything else (a threshold transition, another topic) first publishes that run,
        then goes through alone, so the tenant history keeps the input order.

        With `coalesce_kpis`, the quiet samples of a site in such a run become one
        `kpi_update` (latest value per KPI, timestamp and dedupe key of the newest).
        """
        counts: dict[str, int] = {}
        for item in batch:
            counts[item[0]] = counts.get(item[0], 0) + 1
        for topic, n in counts.items():
            metrics.EVENTS_CONSUMED.labels(topic).inc(n)
        alerts = self.kpi_alerts
        if alerts is None:
            for item in batch:
                await self._handle(*item)
            return
        quiet = _QuietRun(self.coalesce_kpis)
        wall = time.time()
        for topic, raw, ts_ms, partition, offset in batch:
            if topic != TOPIC_KPIS:
                await self._flush_quiet(quiet)
                await self._handle(topic, raw, ts_ms, partition, offset)
                continue
            try:
                msg = decode_kpi(raw)
                key = dedupe_key(topic, raw or b"")
                assessment = alerts.assess(msg, wall)
                if assessment.transitions:
                    await self._flush_quiet(quiet)
                    await alerts.finish(msg, assessment, key, ts_ms, partition)
                    continue
                quiet.add(msg, assessment, key, (raw, ts_ms, partition, offset))
            except Exception as exc:  # as in `handle`: record it, keep the partition going
                await self._reject(topic, raw, partition, offset, exc)
        await self._flush_quiet(quiet)

    async def _flush_quiet(self, quiet: _QuietRun) -> None:
        """Publish the run of quiet KPI updates in one call, then write their state."""
        groups = quiet.take()
        if not groups:
            return
        alerts = self.kpi_alerts
        assert alerts is not None
        merged = sum(len(g.done) - 1 for g in groups)
        if merged:
            metrics.KPI_COALESCED.inc(merged)
        try:
            await self.publisher.publish_many([g.item() for g in groups])
        except Exception:
            log.exception("publishing %d KPI updates together failed; one by one", len(groups))
            for g in list(groups):
                try:
                    await self.publisher.publish(*g.item())
                except Exception as exc:
                    groups.remove(g)
                    for _, _, _, (raw, _, partition, offset) in g.done:
                        await self._reject(TOPIC_KPIS, raw, partition, offset, exc)
        for g in groups:
            for msg, assessment, key, (raw, _, partition, offset) in g.done:
                if not assessment.writes:
                    continue  # quiet: no transitions, and the table is up to date
                try:
                    await alerts.conclude(msg, assessment, key, partition)
                except Exception as exc:
                    await self._reject(TOPIC_KPIS, raw, partition, offset, exc)

    async def _kpi(
        self, msg: KpiMessage, key: str, ts_ms: int | None, partition: int | None
    ) -> str | None:
        if self.kpi_alerts is not None:
            return await self.kpi_alerts.handle(msg, key, ts_ms, partition)
        return await self.publisher.publish(events.kpi_update(msg, msg.payload), key, ts_ms)

    async def _publish(
        self, d: Decoded, key: str, ts_ms: int | None, partition: int | None = None
    ) -> str | None:
        env = d.envelope
        if d.topic == TOPIC_ALERTS:
            assert isinstance(d.payload, IncidentPayload)
            inc = d.payload
            known = await self.incidents.get(env.tenant_id, inc.incident_id)
            if known is None or known.status == "resolved" or known.severity != inc.severity:
                await self.incidents.put(
                    env.tenant_id,
                    inc.incident_id,
                    IncidentState(env.site_id, inc.severity, "open"),
                )
            event_id = await self.publisher.publish(events.incident_alert(env, inc), key, ts_ms)
            if self.listener is not None:  # idempotent: also on a redelivery
                await self.listener.on_alert(
                    env.tenant_id, inc.incident_id, env.site_id, inc.severity, inc.title
                )
            return event_id
        if d.topic == TOPIC_SITES:
            assert isinstance(d.payload, SiteStatusPayload)
            return await self.publisher.publish(events.site_status(env, d.payload), key, ts_ms)
        if d.topic == TOPIC_ACTIONS:
            assert isinstance(d.payload, ActionPayload)
            return await self._action(env.tenant_id, env.timestamp, d.payload, key, ts_ms)
        raise BadInput(f"no handler for topic {d.topic}")

    async def _action(
        self, tenant: str, ts: datetime, act: ActionPayload, key: str, ts_ms: int | None
    ) -> str | None:
        known = await self.incidents.get(tenant, act.incident_id)
        status = _STATUS[act.action]
        event_id = None
        if known is None or (known.status != "resolved" and known.status != status):
            if known is not None:
                await self.incidents.put(
                    tenant, act.incident_id, IncidentState(known.site_id, known.severity, status)
                )
            site = known.site_id if known else None
            event = events.incident_update(tenant, act.incident_id, status, act.user_id, ts, site)
            event_id = await self.publisher.publish(event, key, ts_ms)
        # else idempotent: nothing changes, nothing is broadcast
        if self.listener is not None and known is not None:  # idempotent; also on redelivery
            await self.listener.on_action(tenant, act.incident_id, status, act.user_id)
        return event_id


# raw value, Kafka timestamp (ms), partition, offset: what a dead letter needs
_Source = tuple[bytes | None, int | None, int | None, int | None]


class _Group:
    """One `kpi_update` to publish: a quiet sample, or several of one site coalesced."""

    __slots__ = ("done", "msg", "values")

    def __init__(self, msg: KpiMessage) -> None:
        self.msg = msg
        self.values: dict[str, float] = {}
        self.done: list[tuple[KpiMessage, Assessment, str, _Source]] = []

    def add(self, msg: KpiMessage, assessment: Assessment, key: str, source: _Source) -> None:
        self.msg = msg
        if not self.done:
            self.values = msg.payload  # copied by kpi_update; by the next line if merged
        else:
            if len(self.done) == 1:
                self.values = dict(self.values)
            self.values.update(msg.payload)
        self.done.append((msg, assessment, key, source))

    def item(self) -> Item:
        _, _, key, source = self.done[-1]
        return events.kpi_update(self.msg, self.values), key, source[1]


class _QuietRun:
    """Quiet KPI samples waiting to be published together, in arrival order."""

    def __init__(self, coalesce: bool) -> None:
        self.coalesce = coalesce
        self.groups: list[_Group] = []
        self.by_site: dict[tuple[str, str], _Group] = {}

    def add(self, msg: KpiMessage, assessment: Assessment, key: str, source: _Source) -> None:
        group = self.by_site.get((msg.tenant_id, msg.site_id)) if self.coalesce else None
        if group is None:
            group = _Group(msg)
            self.groups.append(group)
            if self.coalesce:
                self.by_site[(msg.tenant_id, msg.site_id)] = group
        group.add(msg, assessment, key, source)

    def take(self) -> list[_Group]:
        groups, self.groups = self.groups, []
        self.by_site.clear()
        return groups


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
