"""Every Redis key name the daemon uses, and the hash tag that places it on a Redis Cluster.

On a Redis Cluster, the keys one script call or one transaction touches must hash to one
slot. So every key of a tenant carries that tenant as its hash tag (`{acme}`): its
history stream, the stream's meta hash, its dedupe keys and partition positions, its
incidents, their index, timelines, KPI snapshots, connection counts and viewers all live
in one slot, and a script may touch any of them together. State shared by all tenants
(suppression, revocations, the escalation job store, the receivers' outbox, the leader
lock) has one fixed tag per concept. A single Redis ignores the braces, so the layout is
the same on both, and this module is the one place that knows it.

A key's tag is what `slot_tag` returns, the same rule Redis applies: the text between
the first `{` and the next `}`, when not empty; otherwise the whole key.
"""

from __future__ import annotations


def slot_tag(key: str) -> str:
    """The part of `key` Redis Cluster hashes to pick its slot."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


class RedisKeys:
    """Key names under one prefix (`NOTIFY_REDIS_PREFIX`, which holds no braces)."""

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"{prefix!r} must not contain {{ or }} (the keys' hash tags use them)")
        self.prefix = prefix

    def tenant(self, kind: str, tenant: str, *rest: str) -> str:
        """`<prefix><kind>:{<tenant>}[:rest...]`: one slot per tenant."""
        tail = "".join(f":{part}" for part in rest)
        return f"{self.prefix}{kind}:{{{tenant}}}{tail}"

    def shared(self, concept: str, *rest: str) -> str:
        """`<prefix>{<concept>}[:rest...]`: one slot per cross-tenant concept."""
        tail = "".join(f":{part}" for part in rest)
        return f"{self.prefix}{{{concept}}}{tail}"

    def replication_marker(self, shard: int | None = None) -> str:
        """What `notify_core.redis.replication` writes before it WAITs: one key, or on a Redis
        Cluster one per primary (`shard` picks a hash tag that lands on it)."""
        if shard is None:
            return self.shared("replication", "marker")
        return self.shared(f"replication-{shard}", "marker")

    def action_link(self, token: str) -> str:
        """One key per action link (notify_core/action_links.py): its own slot."""
        return f"{self.prefix}action-link:{token}"

    # -- the history (notify_core/history/store.py) ---------------------------------------
    def stream(self, tenant: str) -> str:
        return self.tenant("history", tenant)

    def stream_meta(self, tenant: str) -> str:
        return self.tenant("history", tenant, "meta")

    def dedupe(self, tenant: str, dedupe: str) -> str:
        return self.tenant("dedupe", tenant, dedupe)

    def positions(self, tenant: str) -> str:
        """The last source position stored per partition, for this tenant's events."""
        return self.tenant("positions", tenant)

    # -- per-tenant state -------------------------------------------------------------
    def thing(self, kind: str, tenant: str, ident: str) -> str:
        """One hash per thing (incident, escalation state, KPI snapshot of a site)."""
        return self.tenant(kind, tenant, ident)

    def incident_index(self, tenant: str, resolved: bool) -> str:
        return self.tenant("incidents", tenant, "resolved" if resolved else "active")

    def timeline(self, tenant: str, incident_id: str) -> str:
        return self.tenant("timeline", tenant, incident_id)

    def audit(self, tenant: str) -> str:
        return self.tenant("audit", tenant)

    def user_connections(self, tenant: str, user: str) -> str:
        return self.tenant("conns", tenant, "user", user)

    def tenant_connections(self, tenant: str) -> str:
        return self.tenant("conns", tenant, "tenant")

    def presence(self, tenant: str, *rest: str) -> str:
        return self.tenant("presence", tenant, *rest)

    def push_subscriptions(self, tenant: str) -> str:
        return self.tenant("push", tenant, "subscriptions")
