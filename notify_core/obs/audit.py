"""The audit trail of sensitive actions: one JSON record each on `towerco.notify.audit`.

`{at, tenant_id, actor, action, target, result: "ok"|"refused", reason?, source, remote_addr?}`.
Kafka is the durable store: a record is produced (and acknowledged by the broker) before
the action is answered, so an answered action is never missing from the trail. A capped
copy per tenant (Redis stream, or memory in the embedded mode) serves
`GET /api/v1/audit` without scanning the topic; `towerco-notify audit` reads the topic.
Records of refused handshakes carry `tenant_id: null` (the token could not be trusted).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from notify_core.clock import iso_s
from notify_core.history.store import decode_entry
from notify_core.obs import metrics
from notify_core.redis.keys import RedisKeys
from notify_core.wire.events import TOPIC_AUDIT
from notify_core.wire.ids import format_id, parse_id

log = logging.getLogger(__name__)

Source = Literal[
    "socket",
    "ws",
    "sse",
    "http",
    "kafka",
    "config",
    "cli",
    "link",
    "slack",
    "pagerduty",
    "sms",
    "voice",
]
KEPT_PER_TENANT = 10_000
NO_TENANT = "-"  # where the tenant-less records (refused handshakes) are kept


def audit_record(
    tenant_id: str | None,
    actor: str | None,
    action: str,
    target: str | None,
    result: Literal["ok", "refused"],
    source: Source,
    reason: str | None = None,
    remote_addr: str | None = None,
    at: float | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "at": iso_s(time.time() if at is None else at),
        "tenant_id": tenant_id,
        "actor": actor,
        "action": action,
        "target": target,
        "result": result,
        "source": source,
    }
    if reason:
        record["reason"] = reason
    if remote_addr:
        record["remote_addr"] = remote_addr
    return record


class AuditReader(Protocol):
    async def read(
        self, tenant: str, since: str | None, limit: int, action: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Records of `tenant` after `since` (oldest first) and the cursor to go on from."""


class AuditCopy(AuditReader, Protocol):
    async def keep(self, record: dict[str, Any]) -> None: ...


class MemoryAuditCopy:
    """The embedded mode's copy: a capped ring per tenant, ids minted like stream ids."""

    def __init__(self) -> None:
        self._rings: dict[str, deque[dict[str, Any]]] = {}
        self._seq = 0

    async def keep(self, record: dict[str, Any]) -> None:
        self._seq += 1
        tenant = record["tenant_id"] or NO_TENANT
        ring = self._rings.setdefault(tenant, deque(maxlen=KEPT_PER_TENANT))
        ring.append({**record, "id": format_id((int(time.time() * 1000), self._seq))})

    async def read(
        self, tenant: str, since: str | None, limit: int, action: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        after = parse_id(since) if since else (0, 0)
        out, cursor = [], since
        for record in self._rings.get(tenant, ()):
            if parse_id(record["id"]) <= after:
                continue
            cursor = record["id"]
            if action is None or record["action"] == action:
                out.append(record)
                if len(out) == limit:
                    break
        return out, cursor


class RedisAuditCopy:
    """A capped stream per tenant, `{prefix}audit:{{tenant}}`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)

    def _key(self, tenant: str | None) -> str:
        return self._keys.audit(tenant or NO_TENANT)

    async def keep(self, record: dict[str, Any]) -> None:
        await self._redis.xadd(
            self._key(record["tenant_id"]),
            {"e": orjson.dumps(record)},
            maxlen=KEPT_PER_TENANT,
            approximate=True,
        )

    async def read(
        self, tenant: str, since: str | None, limit: int, action: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        out: list[dict[str, Any]] = []
        cursor = since
        start = "-" if since is None else f"({format_id(parse_id(since))}"
        while len(out) < limit:
            rows: Any = await self._redis.xrange(self._key(tenant), min=start, count=500)
            for row_id, fields in rows:
                record = decode_entry(row_id, fields)
                cursor = record["id"]
                if action is None or record["action"] == action:
                    out.append(record)
                    if len(out) == limit:
                        break
            if len(rows) < 500:
                break
            start = f"({cursor}"
        return out, cursor


class AuditLog:
    """Writes each record to Kafka (awaited), then to the readable copy."""

    def __init__(self, bootstrap: Callable[[], str], copy: AuditCopy, acks: Any = "all") -> None:
        self._bootstrap = bootstrap
        self.copy = copy
        self._acks = acks
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap(), acks=self._acks, linger_ms=0
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def record(self, record: dict[str, Any]) -> None:
        """Durable before it returns; raises if Kafka refuses (the action then fails)."""
        assert self._producer is not None, "AuditLog not started"
        key = (record["tenant_id"] or NO_TENANT).encode()
        await self._producer.send_and_wait(TOPIC_AUDIT, orjson.dumps(record), key=key)
        metrics.AUDIT_RECORDS.labels(record["action"], record["result"]).inc()
        try:
            await self.copy.keep(record)
        except Exception:  # the topic has it; only the API's copy lags
            log.warning("audit copy not kept (the topic has the record)", exc_info=True)

    async def record_quietly(self, record: dict[str, Any]) -> None:
        """For records that must not fail what they describe (a refused handshake)."""
        try:
            await self.record(record)
        except Exception:
            metrics.AUDIT_FAILURES.inc()
            log.error("audit record lost: %s %s", record["action"], record["result"])
