"""The one holder of the config in force (`notify_core.in_force`): swapped whole, kept on a
refused reload, read through views; a part built on a view sees a reload at once (the
suppression store's decisions follow a swapped `suppression.yaml` with nothing mutated)."""

from __future__ import annotations

from operator import attrgetter
from typing import NamedTuple

from notify_core.in_force import InForce, fixed
from notify_core.suppression.config import Suppression
from notify_core.suppression.policy import Notice, Window
from notify_core.suppression.store import SuppressionStore


class Files(NamedTuple):
    rules: str
    policies: tuple[str, ...]


def test_a_swap_is_seen_by_every_view_and_a_refusal_keeps_what_is_in_force():
    holder = InForce(Files("v1 rules", ("p1",)))
    rules, policies = holder.view(attrgetter("rules")), holder.view(attrgetter("policies"))
    assert (rules.current, policies(), rules.generation) == ("v1 rules", ("p1",), 0)

    holder.swap(Files("v2 rules", ("p1", "p2")))
    assert (rules.current, policies(), rules.generation) == ("v2 rules", ("p1", "p2"), 1)
    assert rules.last_error is None

    holder.refuse("thresholds.yaml:3: kpis.temp_c.warning: not a number ('hot')")
    assert (rules.current, policies.generation) == ("v2 rules", 1)  # kept
    assert rules.last_error is not None and "temp_c" in rules.last_error

    holder.swap(Files("v3 rules", ()))
    assert (rules.current, rules.generation, rules.last_error) == ("v3 rules", 2, None)


def test_fixed_is_a_view_no_reload_changes():
    view = fixed(["only"])
    assert view() == ["only"] and view.current == ["only"] and view.generation == 0


def test_suppression_decisions_follow_a_reloaded_file():
    """A maintenance window added by a reload quiets the site's alerts at once, and
    removing it again lets them through; the store is never told, it reads the view."""
    now = 1_800_000_000.0
    window = Window("night", "t1", frozenset({"s1"}), starts_at=now - 60, ends_at=now + 3600)
    holder = InForce(Suppression())
    store = SuppressionStore(None, config=holder.view(lambda s: s))
    notice = Notice("t1", "INC-1", "s1", "major")

    assert store.mutes(notice, now) is None  # positive twin: nothing quiets it yet
    holder.swap(Suppression(windows=(window,)))
    muted = store.mutes(notice, now)
    assert muted is not None and (muted.by, muted.id) == ("maintenance", "night")
    assert store.mutes(notice._replace(site_id="s2"), now) is None  # another site
    holder.swap(Suppression())
    assert store.mutes(notice, now) is None
