"""`towerco-notify revoke` and `towerco-notify audit`: the security tools an operator uses
at a shell, without a token or a running server.

`revoke` writes to the same Redis revocation list the servers follow (they cut the live
connections within seconds) and, when Kafka is given, leaves an audit record (`source:
cli`). `audit` reads `towerco.notify.audit` back from Kafka with a throwaway consumer
(no group: it never commits nor disturbs the daemon).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from typing import Any

import orjson

from notify_core.redis import factory as redis_factory

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parsers(sub: Any) -> None:
    rev = sub.add_parser(
        "revoke",
        help="revoke a token (by jti) or a user's tokens, on every server",
        description="Add to the revocation list in Redis that every server follows: live "
        "connections of the token are cut within 5 s, new ones refused.",
    )
    redis_factory.add_arguments(rev, "the Redis every server follows")
    rev.add_argument(
        "--kafka-bootstrap",
        default=os.environ.get("NOTIFY_KAFKA_BOOTSTRAP"),
        help="when given, the revocation is also an audit record",
    )
    rev.add_argument("--tenant", required=True)
    who = rev.add_mutually_exclusive_group(required=True)
    who.add_argument("--jti")
    who.add_argument("--user")
    rev.add_argument(
        "--issued-before", type=float, default=None, help="unix s (default: now; with --user)"
    )
    aud = sub.add_parser(
        "audit",
        help="print the audit trail from Kafka",
        description="Read towerco.notify.audit (JSON lines on stdout), newest last.",
    )
    aud.add_argument("--kafka-bootstrap", default=os.environ.get("NOTIFY_KAFKA_BOOTSTRAP"))
    aud.add_argument("--since", default="1h", help="how far back: 30m, 1h, 2d (default 1h)")
    aud.add_argument("--tenant", default=None)
    aud.add_argument("--action", default=None)


def revoke(args: argparse.Namespace) -> int:
    from notify_core.obs.audit import AuditLog, MemoryAuditCopy, audit_record
    from notify_core.revocations import DEFAULT_KEEP_S, Revocation, Revocations
    from notify_core.wire.events import is_ident

    if not args.redis_url:
        print(
            "towerco-notify revoke: NOTIFY_REDIS_URL / --redis-url must be set (the embedded"
            " mode keeps revocations in its own memory: use POST /api/v1/admin/revocations)",
            file=sys.stderr,
        )
        return 2
    if not is_ident(args.tenant) or (args.user is not None and not is_ident(args.user)):
        print("towerco-notify revoke: --tenant and --user must be ids", file=sys.stderr)
        return 2
    now = time.time()
    entry = Revocation(
        args.tenant,
        args.jti,
        args.user,
        (args.issued_before or now) if args.user else None,
        now + DEFAULT_KEEP_S,
        now,
        "cli",
    )

    async def go() -> None:
        redis = redis_factory.connect(args.redis_url, args.redis_cluster)
        try:
            await redis_factory.initialize(redis)
            await Revocations(redis, args.redis_prefix).add(entry)
        finally:
            await redis.aclose()
        if args.kafka_bootstrap:
            log = AuditLog(lambda: args.kafka_bootstrap, MemoryAuditCopy())
            await log.start()
            try:
                target = f"jti:{args.jti}" if args.jti else f"user:{args.user}"
                await log.record(
                    audit_record(args.tenant, os.environ.get("USER"), "revoke", target, "ok", "cli")
                )
            finally:
                await log.stop()

    asyncio.run(go())
    print(orjson.dumps(entry.view()).decode())
    return 0


def audit(args: argparse.Namespace) -> int:
    if not args.kafka_bootstrap:
        print(
            "towerco-notify audit: NOTIFY_KAFKA_BOOTSTRAP / --kafka-bootstrap must be set",
            file=sys.stderr,
        )
        return 2
    match = DURATION.match(args.since)
    if match is None:
        print(
            f"towerco-notify audit: --since must look like 30m, 1h, 2d (got {args.since!r})",
            file=sys.stderr,
        )
        return 2
    since_ms = int((time.time() - float(match.group(1)) * UNIT_S[match.group(2)]) * 1000)
    for record in asyncio.run(read_audit(args.kafka_bootstrap, since_ms)):
        if args.tenant and record.get("tenant_id") != args.tenant:
            continue
        if args.action and record.get("action") != args.action:
            continue
        print(orjson.dumps(record).decode())
    return 0


async def read_audit(bootstrap: str, since_ms: int, idle_s: float = 1.5) -> list[dict[str, Any]]:
    """Every audit record produced since `since_ms`, oldest first (no group, no commit)."""
    from notify_core.wire.events import TOPIC_AUDIT
    from towerco_notify.commands.topic_reader import read_topic

    out = []
    async for records in read_topic(bootstrap, TOPIC_AUDIT, since_ms, idle_s):
        for r in records:
            try:
                out.append(orjson.loads(r.value))
            except orjson.JSONDecodeError:
                continue
    return sorted(out, key=lambda rec: rec.get("at", ""))
