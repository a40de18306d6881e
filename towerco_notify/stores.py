"""The stores of one process, chosen in one place: every one on Redis when
`NOTIFY_REDIS_URL` is set (the history, incident state, KPI snapshots, timelines, the
report archive, escalation state, the receivers' outbox, push subscriptions and the audit
copy; the state stores' writes batched by one `WriteBehind`, and replica confirmation when
`NOTIFY_REDIS_MIN_REPLICAS` asks for it), else every one in memory (`towerco-notify run`
on its own). Building opens no connection: the Redis client connects when the root's
`redis` part starts."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from escalation.receivers.outbox import MemoryOutbox, Outbox, RedisOutbox
from escalation.receivers.push import MemoryPushStore, PushStore, RedisPushStore
from escalation.store import EscalationStore, MemoryEscalationStore, RedisEscalationStore
from notify_core.history.store import History, MemoryHistory, RedisHistory
from notify_core.obs.audit import AuditCopy, MemoryAuditCopy, RedisAuditCopy
from notify_core.redis import factory as redis_factory
from notify_core.redis.replication import ReplicaConfirm
from notify_core.redis.write_behind import WriteBehind
from notify_core.reports.archive import ArchiveStore, MemoryArchive, RedisArchive
from notify_core.settings import Settings
from notify_core.state.incidents import IncidentStore, MemoryIncidentStore, RedisIncidentStore
from notify_core.state.snapshots import MemorySnapshots, RedisSnapshots, SnapshotStore
from notify_core.state.timeline import MemoryTimeline, RedisTimeline, Timeline


@dataclass(frozen=True)
class Stores:
    history: History
    incidents: IncidentStore
    snapshots: SnapshotStore
    timeline: Timeline
    archive: ArchiveStore
    escalation: EscalationStore
    outbox: Outbox
    push: PushStore
    audit_copy: AuditCopy
    redis: Redis | None = None  # None: the memory engine
    writes: WriteBehind | None = None  # the Redis state stores' batched writes
    replicas: ReplicaConfirm | None = None  # NOTIFY_REDIS_MIN_REPLICAS


def build_stores(s: Settings) -> Stores:
    max_age = s.history_max_age_s or None
    if not s.redis_url:
        return Stores(
            MemoryHistory(s.history_maxlen, max_age),
            MemoryIncidentStore(),
            MemorySnapshots(),
            MemoryTimeline(),
            MemoryArchive(),
            MemoryEscalationStore(),
            MemoryOutbox(),
            MemoryPushStore(),
            MemoryAuditCopy(),
        )
    redis = redis_factory.connect(s.redis_url, s.redis_cluster)
    writes = WriteBehind(redis)  # one queue: a pipeline batch sends its writes together
    replicas = (
        ReplicaConfirm(redis, s.redis_prefix, s.redis_min_replicas, s.redis_replica_timeout_ms)
        if s.redis_min_replicas
        else None
    )
    return Stores(
        RedisHistory(redis, s.redis_prefix, s.history_maxlen, max_age),
        RedisIncidentStore(redis, s.redis_prefix, writes),
        RedisSnapshots(redis, s.redis_prefix, writes),
        RedisTimeline(redis, s.redis_prefix, writes),
        RedisArchive(redis, s.redis_prefix),
        RedisEscalationStore(redis, s.redis_prefix, writes),
        RedisOutbox(redis, s.redis_prefix),
        RedisPushStore(redis, s.redis_prefix),
        RedisAuditCopy(redis, s.redis_prefix),
        redis,
        writes,
        replicas,
    )
