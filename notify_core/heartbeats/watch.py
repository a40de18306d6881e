"""The heartbeat watch: once a second, every configured heartbeat is put through the pure
`decide`; a quiet source opens incident `heartbeat:<name>` and its next ping resolves it,
both as records on Kafka (an alert, a `resolve` action by `heartbeat`), so they take the
path of any other incident: suppression, escalation, history, the dashboard.

Runs in every process that serves HTTP (they hold the producer); HSETNX/HDEL claims in
the store make each transition produced once however many run. A record that cannot be
produced gives its claim back, and the next tick tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson

from notify_core.clock import iso
from notify_core.heartbeats.config import Heartbeat, Heartbeats
from notify_core.heartbeats.policy import Beat, HeartbeatStore, decide
from notify_core.lifecycle import Background
from notify_core.obs import metrics
from notify_core.wire.events import TOPIC_ACTIONS, TOPIC_ALERTS

log = logging.getLogger(__name__)

RecordSink = Callable[[list[tuple[str, bytes, bytes]]], Awaitable[None]]
LastSample = Callable[[str, str | None], Awaitable[int | None]]
HEARTBEAT_USER = "heartbeat"


CONCURRENCY = 50  # checks at once: well inside a Redis connection pool shared with the rest


def _iso(ms: int) -> str:
    return iso(datetime.fromtimestamp(ms / 1000, UTC), "milliseconds")


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"


def opened_record(hb: Heartbeat, beat: Beat, now_ms: int) -> tuple[str, bytes, bytes]:
    last = _iso(beat.last_ping_ms or now_ms)
    payload = {
        "incident_id": hb.incident_id,
        "title": f"No heartbeat from {hb.name}",
        "description": f"no ping for {_duration(hb.timeout)} (last at {last})",
        "severity": hb.severity,
    }
    envelope: dict[str, object] = {
        "tenant_id": hb.tenant,
        "timestamp": _iso(now_ms),
        "payload": payload,
    }
    if hb.site_id:
        envelope["site_id"] = hb.site_id
    key = f"{hb.tenant}/{hb.incident_id}".encode()
    return TOPIC_ALERTS, key, orjson.dumps(envelope)


def resolved_record(hb: Heartbeat, now_ms: int) -> tuple[str, bytes, bytes]:
    payload = {"incident_id": hb.incident_id, "action": "resolve", "user_id": HEARTBEAT_USER}
    envelope = {"tenant_id": hb.tenant, "timestamp": _iso(now_ms), "payload": payload}
    key = f"{hb.tenant}/{hb.incident_id}".encode()
    return TOPIC_ACTIONS, key, orjson.dumps(envelope)


class HeartbeatWatch:
    def __init__(
        self,
        heartbeats: Callable[[], Heartbeats],
        store: HeartbeatStore,
        last_sample: LastSample,
        sink: RecordSink,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`heartbeats()`: those in force (heartbeats.yaml, swapped on reload);
        `last_sample(tenant, site)`: when the last KPI sample was stored."""
        self._heartbeats = heartbeats
        self._store = store
        self._last_sample = last_sample
        self._sink = sink
        self._clock = clock
        # Redis or the broker away: logged, tried again next tick
        self._background = Background.every("heartbeat watch", interval_s, self.tick)

    async def start(self) -> None:
        await self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def tick(self) -> None:
        """Every heartbeat, a tenant's together: `CONCURRENCY` checks at a time (a hub
        outage silences thousands at once: their incidents go out in batches, not one
        broker round trip after the other). A check that fails is logged and tried again
        next tick; the others go on."""
        configured = self._heartbeats()
        for tenant in sorted({t for t, _ in configured}):
            beats = await self._store.beats(tenant)
            now_ms = int(self._clock() * 1000)
            checks = []
            for hb in configured.of_tenant(tenant):
                beat = beats.get(hb.name, Beat(None, None))
                # an http heartbeat with nothing to change costs no await (the steady state)
                if hb.kind == "kpi" or decide(hb, beat, now_ms) is not None:
                    checks.append((hb, beat))
            for at in range(0, len(checks), CONCURRENCY):
                part = checks[at : at + CONCURRENCY]
                results = await asyncio.gather(
                    *(self._check(hb, beat) for hb, beat in part), return_exceptions=True
                )
                for (hb, _), result in zip(part, results, strict=True):
                    if isinstance(result, asyncio.CancelledError):
                        raise result
                    if isinstance(result, BaseException):
                        log.warning("heartbeat %s/%s: check failed: %r", tenant, hb.name, result)

    async def _check(self, hb: Heartbeat, beat: Beat) -> None:
        if hb.kind == "kpi":
            seen = await self._last_sample(hb.tenant, hb.site_id)
            if seen is not None and (beat.last_ping_ms is None or seen > beat.last_ping_ms):
                await self._store.ping(hb.tenant, hb.name, seen)
                beat = Beat(seen, beat.opened_ms)
        now_ms = int(self._clock() * 1000)
        change = decide(hb, beat, now_ms)
        if change == "open" and await self._store.claim_open(hb.tenant, hb.name, now_ms):
            try:
                await self._sink([opened_record(hb, beat, now_ms)])
            except Exception:
                await self._store.release_open(hb.tenant, hb.name)
                raise
            metrics.HEARTBEAT_CHANGES.labels("opened").inc()
            log.warning("heartbeat %s/%s: quiet for %ss", hb.tenant, hb.name, hb.timeout)
        elif change == "resolve" and await self._store.claim_resolve(hb.tenant, hb.name):
            try:
                await self._sink([resolved_record(hb, now_ms)])
            except Exception:
                await self._store.claim_open(hb.tenant, hb.name, beat.opened_ms or now_ms)
                raise
            metrics.HEARTBEAT_CHANGES.labels("resolved").inc()
