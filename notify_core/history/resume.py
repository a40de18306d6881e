"""Whether a client's resume point can be recovered: one pure decision for every transport.

A tenant history has an *epoch*, minted when the history begins (a new process in the
embedded mode; a new or recreated Redis stream), and remembers the first id it ever
held. A resume names `last_id` (and, from clients that keep it, the epoch they were
told). We say `recovered: true` only when every event after `last_id` is provably
still held: same epoch (or, with no epoch from the client, a history that began at or
before `last_id`), and nothing newer than `last_id` trimmed away. Anything else is a
`recovered: false` with the reason, and the client reloads its state instead of
trusting a list that may be missing alerts (Centrifugo's `{offset, epoch}` rule).
"""

from __future__ import annotations

from typing import NamedTuple

from notify_core.wire.ids import InvalidEventId, parse_id

Pos = tuple[int, int]


class HistoryPosition(NamedTuple):
    """What a tenant history can prove about itself, read in one round trip."""

    epoch: str | None  # None: no history exists now (never began, or was lost)
    first_id: Pos | None  # the first id this history (this epoch) ever held
    oldest_id: Pos | None  # the oldest id still held
    last_id: Pos | None  # the newest id held
    trimmed_through: Pos | None  # the newest id ever trimmed away; None: none


EMPTY = HistoryPosition(None, None, None, None, None)


class ResumeDecision(NamedTuple):
    recovered: bool
    after: Pos | None  # where the replay starts (exclusive); None: `last_id` was garbage
    reason: str | None = None


def decide(last_id: object, client_epoch: object, history: HistoryPosition) -> ResumeDecision:
    """Can a client at `last_id` (told `client_epoch`) recover every event it missed?

    Whatever the answer, the replay that follows sends what the history still holds
    after `last_id`: a client told `recovered: false` reloads its state and keeps those.
    """
    try:
        after = parse_id(last_id)
    except InvalidEventId as exc:
        return ResumeDecision(False, None, f"invalid last_id: {exc}")
    if client_epoch is not None and not isinstance(client_epoch, str):
        return ResumeDecision(False, after, "invalid epoch: must be a string")
    if history.epoch is None:
        return ResumeDecision(False, after, "history is empty: it holds nothing since last_id")
    if client_epoch is not None and client_epoch != history.epoch:
        return ResumeDecision(
            False, after, "history was reset: its epoch is not the one the client was told"
        )
    if history.first_id is None and client_epoch is None:
        # begun (its epoch told) but nothing stored yet: only a client of this very
        # history, which says its epoch, can be sure it missed nothing
        return ResumeDecision(False, after, "history is empty: it holds nothing since last_id")
    if history.first_id is not None and after < history.first_id and client_epoch is None:
        return ResumeDecision(False, after, "history began after last_id")
    if (
        history.trimmed_through is not None
        and history.trimmed_through > after
        and (history.oldest_id is None or history.oldest_id > after)
    ):
        return ResumeDecision(False, after, "history no longer reaches back to last_id")
    return ResumeDecision(True, after)
