"""Acting on an incident, from any transport: who may, on what, and the audit record.

One gate for the socket, the plain WebSocket and HTTP: the caller needs role `operator`,
`oncall` or `admin` *and* an incident it may see (its tenant; its site when the token is
restricted). An incident the daemon does not know is refused (it would otherwise be
stored and broadcast: anyone with a token could flood the history with fake updates), and
one the caller may not see is refused the same way (its existence is not disclosed).
Each attempt, allowed or refused, is an audit record, written before the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from pydantic import ValidationError

from notify_core.obs.audit import AuditLog, Source, audit_record
from notify_core.state.incidents import IncidentStore
from notify_core.wire.events import ACTIONS, SNOOZE_MINUTES, describe_error, is_incident_id
from sio_server.admission.auth import Principal
from sio_server.contract.models import ActionBody

ActionSink = Callable[[Principal, str, str, dict[str, Any]], Awaitable[None]]
ACTING_ROLES = ("operator", "oncall", "admin")


class Outcome(NamedTuple):
    ok: bool
    status: int  # the HTTP status it maps to
    error: str | None = None


class IncidentActions:
    def __init__(
        self,
        sink: ActionSink | None,
        incidents: IncidentStore | None,
        audit: AuditLog | None = None,
    ) -> None:
        self._sink = sink
        self._incidents = incidents
        self._audit = audit

    async def act(
        self,
        p: Principal,
        incident_id: object,
        action: object,
        source: Source,
        remote: str | None = None,
        note: object = None,
        minutes: object = None,
        origin: str | None = None,
    ) -> Outcome:
        """`origin`: where it was taken outside the dashboard (`link`), carried to the
        timeline and the `incident_update` as `source`."""
        extra, problem = _extra(action, note, minutes)
        if origin is not None:
            extra["source"] = origin
        outcome = (
            Outcome(False, 400, problem) if problem else await self._decide(p, incident_id, action)
        )
        if outcome.ok:  # produced to the actions topic; the pipeline applies it
            assert self._sink is not None
            await self._sink(p, str(incident_id), str(action), extra)
        if self._audit is not None and action in ACTIONS:
            await self._audit.record(
                audit_record(
                    p.tenant_id,
                    p.user_id,
                    str(action),
                    incident_id if isinstance(incident_id, str) else None,
                    "ok" if outcome.ok else "refused",
                    source,
                    outcome.error,
                    remote,
                )
            )
        return outcome

    async def may_see(self, p: Principal, incident_id: str) -> bool:
        """A known incident of `p`'s tenant at a site it may see."""
        if self._incidents is None:
            return False
        state = await self._incidents.get(p.tenant_id, incident_id)
        return state is not None and p.can_see_site(state.site_id)

    async def _decide(self, p: Principal, incident_id: object, action: object) -> Outcome:
        if action not in ACTIONS:
            return Outcome(False, 404, f"unknown action; use one of {', '.join(ACTIONS)}")
        if not is_incident_id(incident_id):
            return Outcome(False, 400, "incident_id: must be 1-128 of [A-Za-z0-9_.:-]")
        if not p.has_any_role(*ACTING_ROLES):
            return Outcome(False, 403, "forbidden: needs role operator, oncall or admin")
        if self._sink is None or self._incidents is None:
            return Outcome(False, 503, "incident actions are not available on this server")
        state = await self._incidents.get(p.tenant_id, incident_id)
        if state is None or not p.can_see_site(state.site_id):
            return Outcome(False, 404, "no such incident")
        return Outcome(True, 202)


def _extra(action: object, note: object, minutes: object) -> tuple[dict[str, Any], str | None]:
    """The note and minutes an action carries, checked against the API's `ActionBody`
    (every transport's one check): (fields, problem or None)."""
    fields = {k: v for k, v in (("note", note), ("minutes", minutes)) if v is not None}
    try:
        body = ActionBody.model_validate(fields)
    except ValidationError as exc:
        return {}, describe_error(exc)
    if body.note is not None and not body.note.strip():
        return {}, "note: must not be blank"
    if action == "comment" and body.note is None:
        return {}, "note: required for a comment"
    if action == "snooze" and body.minutes is None:
        low, high = SNOOZE_MINUTES
        return {}, f"minutes: required for snooze, an integer from {low} to {high}"
    return body.model_dump(exclude_none=True), None
