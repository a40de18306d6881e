"""Who is on call, pure: plain functions of a schedule, its overrides and an instant.

A layer's shift `k` begins at the wall time `start + k * shift` in the schedule's
timezone, so a 1d shift across a DST change lasts 23 or 25 hours. A wall time that does
not exist (spring forward) means the first instant after the gap; an ambiguous one (fall
back) its first occurrence. Shift ends are exclusive. Before `start` a layer has nobody,
and outside its `only` window too. At each instant the highest layer with someone wins;
then overrides active at that instant: one with `replaces` takes that user's place, one
without adds its user.

Every instant here is an aware datetime; results are in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from escalation.oncall.schedule import DAYS, Layer, Only, Schedule

OVERRIDE = "override"  # the `source` of an override's shifts
_HORIZONS = (timedelta(days=2), timedelta(days=62), timedelta(days=400))


@dataclass(frozen=True, slots=True)
class Override:
    """`user_id` on call in [starts_at, ends_at): in `replaces`' place, or in addition."""

    id: str
    schedule: str
    user_id: str
    starts_at: datetime
    ends_at: datetime
    replaces: str | None = None

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True)
class OnCall:
    user_id: str
    source: str  # the layer's name, or "override"


@dataclass(frozen=True, slots=True)
class Shift:
    user_id: str
    start: datetime
    end: datetime
    source: str


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the naive wall time `wall` in `zone`: its first occurrence when
    ambiguous, the end of the gap when it does not exist."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # in a gap: fold=0 reads it with the offset before the change (the later instant),
    # fold=1 with the one after; the change itself lies between, found to the second
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(first, other), max(first, other)
    after = hi.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0) if hi.microsecond else hi


def _wall(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone).replace(tzinfo=None)


def boundary(layer: Layer, zone: ZoneInfo, k: int) -> datetime:
    """When shift `k` of `layer` begins (shift 0 is users[0]'s first)."""
    return wall_to_instant(layer.start + k * layer.shift, zone)


def shift_index(layer: Layer, zone: ZoneInfo, at: datetime) -> int | None:
    """The shift `at` falls in, or None before the layer's start."""
    if at < boundary(layer, zone, 0):
        return None
    k = max(0, (_wall(at, zone) - layer.start) // layer.shift)
    while k > 0 and boundary(layer, zone, k) > at:
        k -= 1
    while boundary(layer, zone, k + 1) <= at:
        k += 1
    return k


def in_window(only: Only | None, zone: ZoneInfo, at: datetime) -> bool:
    """Is `at` inside the layer's `only` days and hours? A window that crosses midnight
    belongs to the day it starts on."""
    if only is None:
        return True
    wall = _wall(at, zone)
    day, clock = DAYS[wall.weekday()], wall.time()
    yesterday = DAYS[(wall.weekday() - 1) % 7]
    if only.from_ < only.to:
        return day in only.days and only.from_ <= clock < only.to
    return (day in only.days and clock >= only.from_) or (
        yesterday in only.days and clock < only.to
    )


def layer_user(layer: Layer, zone: ZoneInfo, at: datetime) -> str | None:
    if not in_window(layer.only, zone, at):
        return None
    k = shift_index(layer, zone, at)
    return None if k is None else layer.users[k % len(layer.users)]


def on_call(schedule: Schedule, overrides: Sequence[Override], at: datetime) -> list[OnCall]:
    """Who is on call in `schedule` at `at`, each with where it comes from."""
    zone = schedule.zone
    base: list[OnCall] = []
    for layer in reversed(schedule.layers):
        user = layer_user(layer, zone, at)
        if user is not None:
            base = [OnCall(user, layer.name)]
            break
    added: list[OnCall] = []
    for o in overrides:
        if not o.active(at):
            continue
        if o.replaces is None:
            added.append(OnCall(o.user_id, OVERRIDE))
        else:
            base = [OnCall(o.user_id, OVERRIDE) if b.user_id == o.replaces else b for b in base]
    out: list[OnCall] = []
    for entry in base + added:
        if all(e.user_id != entry.user_id for e in out):
            out.append(entry)
    return out


def users_at(schedule: Schedule, overrides: Sequence[Override], at: datetime) -> list[str]:
    return [e.user_id for e in on_call(schedule, overrides, at)]


def _layer_changes(layer: Layer, zone: ZoneInfo, start: datetime, end: datetime) -> set[datetime]:
    """Every instant in (start, end] at which `layer` may change hands (a superset)."""
    out: set[datetime] = set()
    first = shift_index(layer, zone, start)
    k = 0 if first is None else first + 1
    while (at := boundary(layer, zone, k)) <= end:
        if at > start:
            out.add(at)
        k += 1
    if layer.only is not None:
        day = _wall(start, zone).date() - timedelta(days=1)
        last = _wall(end, zone).date()
        while day <= last:
            for clock, offset in ((layer.only.from_, 0), (layer.only.to, 1)):
                wall = datetime.combine(day, clock)
                if offset and layer.only.to <= layer.only.from_:
                    wall += timedelta(days=1)
                at = wall_to_instant(wall, zone)
                if start < at <= end:
                    out.add(at)
            day += timedelta(days=1)
    return out


def changes(
    schedule: Schedule, overrides: Iterable[Override], start: datetime, end: datetime
) -> list[datetime]:
    """The instants in (start, end] at which who is on call may change, sorted."""
    out: set[datetime] = set()
    for layer in schedule.layers:
        out |= _layer_changes(layer, schedule.zone, start, end)
    for o in overrides:
        out |= {t for t in (o.starts_at, o.ends_at) if start < t <= end}
    return sorted(out)


def next_change(schedule: Schedule, overrides: Sequence[Override], at: datetime) -> datetime | None:
    """When who is on call next differs from `at` (None: not within ~400 days)."""
    now = set(users_at(schedule, overrides, at))
    searched = at
    for horizon in _HORIZONS:
        for t in changes(schedule, overrides, searched, at + horizon):
            if set(users_at(schedule, overrides, t)) != now:
                return t.astimezone(UTC)
        searched = at + horizon
    return None


def shifts(
    schedule: Schedule, overrides: Sequence[Override], start: datetime, end: datetime
) -> list[Shift]:
    """The final shifts overlapping [start, end), clipped to it; adjacent pieces of one
    user from one source are merged. Sorted by start, then user."""
    cuts = [start, *(t for t in changes(schedule, overrides, start, end) if t < end), end]
    open_: dict[tuple[str, str], datetime] = {}
    out: list[Shift] = []
    for begin in cuts[:-1]:
        here = {(e.user_id, e.source) for e in on_call(schedule, overrides, begin)}
        for key in [k for k in open_ if k not in here]:
            out.append(Shift(key[0], open_.pop(key), begin, key[1]))
        for key in here:
            open_.setdefault(key, begin)
    out += [Shift(k[0], since, end, k[1]) for k, since in open_.items()]
    out = [Shift(s.user_id, s.start.astimezone(UTC), s.end.astimezone(UTC), s.source) for s in out]
    return sorted(out, key=lambda s: (s.start, s.user_id))


def previous_change(
    schedule: Schedule, overrides: Sequence[Override], at: datetime
) -> datetime | None:
    """When who is on call at `at` came on (None: not within ~400 days)."""
    now = set(users_at(schedule, overrides, at))
    searched = at
    for horizon in _HORIZONS:
        start = at - horizon
        for t in reversed(changes(schedule, overrides, start, searched)):
            if set(users_at(schedule, overrides, t - timedelta(microseconds=1))) != now:
                return t.astimezone(UTC)
        searched = start
    return None
