"""Turn one decoded Kafka message into stored, emitted notifications.

I/O is limited to the publisher, the incident store and the dead-letter sink handed
in; the decision of what to publish is made from the decoded input alone.
"""

from __future__ import annotations

import hashlib
import logging
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
    Envelope,
    IncidentPayload,
    KpiPayload,
    SiteStatusPayload,
)
from notify_core.incidents import IncidentState, IncidentStore
from pipeline.envelope import BadInput, Decoded, decode
from pipeline.kpi_alerts import Assessment, KpiAlerts
from pipeline.listener import IncidentListener
from pipeline.publisher import Publisher

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
        try:
            decoded = decode(topic, raw)
            key = dedupe_key(topic, raw or b"")
            return await self._publish(decoded, key, timestamp_ms, partition)
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
        """Process one fetch of messages, in order: each as `handle` would, unless
        `coalesce_kpis` is on.

        Then a KPI message whose evaluation changed no alert state is not published on its
        own: it joins its site's coalesced `kpi_update` (latest value per KPI, timestamp
        and dedupe key of the newest message), published at the end of the batch or
        before anything else of that site. Threshold transitions, incidents and every
        other event are published one by one, exactly as `handle` would.
        """
        if not self.coalesce_kpis or self.kpi_alerts is None:
            for item in batch:
                await self.handle(*item)
            return
        alerts = self.kpi_alerts
        quiet: dict[tuple[str, str], _Coalesced] = {}
        for topic, raw, ts_ms, partition, offset in batch:
            if topic != TOPIC_KPIS:
                await self._flush_quiet(quiet)
                await self.handle(topic, raw, ts_ms, partition, offset)
                continue
            metrics.EVENTS_CONSUMED.labels(topic).inc()
            try:
                d = decode(topic, raw)
                assert isinstance(d.payload, KpiPayload)
                env, key = d.envelope, dedupe_key(topic, raw or b"")
                assessment = alerts.assess(env, d.payload)
                site = (env.tenant_id, env.site_id or "")
                if assessment.transitions:
                    await self._flush_quiet(quiet, site)
                    await alerts.finish(env, d.payload, assessment, key, ts_ms, partition)
                    continue
                group = quiet.get(site)
                if group is None:
                    group = quiet[site] = _Coalesced(env)
                group.add(env, d.payload, assessment, key, ts_ms, partition)
            except Exception as exc:  # as in `handle`: record it, keep the partition going
                await self._reject(topic, raw, partition, offset, exc)
        await self._flush_quiet(quiet)

    async def _flush_quiet(
        self, quiet: dict[tuple[str, str], _Coalesced], site: tuple[str, str] | None = None
    ) -> None:
        """Publish the coalesced KPI updates (of one site, or all), then write state."""
        for k in [site] if site is not None else list(quiet):
            group = quiet.pop(k, None)
            if group is None:
                continue
            kpis = KpiPayload.model_construct(values=group.values)
            if group.merged > 1:
                metrics.KPI_COALESCED.inc(group.merged - 1)
            await self.publisher.publish(events.kpi_update(group.env, kpis), group.key, group.ts)
            assert self.kpi_alerts is not None
            for env, assessment, key, partition in group.done:
                await self.kpi_alerts.conclude(env, assessment, key, partition)

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
        if d.topic == TOPIC_KPIS:
            assert isinstance(d.payload, KpiPayload)
            if self.kpi_alerts is not None:
                return await self.kpi_alerts.handle(env, d.payload, key, ts_ms, partition)
            return await self.publisher.publish(events.kpi_update(env, d.payload), key, ts_ms)
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


class _Coalesced:
    """Quiet KPI samples of one site within a batch: the latest value of each KPI."""

    def __init__(self, env: Envelope) -> None:
        self.env = env
        self.values: dict[str, float] = {}
        self.key = ""
        self.ts: int | None = None
        self.merged = 0
        self.done: list[tuple[Envelope, Assessment, str, int | None]] = []

    def add(
        self,
        env: Envelope,
        kpis: KpiPayload,
        assessment: Assessment,
        key: str,
        ts_ms: int | None,
        partition: int | None,
    ) -> None:
        self.env, self.key, self.ts = env, key, ts_ms
        self.values.update(kpis.values)
        self.merged += 1
        self.done.append((env, assessment, key, partition))


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
