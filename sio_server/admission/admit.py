"""Admission of a new connection, the same on every transport: address not blocked, token
valid (and not revoked), connection limits not reached. Refusals are counted, and told to
the audit trail (tenant-less for a refused token: the token cannot be trusted to name one).
"""

from __future__ import annotations

import asyncio
import logging

from notify_core.obs import metrics
from notify_core.obs.audit import AuditLog, Source, audit_record
from sio_server.admission.auth import Authenticator, AuthError, Principal
from sio_server.admission.limits import AddressGuard, ConnectionLimits

log = logging.getLogger(__name__)

AUTH_FAILED = "authentication failed"


class Refused(Exception):
    """The connection is refused; `str()` is what the client is told."""


class Admission:
    def __init__(
        self,
        auth: Authenticator,
        limits: ConnectionLimits,
        guard: AddressGuard,
        audit: AuditLog | None = None,
    ) -> None:
        self.auth = auth
        self.limits = limits
        self.guard = guard
        self.audit = audit
        self._background: set[asyncio.Task[None]] = set()

    async def admit(
        self, token: object, remote: str | None, source: Source, conn_id: str
    ) -> Principal:
        """The connection's principal, counted in; raises Refused with the client's message."""
        if self.guard.blocked(remote):
            metrics.AUTH_FAILURES.labels(source, "address blocked").inc()
            raise Refused(AUTH_FAILED)
        try:
            principal = await self.auth.authenticate(token)
        except AuthError as exc:
            metrics.AUTH_FAILURES.labels(source, exc.reason.split(":")[0]).inc()
            log.info("%s connection refused from %s: %s", source, remote, exc.reason)
            self._tell(None, None, "auth_refused", None, source, exc.reason.split(":")[0], remote)
            if self.guard.refused(remote):
                self._tell(None, None, "address_blocked", remote, source, None, remote)
            raise Refused(AUTH_FAILED) from None
        over = await self.limits.acquire(principal, conn_id)
        if over is not None:
            self._tell(
                principal.tenant_id,
                principal.user_id,
                "connection_limit",
                principal.user_id,
                source,
                over,
                remote,
            )
            raise Refused(over)
        return principal

    async def leave(self, conn_id: str) -> None:
        await self.limits.release(conn_id)

    def _tell(
        self,
        tenant: str | None,
        actor: str | None,
        action: str,
        target: str | None,
        source: Source,
        reason: str | None,
        remote: str | None,
    ) -> None:
        """An audit record in the background: a refusal is answered at once, and a flood
        of refusals must not wait on Kafka."""
        if self.audit is None:
            return
        record = audit_record(tenant, actor, action, target, "refused", source, reason, remote)
        task = asyncio.create_task(self.audit.record_quietly(record))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
