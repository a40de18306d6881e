"""Who is on call, asked with I/O: the schedules in force (oncall.yaml, swapped on
reload) and the tenant's overrides (Redis), put through the pure rotation maths.

The escalation engine asks it when a level naming `schedule:` or `site_oncall:` fires
(resolved then, not when the incident opened); the HTTP API asks it for who now, the
shift list and the iCal feed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from escalation.oncall import rotation
from escalation.oncall.overrides import OverrideStore
from escalation.oncall.schedule import Schedule, Schedules


@dataclass(frozen=True, slots=True)
class Paged:
    """What one on-call target of a level resolved to when it fired."""

    schedule: str | None  # None: `site_oncall` found no schedule covering the site
    users: tuple[str, ...]
    site_oncall: bool = False

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schedule": self.schedule, "users": list(self.users)}
        if self.site_oncall:
            out["site_oncall"] = True
        return out


class OnCallDirectory:
    def __init__(self, schedules: Callable[[], Schedules], overrides: OverrideStore) -> None:
        """`schedules()`: those in force (oncall.yaml, swapped on reload)."""
        self._schedules = schedules
        self.overrides = overrides

    def schedule(self, tenant: str, name: str) -> Schedule | None:
        return self._schedules().get((tenant, name))

    def of_tenant(self, tenant: str) -> list[Schedule]:
        return self._schedules().of_tenant(tenant)

    async def users(self, tenant: str, schedule: Schedule, at: datetime) -> list[str]:
        overrides = await self.overrides.of(tenant, schedule.name)
        return rotation.users_at(schedule, overrides, at)

    async def now(self, tenant: str, schedule: Schedule, at: datetime) -> dict[str, Any]:
        """`{schedule, users, until}`: who at `at`, and when that next changes."""
        overrides = await self.overrides.of(tenant, schedule.name)
        until = rotation.next_change(schedule, overrides, at)
        return {
            "schedule": schedule.name,
            "users": rotation.users_at(schedule, overrides, at),
            "until": until,
        }

    async def current_shift(
        self, tenant: str, schedule: Schedule, at: datetime
    ) -> tuple[datetime | None, datetime | None, list[str]]:
        """The shift `at` falls in: (since, until, users); None: beyond ~400 days."""
        overrides = await self.overrides.of(tenant, schedule.name)
        return (
            rotation.previous_change(schedule, overrides, at),
            rotation.next_change(schedule, overrides, at),
            rotation.users_at(schedule, overrides, at),
        )

    async def shifts(
        self, tenant: str, schedule: Schedule, start: datetime, end: datetime
    ) -> list[rotation.Shift]:
        overrides = await self.overrides.of(tenant, schedule.name)
        return rotation.shifts(schedule, overrides, start, end)

    async def page(
        self,
        tenant: str,
        schedule_names: list[str],
        site_oncall: bool,
        site: str | None,
        at: datetime,
        region: str | None = None,
    ) -> list[Paged]:
        """Who a level's on-call targets reach at `at`: one entry per named schedule (an
        unknown name pages nobody), and with `site_oncall` one per schedule whose
        `covers` holds the site or its region (an entry without a schedule when none)."""
        out = []
        for name in schedule_names:
            found = self.schedule(tenant, name)
            users = await self.users(tenant, found, at) if found is not None else []
            out.append(Paged(name, tuple(users)))
        if site_oncall:
            covering = self._schedules().covering(tenant, site, region)
            for schedule in covering:
                users = await self.users(tenant, schedule, at)
                out.append(Paged(schedule.name, tuple(users), site_oncall=True))
            if not covering:
                out.append(Paged(None, (), site_oncall=True))
        return out
