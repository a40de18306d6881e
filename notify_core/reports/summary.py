"""How the NOC is doing, pure: response times of the incidents opened in a span, grouped.

Time to acknowledge = first acknowledgement - opened (an incident resolved without an
acknowledgement counts its resolve time); time to resolve = resolved - opened. Open
incidents count, with no times. Percentiles are nearest-rank over the group's times.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

GroupBy = Literal["site", "region", "policy", "severity", "user"]
GROUP_BY: tuple[GroupBy, ...] = ("site", "region", "policy", "severity", "user")
TIMELINE_READS = 50  # at once: well inside a Redis connection pool shared with the rest


@dataclass(frozen=True, slots=True)
class Handled:
    """One incident, as the report sees it (times in epoch ms)."""

    incident_id: str
    site: str | None
    region: str | None
    severity: str
    policy: str | None  # the escalation policy that took it
    user: str | None  # who acknowledged it (or, unacknowledged, resolved it)
    opened_ms: int
    acknowledged_ms: int | None
    resolved_ms: int | None
    pages: int  # escalation levels notified

    def key(self, group_by: GroupBy) -> str:
        return str(getattr(self, group_by) or "-")

    @property
    def tta_s(self) -> float | None:
        first = self.acknowledged_ms if self.acknowledged_ms is not None else self.resolved_ms
        return None if first is None else max(0, first - self.opened_ms) / 1000

    @property
    def ttr_s(self) -> float | None:
        return (
            None if self.resolved_ms is None else max(0, self.resolved_ms - self.opened_ms) / 1000
        )


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "mean": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    return {
        "p50": round(rank(0.5), 3),
        "p90": round(rank(0.9), 3),
        "mean": round(sum(ordered) / len(ordered), 3),
    }


def response_report(items: Iterable[Handled], group_by: GroupBy) -> list[dict[str, Any]]:
    groups: dict[str, list[Handled]] = {}
    for item in items:
        groups.setdefault(item.key(group_by), []).append(item)
    out = []
    for key in sorted(groups):
        members = groups[key]
        tta = [t for m in members if (t := m.tta_s) is not None]
        ttr = [t for m in members if (t := m.ttr_s) is not None]
        out.append(
            {
                "key": key,
                "incidents": len(members),
                "acknowledged": sum(1 for m in members if m.acknowledged_ms is not None),
                "resolved": sum(1 for m in members if m.resolved_ms is not None),
                "escalated": sum(1 for m in members if m.pages > 0),
                "pages": sum(m.pages for m in members),
                "mtta_s": _stats(tta),
                "mttr_s": _stats(ttr),
            }
        )
    return out


def handled_from(
    incident_id: str, state: Any, lines: list[dict[str, Any]], region: str | None
) -> Handled:
    """One incident as the report sees it, from its stored state and its timeline."""
    policy = next((e.get("policy") for e in lines if e["kind"] == "escalation_started"), None)
    pages = sum(1 for e in lines if e["kind"] == "notified")
    resolver = next((e.get("by") for e in lines if e["kind"] == "resolved"), None)
    return Handled(
        incident_id,
        state.site_id,
        region,
        state.severity,
        policy,
        state.acknowledged_by or resolver,
        state.opened_at_ms,
        state.acknowledged_at_ms,
        state.resolved_at_ms if state.status == "resolved" else None,
        pages,
    )


async def collect(
    incidents: Any,
    timeline: Any,
    region_of: Any,
    tenant: str,
    start_ms: int,
    end_ms: int,
    limit: int = 20_000,
    archive: Any = None,
) -> list[Handled]:
    """The tenant's incidents opened in [start_ms, end_ms): the records of the archive
    (notify_core/reports/archive.py: every resolved incident, a year and more), and from
    the live store what is open or resolved since (the latest resolved ones it keeps),
    each with its pages and policy from its timeline; the live one wins. `incidents`: an
    IncidentStore; `timeline`: a Timeline; `region_of(tenant, site)`: the site's region."""
    found: list[tuple[str, Any]] = []
    by_id: dict[str, Handled] = {}
    for resolved in (False, True) if archive is None else (False,):
        # one read of up to `limit` (newest first): paging would sort the memory store's
        # list once a page, and read Redis's index a page a round trip
        page, _ = await incidents.page(tenant, resolved, 0, limit)
        found += [
            (i, s)
            for i, s in page
            if s.opened_at_ms is not None and start_ms <= s.opened_at_ms < end_ms
        ]
    if archive is not None:
        by_id = {h.incident_id: h for h in await archive.span(tenant, start_ms, end_ms)}
        # the resolved ones the live store has and the archive not yet (recorded a few
        # seconds after the resolve; or resolved before the archive existed): ids first,
        # states only for those
        ids = await incidents.opened_in(tenant, True, start_ms, end_ms)
        missing = [i for i in ids if i not in by_id][:limit]
        states = await incidents.get_many([(tenant, i) for i in missing])
        found += [
            (i, s)
            for i in missing
            if (s := states.get((tenant, i))) is not None and s.status == "resolved"
        ]
    for chunk in range(0, len(found), TIMELINE_READS):
        part = found[chunk : chunk + TIMELINE_READS]
        entries = await asyncio.gather(*(timeline.get(tenant, i) for i, _ in part))
        for (incident_id, s), lines in zip(part, entries, strict=True):
            by_id[incident_id] = handled_from(incident_id, s, lines, region_of(tenant, s.site_id))
    return list(by_id.values())
