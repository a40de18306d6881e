"""Threshold backtest: replay KPI samples through two rule sets with the live evaluator.

Pure: KPI messages (decoded by the pipeline's own `decode_kpi`) in, event time as the
clock, per-series outcomes out; nothing is emitted, stored or committed.
`towerco_notify.commands.backtest` feeds it from the retained KPI topic or a JSONL file and
prints, writes or plots what differs.

Per (tenant, site, KPI) and rule set, an `Outcome` counts what on-call would have seen:
- `alerts`: firing transitions by level (an escalation warning -> critical counts one
  critical), exactly the `threshold_breach` records the live pipeline would publish;
- `flaps`: fires that follow a clear of the same series (an alert that came back);
- `time_in_alert_s`: time spent firing; an alert still firing at the end of the replay
  is counted up to the series' last sample;
- `no_data`: gaps between samples of at least `stale_after` (the live sweep's report,
  in event time), and the tail of a series that stopped reporting before the end.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from notify_core.clock import iso_s
from notify_core.thresholds.rules import Rule, RuleSet
from notify_core.wire.events import KpiMessage
from pipeline.thresholds import AlertState, Transition, evaluate


@dataclass(slots=True)
class Interval:
    """One alert of a series: from its fire to its clear (None: still firing)."""

    start: float
    end: float | None
    level: str


@dataclass(slots=True)
class Outcome:
    """What one rule set did to one series."""

    rule: Rule | None
    warning: int = 0
    critical: int = 0
    flaps: int = 0
    no_data: int = 0
    time_in_alert_s: float = 0.0
    first_alert: float | None = None
    last_alert: float | None = None
    intervals: list[Interval] = field(default_factory=list)
    state: AlertState | None = None
    cleared_once: bool = False
    stale_s: float = float("inf")  # the rule's stale_after (inf: no freshness check)

    def __post_init__(self) -> None:
        if self.rule is not None and self.rule.stale_after_s is not None:
            self.stale_s = self.rule.stale_after_s

    def summary(self) -> tuple[int, int, int, int, float]:
        return (
            self.warning,
            self.critical,
            self.flaps,
            self.no_data,
            round(self.time_in_alert_s, 3),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule.rule_id if self.rule is not None else None,
            "alerts": {"warning": self.warning, "critical": self.critical},
            "flaps": self.flaps,
            "time_in_alert_s": round(self.time_in_alert_s, 3),
            "no_data": self.no_data,
            "first_alert": _iso(self.first_alert),
            "last_alert": _iso(self.last_alert),
        }


class Series:
    """One (tenant, site, KPI) under both rule sets; `times`/`values` only when kept."""

    __slots__ = ("key", "last_seen", "new", "old", "times", "values")

    def __init__(self, key: tuple[str, str, str], old: Outcome, new: Outcome, keep: bool) -> None:
        """`new is old` when both rule sets give this series the same rule."""
        self.key = key
        self.old, self.new = old, new
        self.last_seen: float | None = None
        self.times: array[float] | None = array("d") if keep else None
        self.values: array[float] | None = array("d") if keep else None

    @property
    def differs(self) -> bool:
        return self.old.summary() != self.new.summary()


def _step(out: Outcome, value: float, now: float, last_seen: float | None) -> None:
    """One sample through one rule set: the live `evaluate`, then the bookkeeping."""
    rule = out.rule
    if rule is None:
        return
    if last_seen is not None and now - last_seen >= out.stale_s:
        out.no_data += 1
    out.state, transitions = evaluate(rule, out.state, value, now)
    if transitions:
        _account(out, transitions, now)


def _account(out: Outcome, transitions: list[Transition], now: float) -> None:
    for t in transitions:
        if t.level in ("warning", "critical"):
            if t.level == "warning":
                out.warning += 1
            else:
                out.critical += 1
            if out.first_alert is None:
                out.first_alert = now
            out.last_alert = now
            if not t.previous.startswith("firing"):  # a new alert, not an escalation
                if out.cleared_once:
                    out.flaps += 1
            elif out.intervals:
                out.intervals[-1].end = now
            out.intervals.append(Interval(now, None, t.level))
        elif t.level == "ok" and t.previous.startswith("firing"):
            out.cleared_once = True
            if out.intervals and out.intervals[-1].end is None:
                out.intervals[-1].end = now


class Backtest:
    """Feed messages with `add`; read `series` (and `samples`) when done."""

    def __init__(
        self,
        old: RuleSet,
        new: RuleSet,
        tenant: str | None = None,
        site: str | None = None,
        keep_samples: bool = False,
        start: float | None = None,
        end: float | None = None,
    ) -> None:
        """Only messages of `tenant`/`site` (None: all) with an event time in
        [`start`, `end`] are replayed; `keep_samples` keeps them for a plot."""
        self.old_rules, self.new_rules = old, new
        self.tenant, self.site = tenant, site
        self.start = float("-inf") if start is None else start
        self.until = float("inf") if end is None else end
        self.keep_samples = keep_samples
        self.series: dict[tuple[str, str, str], Series | None] = {}
        self.samples = 0  # KPI messages replayed
        self.end: float | None = None  # latest event time seen

    def add(self, msg: KpiMessage) -> None:
        tenant, site = msg.tenant_id, msg.site_id
        if (self.tenant is not None and tenant != self.tenant) or (
            self.site is not None and site != self.site
        ):
            return
        now = msg.timestamp.timestamp()
        if now < self.start or now > self.until:
            return
        self.samples += 1
        if self.end is None or now > self.end:
            self.end = now
        series = self.series
        for name, value in msg.payload.items():
            cls = value.__class__
            if cls is not float and cls is not int:
                continue  # flags and labels ride along, never evaluated (as live)
            key = (tenant, site, name)
            if key in series:
                s = series[key]
            else:
                s = series[key] = self._open(key)
            if s is None:
                continue  # no rule in either set: passes through untouched
            v = float(value)
            last = s.last_seen
            _step(s.old, v, now, last)
            if s.new is not s.old:  # the same rule in both sets is evaluated once
                _step(s.new, v, now, last)
            s.last_seen = now
            if s.times is not None and s.values is not None:
                s.times.append(now)
                s.values.append(v)

    def _open(self, key: tuple[str, str, str]) -> Series | None:
        tenant, site, kpi = key
        old = self.old_rules.effective(tenant, site, kpi)
        new = self.new_rules.effective(tenant, site, kpi)
        if old is None and new is None:
            return None
        first = Outcome(old)
        return Series(key, first, first if new == old else Outcome(new), self.keep_samples)

    def feed(self, messages: Iterable[KpiMessage]) -> None:
        for msg in messages:
            self.add(msg)

    def finish(self, end: float | None = None) -> list[Series]:
        """Close what is still open at `end` (default: the latest event time seen) and
        return the series whose outcome differs, the biggest change in alerts first."""
        end = self.end if end is None else end
        done: list[Series] = []
        for s in self.series.values():
            if s is None or s.last_seen is None:
                continue
            for out in (s.old, s.new) if s.new is not s.old else (s.old,):
                _close(out, s.last_seen, end)
            if s.differs:
                done.append(s)
        done.sort(key=lambda s: (-abs(_alerts(s.new) - _alerts(s.old)), s.key))
        return done

    def report(self, changed: list[Series]) -> dict[str, Any]:
        """The `--json` document (DESIGN "Threshold backtest")."""
        return {
            "samples": self.samples,
            "series": sum(1 for s in self.series.values() if s is not None),
            "rules": [
                {
                    "tenant_id": s.key[0],
                    "site_id": s.key[1],
                    "kpi": s.key[2],
                    "old": s.old.as_dict(),
                    "new": s.new.as_dict(),
                }
                for s in changed
            ],
            "totals": totals(self),
        }


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return iso_s(t)


def _alerts(out: Outcome) -> int:
    return out.warning + out.critical


def _close(out: Outcome, last_seen: float, end: float | None) -> None:
    """Count time in alert (open alerts up to the last sample) and a trailing silence."""
    rule = out.rule
    if rule is None:
        return
    for iv in out.intervals:
        out.time_in_alert_s += (iv.end if iv.end is not None else last_seen) - iv.start
    if end is not None and rule.stale_after_s is not None and end - last_seen >= rule.stale_after_s:
        out.no_data += 1


def totals(bt: Backtest) -> list[dict[str, Any]]:
    """Alerts per rule id under each set, over every series (changed or not)."""
    per: dict[str, dict[str, int]] = {}
    for s in bt.series.values():
        if s is None:
            continue
        for side, out in (("old", s.old), ("new", s.new)):
            if out.rule is None:
                continue
            row = per.setdefault(out.rule.rule_id, {"old": 0, "new": 0})
            row[side] += _alerts(out)
    return [{"rule_id": rid, **row} for rid, row in sorted(per.items())]
