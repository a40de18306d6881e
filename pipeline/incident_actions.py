"""What an action does to an incident: a pure function of the known state, the action and
its time (the pipeline applies it; the escalation engine hears of the outcome).

`acknowledge`/`resolve` (with an optional note), `comment` (a note on the timeline),
`take`/`release` (the assignee), `snooze` (status `snoozed` until a time; no level fires
until then) and `unsnooze`. An action that changes nothing (acknowledging twice, releasing
what nobody took, anything but a comment on a resolved incident) is not broadcast.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

from notify_core.clock import iso_ms
from notify_core.state.incidents import IncidentState
from notify_core.wire.events import ActionPayload


class Applied(NamedTuple):
    state: IncidentState | None  # the new state to store; None: unchanged
    status: str  # the incident's status after it (the `incident_update`'s `status`)
    changed: dict[str, Any]  # what the `incident_update` carries beside it
    kind: str  # the timeline entry's kind


def apply_action(
    known: IncidentState | None, act: ActionPayload, at_ms: int, minute_ms: int = 60_000
) -> Applied | None:
    """The outcome of `act` at `at_ms` on an incident in state `known`; None: no change.
    `minute_ms`: how long a snooze minute is (NOTIFY_SNOOZE_MINUTE_S; tests shorten it)."""
    a, user = act.action, act.user_id
    changed: dict[str, Any] = {"action": a}
    if act.note is not None and a != "comment":
        changed["note"] = act.note
    if known is None:
        # only trusted producers reach here (servers refuse unknown incidents): as before,
        # an acknowledge or resolve of an incident the daemon never saw is passed on
        if a in ("acknowledge", "resolve"):
            return Applied(None, f"{a}d", changed, f"{a}d")
        return None
    if known.status == "resolved" and a != "comment":
        return None
    after_snooze = "acknowledged" if known.acknowledged_by else "open"
    if a == "acknowledge":
        if known.status == "acknowledged":
            return None
        first = known.acknowledged_at_ms if known.acknowledged_at_ms is not None else at_ms
        new = replace(
            known,
            status="acknowledged",
            acknowledged_by=user,
            snoozed_until_ms=None,
            acknowledged_at_ms=first,
        )
        return Applied(new, "acknowledged", changed, "acknowledged")
    if a == "resolve":
        new = replace(known, status="resolved", resolved_at_ms=at_ms, snoozed_until_ms=None)
        return Applied(new, "resolved", changed, "resolved")
    if a == "comment":
        changed["comment"] = {"by": user, "text": act.note}
        return Applied(None, known.status, changed, "comment")
    if a == "take":
        if known.assignee == user:
            return None
        changed["assignee"] = user
        return Applied(replace(known, assignee=user), known.status, changed, "taken")
    if a == "release":
        if known.assignee is None:
            return None
        changed["assignee"] = None
        return Applied(replace(known, assignee=None), known.status, changed, "released")
    if a == "snooze":
        assert act.minutes is not None  # the payload model requires it
        until = at_ms + act.minutes * minute_ms
        changed["until"] = iso_ms(until)
        new = replace(known, status="snoozed", snoozed_until_ms=until)
        return Applied(new, "snoozed", changed, "snoozed")
    # unsnooze
    if known.status != "snoozed":
        return None
    new = replace(known, status=after_snooze, snoozed_until_ms=None)
    return Applied(new, after_snooze, changed, "unsnoozed")
