"""Handoff notices (escalation/oncall/handoff.py): the incoming people hear what they
inherit, once per change however many processes watch; the clock is passed in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from escalation.oncall.directory import OnCallDirectory
from escalation.oncall.handoff import HandoffWatch
from escalation.oncall.overrides import OverrideStore
from escalation.oncall.schedule import parse_schedules
from notify_core.sites_config import Inventory
from notify_core.state.incidents import IncidentState, MemoryIncidentStore

SCHEDULES = parse_schedules("""\
schedules:
  - name: north
    tenant: t
    timezone: UTC
    covers: {sites: [s-1]}
    layers:
      - {name: hourly, users: [amina, brian], shift: 1h, start: 2026-12-07T00:00}
""")
T0 = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)


async def _incidents() -> MemoryIncidentStore:
    store = MemoryIncidentStore()
    await store.put(
        "t", "IN-1", IncidentState("s-1", "critical", "acknowledged", title="Mains lost")
    )
    await store.put("t", "IN-2", IncidentState("s-9", "major", "open", title="Elsewhere"))
    return store


@pytest.fixture(params=["memory", "redis"])
async def watches(request, redis_client):
    redis = redis_client if request.param == "redis" else None
    prefix = f"handoff-{uuid.uuid4().hex[:6]}:"
    incidents = await _incidents()
    told: list[tuple[str, str, str]] = []

    async def tell(tenant: str, user: str, subject: str, text: str) -> int:
        told.append((user, subject, text))
        return 1

    def make() -> HandoffWatch:
        directory = OnCallDirectory(lambda: SCHEDULES, OverrideStore(redis, prefix))
        return HandoffWatch(lambda: SCHEDULES, directory, incidents, Inventory, tell, redis, prefix)

    # two processes on Redis; in memory one process (it has no one to share with)
    first = make()
    yield (first, make() if redis is not None else first), told


async def test_the_incoming_person_is_told_what_they_inherit_once(watches):
    (one, other), told = watches
    assert await one.tick(T0) == 0 and told == []  # the first look only records
    later = T0 + timedelta(hours=1)  # brian's shift
    results = [await one.tick(later), await other.tick(later)]
    assert sorted(results) == [0, 1]  # told once, by whichever watch came first
    [(user, subject, text)] = told
    assert user == "brian" and subject == "You are on call now: north"
    assert "IN-1 [acknowledged, critical] Mains lost" in text  # what the schedule covers
    assert "IN-2" not in text  # not its site
    assert await one.tick(later + timedelta(minutes=5)) == 0  # no change, nothing more
    assert await one.tick(later + timedelta(hours=1)) == 1 and told[-1][0] == "amina"
