"""Property-based tests of the pure threshold evaluator, clock passed in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from notify_core.thresholds.rules import Rule
from notify_core.thresholds.rules_file import parse_rules
from pipeline.thresholds import AlertState, evaluate, stale

ABOVE = Rule("temp", "temp", "above", warning=45.0, critical=55.0, clear=40.0)


def run(rule: Rule, samples: list[tuple[float, float]]) -> list:
    state, out = None, []
    for now, value in samples:
        state, transitions = evaluate(rule, state, value, now)
        out.extend(transitions)
    return out


def series(values: list[float], step: float = 10.0) -> list[tuple[float, float]]:
    return [(1000.0 + i * step, v) for i, v in enumerate(values)]


@given(st.lists(st.floats(min_value=-100, max_value=44.99), max_size=80))
def test_a_value_that_never_crosses_never_alerts(values):
    assert run(ABOVE, series(values)) == []


@given(st.integers(min_value=1, max_value=50), st.floats(min_value=45, max_value=54.9))
def test_a_sustained_crossing_fires_exactly_once(n, value):
    transitions = run(ABOVE, series([10.0] + [value] * n))
    assert [t.level for t in transitions] == ["warning"]
    assert transitions[0].previous == "ok" and transitions[0].value == value


@given(st.lists(st.floats(min_value=40.0, max_value=54.9), min_size=1, max_size=60))
def test_oscillation_inside_the_hysteresis_band_does_not_flap(band):
    # fire once, then wander between clear (40) and critical: never clears, never re-fires
    transitions = run(ABOVE, series([50.0, *band]))
    assert [t.level for t in transitions] == ["warning"]


@given(st.lists(st.sampled_from([20.0, 47.0, 60.0, 41.0, 30.0]), max_size=100))
def test_episodes_alternate_fire_and_clear(values):
    levels = [t.level for t in run(ABOVE, series(values))]
    # every clear follows a firing; firing levels only go up within an episode
    episode: list[str] = []
    for level in levels:
        if level == "ok":
            assert episode, "a clear without a firing"
            episode = []
        else:
            assert not episode or (episode[-1] == "warning" and level == "critical")
            episode.append(level)


@given(st.floats(min_value=1, max_value=600), st.integers(min_value=0, max_value=40))
@settings(max_examples=200)
def test_for_holds_the_alert_pending(for_s, steps):
    rule = Rule("r", "k", "above", warning=45.0, critical=None, clear=45.0, for_s=for_s)
    step = 10.0
    transitions = run(rule, series([10.0] + [50.0] * steps, step))
    sustained = (steps - 1) * step  # from the first crossing sample to the last
    if steps and sustained >= for_s:
        assert [t.level for t in transitions] == ["warning"]
        fired_at = transitions[0].since
        assert fired_at - (1000.0 + step) >= for_s
    else:
        assert transitions == []


@given(st.floats(min_value=1, max_value=300), st.integers(min_value=1, max_value=40))
@settings(max_examples=200)
def test_keep_firing_for_suppresses_early_clears(keep, steps):
    rule = Rule("r", "k", "above", warning=45.0, critical=None, clear=40.0, keep_firing_for_s=keep)
    step = 10.0
    transitions = run(rule, series([50.0] + [30.0] * steps, step))
    cleared = [t for t in transitions if t.level == "ok"]
    if (steps - 1) * step >= keep:
        assert len(cleared) == 1
    else:
        assert cleared == []


def test_a_blip_back_into_the_band_restarts_keep_firing_for():
    rule = Rule("r", "k", "above", warning=45.0, critical=None, clear=40.0, keep_firing_for_s=30)
    levels = [t.level for t in run(rule, series([50, 30, 30, 42, 30, 30, 30, 30], 10))]
    assert levels == ["warning", "ok"]


def test_below_rule_and_escalation_and_incident_flags():
    rule = Rule("avail", "avail", "below", warning=99.0, critical=95.0, clear=99.5)
    transitions = run(rule, series([99.9, 98.0, 94.0, 96.0, 99.2, 99.8]))
    assert [(t.level, t.previous) for t in transitions] == [
        ("warning", "ok"),
        ("critical", "firing:warning"),
        ("ok", "firing:critical"),
    ]
    assert [t.raises_incident for t in transitions] == [False, True, False]
    assert [t.resolves_incident for t in transitions] == [False, False, True]
    assert transitions[1].record()["threshold"] == 95.0


def test_no_data_and_back():
    rule = Rule("r", "k", "above", warning=45.0, critical=None, clear=45.0, stale_after_s=60)
    state, _ = evaluate(rule, None, 10.0, 1000.0)
    assert stale(rule, state, last_seen_wall=1000.0, now_wall=1030.0) is None
    gone = stale(rule, state, last_seen_wall=1000.0, now_wall=1061.0)
    assert gone is not None and gone.level == "no_data" and gone.previous == "ok"
    state2, back = evaluate(rule, state, 11.0, 1200.0)
    assert [(t.level, t.previous) for t in back] == [("ok", "no_data")]
    assert AlertState.from_dict(state2.to_dict()) == state2


def test_order_of_overrides_is_respected():
    rules = parse_rules("""
kpis:
  temp: {direction: above, warning: 45, critical: 55, clear: 40, unit: C}
overrides:
  - tenant: acme
    site: s1
    kpis: {temp: {critical: 70}}
  - tenant: acme
    kpis: {temp: {warning: 50, critical: 60}}
""")
    assert rules.effective("other", "s1", "temp").critical == 55  # type: ignore[union-attr]
    tenant = rules.effective("acme", "s2", "temp")
    assert (tenant.warning, tenant.critical, tenant.rule_id) == (50, 60, "acme/temp")  # type: ignore[union-attr]
    site = rules.effective("acme", "s1", "temp")
    assert (site.warning, site.critical, site.rule_id) == (50, 70, "acme/s1/temp")  # type: ignore[union-attr]
    assert site.unit == "C"  # type: ignore[union-attr]
    assert rules.effective("acme", "s1", "unknown_kpi") is None
