"""The rotation maths (escalation/oncall/rotation.py): pure, the instant passed in.

Explicit cases for the days the contract names (spring forward, fall back, `only` across
midnight, overrides splitting a shift), and properties over random layers and instants:
the shift list and who-is-on-call agree everywhere, and nothing changes before `until`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.oncall.rotation import (
    Override,
    boundary,
    next_change,
    shifts,
    users_at,
    wall_to_instant,
)
from escalation.oncall.schedule import Schedule, parse_schedules
from notify_core.config_yaml import ConfigInvalid

BERLIN = ZoneInfo("Europe/Berlin")


def schedule(layers: str, zone: str = "Europe/Berlin") -> Schedule:
    text = f"schedules:\n  - name: s\n    tenant: t\n    timezone: {zone}\n    layers:\n{layers}"
    return parse_schedules(text)[("t", "s")]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


DAILY = """\
      - {name: days, users: [a, b, c], shift: 1d, start: 2026-03-27T02:30}
"""


def test_spring_forward_a_missing_wall_time_is_the_end_of_the_gap():
    s = schedule(DAILY)
    layer, zone = s.layers[0], s.zone
    # 2026-03-29 in Berlin: 02:00 -> 03:00; 02:30 does not exist
    assert boundary(layer, zone, 2) == local(2026, 3, 29, 3, 0)
    assert boundary(layer, zone, 3) == local(2026, 3, 30, 2, 30)
    assert boundary(layer, zone, 2) - boundary(layer, zone, 1) == timedelta(hours=23, minutes=30)
    assert users_at(s, [], utc(2026, 3, 29, 0, 59)) == ["b"]  # 01:59 local
    assert users_at(s, [], utc(2026, 3, 29, 1, 0)) == ["c"]  # 03:00 local: ends exclusive


def test_fall_back_an_ambiguous_wall_time_is_its_first_occurrence():
    s = schedule("      - {name: d, users: [a, b], shift: 1d, start: 2026-10-24T02:30}\n")
    # 2026-10-25 in Berlin: 03:00 -> 02:00; 02:30 happens twice, first at 00:30 UTC
    assert boundary(s.layers[0], s.zone, 1) == utc(2026, 10, 25, 0, 30)
    assert users_at(s, [], utc(2026, 10, 25, 0, 29)) == ["a"]
    assert users_at(s, [], utc(2026, 10, 25, 1, 30)) == ["b"]  # the second 02:30: still b
    # that day lasts 25 hours
    assert boundary(s.layers[0], s.zone, 2) - boundary(s.layers[0], s.zone, 1) == timedelta(
        hours=25
    )
    assert wall_to_instant(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)


def test_before_start_nobody_and_the_first_user_starts_the_rotation():
    s = schedule(DAILY)
    assert users_at(s, [], utc(2026, 3, 27, 1, 29)) == []
    assert users_at(s, [], utc(2026, 3, 27, 1, 30)) == ["a"]
    assert next_change(s, [], utc(2026, 3, 26)) == utc(2026, 3, 27, 1, 30)


NIGHTS_OVER_DAYS = """\
      - {name: days, users: [a], shift: 7d, start: 2026-12-01T00:00}
      - name: nights
        users: [n]
        shift: 7d
        start: 2026-12-01T00:00
        only: {days: [fri], from: "20:00", to: "06:00"}
"""


def test_only_window_crossing_midnight_belongs_to_the_day_it_starts():
    s = schedule(NIGHTS_OVER_DAYS)
    assert users_at(s, [], local(2026, 12, 4, 19, 59)) == ["a"]  # Friday evening
    assert users_at(s, [], local(2026, 12, 4, 20, 0)) == ["n"]  # the higher layer wins
    assert users_at(s, [], local(2026, 12, 5, 5, 59)) == ["n"]  # Saturday morning
    assert users_at(s, [], local(2026, 12, 5, 6, 0)) == ["a"]
    assert users_at(s, [], local(2026, 12, 5, 20, 30)) == ["a"]  # Saturday night: not in
    assert users_at(s, [], local(2026, 12, 4, 3, 0)) == ["a"]  # Thursday night: not in
    found = shifts(s, [], local(2026, 12, 4, 12), local(2026, 12, 5, 12))
    assert [(x.user_id, x.source) for x in found] == [("a", "days"), ("n", "nights"), ("a", "days")]
    assert found[1].start == local(2026, 12, 4, 20) and found[1].end == local(2026, 12, 5, 6)


def test_overrides_split_a_shift_and_add_a_user():
    s = schedule("      - {name: week, users: [a], shift: 7d, start: 2026-12-01T00:00}\n")
    swap = Override("o1", "s", "b", local(2026, 12, 3, 12), local(2026, 12, 3, 18), "a")
    extra = Override("o2", "s", "c", local(2026, 12, 3, 16), local(2026, 12, 3, 20))
    assert users_at(s, [swap], local(2026, 12, 3, 13)) == ["b"]
    assert users_at(s, [swap, extra], local(2026, 12, 3, 17)) == ["b", "c"]
    assert users_at(s, [swap, extra], local(2026, 12, 3, 19)) == ["a", "c"]
    found = shifts(s, [swap, extra], local(2026, 12, 3), local(2026, 12, 4))
    assert [(x.user_id, x.source, x.start, x.end) for x in found] == [
        ("a", "week", local(2026, 12, 3), local(2026, 12, 3, 12)),
        ("b", "override", local(2026, 12, 3, 12), local(2026, 12, 3, 18)),
        ("c", "override", local(2026, 12, 3, 16), local(2026, 12, 3, 20)),
        ("a", "week", local(2026, 12, 3, 18), local(2026, 12, 4)),
    ]
    # a swap for someone not on call changes nothing
    other = Override("o3", "s", "b", local(2026, 12, 3), local(2026, 12, 4), "zed")
    assert users_at(s, [other], local(2026, 12, 3, 13)) == ["a"]


def test_one_user_layers_merge_into_one_shift():
    s = schedule("      - {name: solo, users: [a], shift: 1d, start: 2026-12-01T00:00}\n")
    found = shifts(s, [], local(2026, 12, 2), local(2026, 12, 9))
    assert len(found) == 1 and found[0].start == local(2026, 12, 2)
    assert next_change(s, [], local(2026, 12, 3)) is None


def test_invalid_schedules_name_file_line_schedule_and_field():
    text = """\
schedules:
  - name: bad
    tenant: t
    timezone: Mars/Olympus
    layers:
      - name: l
        users: [a]
        shift: 30m
        start: 2026-12-07T08:00+03:00
        only: {days: [funday], from: "25:00"}
"""
    with pytest.raises(ConfigInvalid) as err:
        parse_schedules(text, "oncall.yaml")
    message = str(err.value)
    assert "oncall.yaml:4: schedule bad: timezone: not an IANA timezone" in message
    assert "layers.0.shift: a shift lasts at least 1h" in message
    assert "layers.0.start: a wall time in the schedule's timezone" in message
    assert "layers.0.only.days.0" in message and "layers.0.only.from" in message
    good = text.replace("Mars/Olympus", "UTC").replace("30m", "8h").replace("+03:00", "")
    good = good.replace("funday", "mon").replace("25:00", "08:00")
    assert ("t", "bad") in parse_schedules(good)


# -- properties ------------------------------------------------------------------------
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Africa/Nairobi", "UTC"]
layer_spec = st.fixed_dictionaries(
    {
        "users": st.lists(st.sampled_from("abcde"), min_size=1, max_size=4),
        "hours": st.sampled_from([1, 8, 12, 24, 48, 168]),
        "start_day": st.integers(0, 300),
        "start_min": st.integers(0, 24 * 60 - 1).map(lambda m: m - m % 15),
        "only": st.one_of(
            st.none(),
            st.tuples(
                st.lists(st.sampled_from(["mon", "wed", "fri", "sun"]), min_size=1, unique=True),
                st.integers(0, 23),
                st.integers(0, 23),
            ),
        ),
    }
)


def build(zone: str, specs: list[dict]) -> Schedule:
    layers = ""
    for i, spec in enumerate(specs):
        start = datetime(2026, 1, 1) + timedelta(days=spec["start_day"], minutes=spec["start_min"])
        layers += (
            f"      - name: l{i}\n        users: [{', '.join(spec['users'])}]\n"
            f"        shift: {spec['hours']}h\n        start: {start.isoformat()}\n"
        )
        if spec["only"]:
            days, h1, h2 = spec["only"]
            window = f'days: [{", ".join(days)}], from: "{h1:02}:00", to: "{h2:02}:00"'
            layers += f"        only: {{{window}}}\n"
    return schedule(layers, zone)


instants = st.integers(0, 400 * 24 * 60).map(lambda m: utc(2026, 1, 1) + timedelta(minutes=m))


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    specs=st.lists(layer_spec, min_size=1, max_size=3),
    at=instants,
    probes=st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=8),
)
def test_shifts_and_who_now_agree(zone, specs, at, probes):
    s = build(zone, specs)
    end = at + timedelta(days=3)
    found = shifts(s, [], at, end)
    for minutes in probes:
        t = at + timedelta(minutes=minutes)
        if t >= end:
            continue
        covering = sorted({x.user_id for x in found if x.start <= t < x.end})
        assert covering == sorted(users_at(s, [], t)), t
    for x in found:
        assert at <= x.start < x.end <= end


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), specs=st.lists(layer_spec, min_size=1, max_size=3), at=instants)
def test_nothing_changes_before_until(zone, specs, at):
    s = build(zone, specs)
    until = next_change(s, [], at)
    now = users_at(s, [], at)
    if until is None:
        return
    assert until > at
    assert users_at(s, [], until) != now
    span = until - at
    for fraction in (0.25, 0.5, 0.99):
        assert users_at(s, [], at + span * fraction) == now


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    spec=layer_spec,
    k=st.integers(0, 500),
)
def test_boundaries_are_wall_clock_and_increasing(zone, spec, k):
    s = build(zone, [{**spec, "only": None}])
    layer, tz = s.layers[0], s.zone
    first, second = boundary(layer, tz, k), boundary(layer, tz, k + 1)
    assert first < second
    wall = first.astimezone(tz).replace(tzinfo=None)
    expected = layer.start + k * layer.shift
    # on the wall clock, unless that wall time fell into a DST gap (then just after it)
    assert wall == expected or (expected < wall <= expected + timedelta(hours=1))


@settings(max_examples=40, deadline=None)
@given(zone=st.sampled_from(ZONES), specs=st.lists(layer_spec, min_size=1, max_size=2), at=instants)
def test_the_current_shift_runs_from_the_previous_change_to_the_next(zone, specs, at):
    from escalation.oncall.rotation import previous_change

    s = build(zone, specs)
    now = users_at(s, [], at)
    since = previous_change(s, [], at)
    if since is not None:
        assert since <= at and users_at(s, [], since) == now
        assert users_at(s, [], since - timedelta(seconds=1)) != now
