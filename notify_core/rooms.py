"""Room names and the routing rule: which rooms one notification goes to.

Contract rooms: `tenant:{t}`, `site:{t}:{s}` (KPI subscriptions), `user:{t}:{u}`,
`oncall:{t}`. Site-scoped events that are not KPI samples (incidents of a site,
site status, incident updates) go to *scope* rooms: every connection that may see
all of a tenant's sites sits in `scope:{t}:*`, a site-restricted one sits in
`scope:{t}:{s}` for each site it may see. So a restricted user never shares a room
with another site's data, and nothing is ever addressed to another tenant's room.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

ALL_SITES = "*"


def tenant_room(tenant: str) -> str:
    return f"tenant:{tenant}"


def site_room(tenant: str, site: str) -> str:
    return f"site:{tenant}:{site}"


def user_room(tenant: str, user: str) -> str:
    return f"user:{tenant}:{user}"


def oncall_room(tenant: str) -> str:
    return f"oncall:{tenant}"


def role_room(tenant: str, role: str) -> str:
    return f"role:{tenant}:{role}"


def scope_room(tenant: str, site: str = ALL_SITES) -> str:
    return f"scope:{tenant}:{site}"


class Viewer(Protocol):
    """Who a connection is (sio_server.auth.Principal): what its rooms derive from."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    @property
    def roles(self) -> frozenset[str]: ...

    @property
    def sites(self) -> frozenset[str] | None: ...


def rooms_of(viewer: Viewer) -> list[str]:
    """The rooms every connection of `viewer` joins on connect, on every transport.

    Escalations may name any site: only users who may see every site get them through
    the on-call and role rooms. KPI site rooms are joined later, by `subscribe_kpis`."""
    t = viewer.tenant_id
    rooms = [tenant_room(t), user_room(t, viewer.user_id)]
    if viewer.sites is None:
        rooms.append(scope_room(t))
        rooms.extend(role_room(t, role) for role in sorted(viewer.roles))
        if "oncall" in viewer.roles:
            rooms.append(oncall_room(t))
    else:
        rooms.extend(scope_room(t, s) for s in sorted(viewer.sites))
    return rooms


def site_scoped_to_unknown(event: Mapping[str, Any]) -> bool:
    """An update of an incident whose site we do not know: only all-sites users see it."""
    return event["type"] == "incident_update" and not event.get("site_id")


def visible(event: Mapping[str, Any], tenant: str, sites: frozenset[str] | None) -> bool:
    """The visibility rule the rooms implement, for history replay and HTTP reads."""
    if event.get("tenant_id") != tenant:
        return False
    if sites is None:
        return True
    site = event.get("site_id")
    if site is None:
        return not site_scoped_to_unknown(event)
    return site in sites


def rooms_for(event: Mapping[str, Any]) -> list[str]:
    """The rooms a stored notification is emitted to (always of its own tenant)."""
    tenant = event["tenant_id"]
    site = event.get("site_id")
    kind = event["type"]
    if kind == "kpi_update":
        return [site_room(tenant, site)] if site else []
    if kind == "escalation":
        rooms = [oncall_room(tenant)] if event.get("oncall", True) else []
        rooms += [user_room(tenant, user) for user in event.get("target_users", ())]
        rooms += [role_room(tenant, role) for role in event.get("target_roles", ())]
        return rooms
    if site:
        return [scope_room(tenant), scope_room(tenant, site)]
    if site_scoped_to_unknown(event):
        return [scope_room(tenant)]
    return [tenant_room(tenant)]
