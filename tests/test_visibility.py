"""The one visibility rule: for every event type and every principal, `visible` (replay,
HTTP, polling) says yes exactly when live delivery would put the event in one of the
principal's rooms; and, from the attacker's side, a site-restricted user named by an
escalation of another site's incident receives it nowhere."""

from __future__ import annotations

import asyncio

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from notify_core.wire.rooms import rooms_for, rooms_of, site_room, visible
from sio_server.admission.auth import Principal
from tests.helpers import NodeClient, new_tenant

TENANTS = ["t1", "t2"]
SITES = ["s1", "s2", "s3"]
USERS = ["alice", "bob"]
ROLES = ["operator", "oncall", "admin"]
TYPES = [
    "incident_alert",
    "kpi_update",
    "site_status",
    "system_notification",
    "escalation",
    "incident_update",
]

principals = st.builds(
    Principal,
    user_id=st.sampled_from(USERS),
    tenant_id=st.sampled_from(TENANTS),
    roles=st.frozensets(st.sampled_from(ROLES)),
    sites=st.none() | st.frozensets(st.sampled_from(SITES)),
    expires_at=st.just(2e9),
)


@st.composite
def events(draw):
    kind = draw(st.sampled_from(TYPES))
    event = {"type": kind, "tenant_id": draw(st.sampled_from(TENANTS)), "id": "1-0"}
    site = draw(st.none() | st.sampled_from(SITES))
    if site is not None:
        event["site_id"] = site
    if kind == "escalation":
        event["oncall"] = draw(st.booleans())
        event["target_users"] = draw(st.lists(st.sampled_from(USERS), max_size=2))
        event["target_roles"] = draw(st.lists(st.sampled_from(ROLES), max_size=2))
    return event


@given(principals, events())
def test_visible_is_exactly_sharing_a_room(p, event):
    # live: the rooms joined on connect, plus every KPI site room it may subscribe to
    joined = set(rooms_of(p)) | {
        site_room(p.tenant_id, s) for s in SITES if p.sites is None or s in p.sites
    }
    assert visible(p, event) == bool(joined & set(rooms_for(event)))
    assert p.can_see(event) == visible(p, event)


@given(principals, events())
def test_never_another_tenant_nor_a_site_it_may_not_see(p, event):
    if visible(p, event):
        assert event["tenant_id"] == p.tenant_id
        assert p.sites is None or event.get("site_id") in (None, *p.sites)
    assert all(room.split(":")[1] == event["tenant_id"] for room in rooms_for(event))


def _escalation(tenant: str, site: str | None, n: int) -> dict:
    event = {
        "id": None,
        "type": "escalation",
        "tenant_id": tenant,
        "timestamp": "2026-11-25T10:00:00Z",
        "incident_id": f"E-{n}",
        "level": 1,
        "targets": [{"user": "carol"}],
        "oncall": False,
        "target_users": ["carol"],
        "target_roles": [],
    }
    if site:
        event["site_id"] = site
    return event


async def test_an_escalation_of_another_site_reaches_a_restricted_user_nowhere(
    daemon, base_url, token
):
    """carol may see s1 only. Escalations naming her for incidents at s2 (the attack: a
    user room every connection joins) must not reach her live, in replay or over HTTP;
    the one for s1 and the tenant-wide one must (the positive twin)."""
    tenant = new_tenant()
    carol = token(tenant, "carol", ["oncall"], sites=["s1"])
    client = await NodeClient.start(base_url, carol, ["websocket"])
    publish = daemon._publisher.publish
    try:
        await client.connected()
        for n, site in enumerate(["s2", "s1", None]):
            await publish(_escalation(tenant, site, n), f"esc-{tenant}-{n}")
        got = await client.wait_count(lambda m: m.get("name") == "escalation", 2)
        await asyncio.sleep(0.5)
        assert {e["data"]["incident_id"] for e in got} == {"E-1", "E-2"}
        assert len(client.events("escalation")) == 2
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{base_url}/api/v1/notifications",
                params={"since": "0-0", "types": "escalation"},
                headers={"Authorization": f"Bearer {carol}"},
            ) as r,
        ):
            polled = [e["incident_id"] for e in (await r.json())["notifications"]]
        assert polled == ["E-1", "E-2"]
    finally:
        await client.close()
    again = await NodeClient.start(
        base_url, auth={"token": carol, "last_id": "1-0"}, transports=["polling"]
    )
    try:
        await again.wait_for(lambda m: m.get("name") == "sync_complete")
        assert [e["incident_id"] for e in again.events("escalation")] == ["E-1", "E-2"]
    finally:
        await again.close()
