"""Who may see what: the one visibility rule, as rooms.

`rooms_for(event)` names the rooms a stored event goes to (always of its own tenant);
`rooms_of(viewer)` the rooms a connection of that viewer sits in; `visible(viewer, event)`
is exactly "they share a room" (KPI samples: the site rooms the viewer may subscribe to).
Live fan-out (every transport), replay, HTTP reads and polling all decide through these
three, so they cannot disagree; a property test holds them to it.

Contract rooms: `tenant:{t}`, `site:{t}:{s}` (KPI subscriptions), `user:{t}:{u}`,
`oncall:{t}`. Site-scoped events that are not KPI samples (incidents of a site, site
status, incident updates) go to *scope* rooms: a connection that may see every site sits
in `scope:{t}:*`, a site-restricted one in `scope:{t}:{s}` for each site it may see. The
same split holds for what is addressed to a person (escalations naming a user or role):
an all-sites user sits in `user:{t}:{u}` and `role:{t}:{r}`; a site-restricted one in
`user:{t}:{u}@{s}` / `role:{t}:{r}@{s}` per site and the `@-` twins for tenant-wide
events. So a restricted user never shares a room with another site's data, and nothing
is ever addressed to another tenant's room.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

ALL_SITES = "*"
NO_SITE = "-"


def tenant_room(tenant: str) -> str:
    return f"tenant:{tenant}"


def site_room(tenant: str, site: str) -> str:
    return f"site:{tenant}:{site}"


def user_room(tenant: str, user: str, site: str | None = None) -> str:
    """`site`: the room of a site-restricted user for what concerns that site (`-`: none)."""
    return f"user:{tenant}:{user}" if site is None else f"user:{tenant}:{user}@{site}"


def oncall_room(tenant: str) -> str:
    return f"oncall:{tenant}"


def role_room(tenant: str, role: str, site: str | None = None) -> str:
    return f"role:{tenant}:{role}" if site is None else f"role:{tenant}:{role}@{site}"


def scope_room(tenant: str, site: str = ALL_SITES) -> str:
    return f"scope:{tenant}:{site}"


class Viewer(Protocol):
    """Who a connection is (sio_server.admission.auth.Principal): what its rooms derive from."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    @property
    def roles(self) -> frozenset[str]: ...

    @property
    def sites(self) -> frozenset[str] | None: ...


def rooms_of(viewer: Viewer) -> list[str]:
    """The rooms every connection of `viewer` joins on connect, on every transport (KPI
    site rooms are joined later, by `subscribe_kpis`, for sites it may see)."""
    t, u = viewer.tenant_id, viewer.user_id
    rooms = [tenant_room(t)]
    if viewer.sites is None:
        rooms += [scope_room(t), user_room(t, u)]
        rooms += [role_room(t, role) for role in sorted(viewer.roles)]
        if "oncall" in viewer.roles:
            rooms.append(oncall_room(t))
        return rooms
    for site in (NO_SITE, *sorted(viewer.sites)):
        if site != NO_SITE:
            rooms.append(scope_room(t, site))
        rooms.append(user_room(t, u, site))
        rooms += [role_room(t, role, site) for role in sorted(viewer.roles)]
    return rooms


def site_scoped_to_unknown(event: Mapping[str, Any]) -> bool:
    """An update of an incident whose site we do not know: only all-sites users see it."""
    return event["type"] == "incident_update" and not event.get("site_id")


def rooms_for(event: Mapping[str, Any]) -> list[str]:
    """The rooms a stored notification is emitted to (always of its own tenant)."""
    tenant = event["tenant_id"]
    site = event.get("site_id")
    kind = event["type"]
    if kind == "kpi_update":
        return [site_room(tenant, site)] if site else []
    if kind == "escalation":
        # to the people it names: the on-call room holds only all-sites users; a
        # restricted user or role member gets it in the room of the incident's site
        scoped = site or NO_SITE
        rooms = [oncall_room(tenant)] if event.get("oncall", True) else []
        for user in event.get("target_users", ()):
            rooms += [user_room(tenant, user), user_room(tenant, user, scoped)]
        for role in event.get("target_roles", ()):
            rooms += [role_room(tenant, role), role_room(tenant, role, scoped)]
        return rooms
    if site:
        return [scope_room(tenant), scope_room(tenant, site)]
    if kind == "system_notification" and event.get("target_roles"):
        return [role_room(tenant, role) for role in event["target_roles"]]
    if site_scoped_to_unknown(event):
        return [scope_room(tenant)]
    return [tenant_room(tenant)]


def kpi_rooms(viewer: Viewer, sites: Iterable[str]) -> list[str]:
    """The KPI site rooms of `sites` that `viewer` may subscribe to."""
    return [site_room(viewer.tenant_id, s) for s in sites if may_see_site(viewer, s)]


def may_see_site(viewer: Viewer, site: str | None) -> bool:
    return site is None or viewer.sites is None or site in viewer.sites


def visible(viewer: Viewer, event: Mapping[str, Any], rooms: frozenset[str] | None = None) -> bool:
    """May `viewer` see `event` (replay, HTTP, polling)? Exactly when it would be in one of
    the event's rooms (`rooms`: `rooms_of(viewer)`, precomputed by the caller)."""
    if event.get("tenant_id") != viewer.tenant_id:
        return False
    if event.get("type") == "kpi_update":
        return bool(event.get("site_id")) and may_see_site(viewer, event.get("site_id"))
    mine = rooms if rooms is not None else frozenset(rooms_of(viewer))
    return not mine.isdisjoint(rooms_for(event))
