"""A run of notifications that `MessageHandler.handle_batch` publishes together.

Between two messages that must go alone (a threshold transition, which raises or
resolves incidents in between), the notifications of a fetch are collected here,
stored with one history call, emitted in input order, and only then followed by what
each message does after its notification is stored (alert-state writes, escalation
timers). A source is what a dead letter needs if that message fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from notify_core.history.store import Dedupe
from notify_core.wire import events
from notify_core.wire.events import KpiMessage
from pipeline.publisher import Item

After = Callable[[], Awaitable[Any]]
Source = tuple[str, bytes | None, int | None, int | None]  # topic, raw, partition, offset
Step = tuple[After | None, Source]


class Single:
    """One message: its notification (if any) and what follows it."""

    __slots__ = ("_item", "steps")

    def __init__(self, item: Item | None, after: After | None, source: Source) -> None:
        self._item = item
        self.steps: list[Step] = [(after, source)]

    def item(self) -> Item | None:
        return self._item


class KpiGroup:
    """One `kpi_update`: a quiet sample, or the quiet samples of one site coalesced
    (latest value per KPI; timestamp, dedupe and Kafka time of the newest). It takes the
    place of its newest sample in the run, so the KPI updates of a partition reach the
    history in offset order (what a `SourcePosition` dedupe needs)."""

    __slots__ = ("_firing", "_key", "_msg", "_ts", "steps", "values")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.steps: list[Step] = []

    def add(
        self,
        msg: KpiMessage,
        key: Dedupe,
        ts_ms: int | None,
        after: After | None,
        source: Source,
        firing: bool,
    ) -> None:
        self._msg, self._key, self._ts, self._firing = msg, key, ts_ms, firing
        if not self.steps:
            self.values = msg.payload  # copied by kpi_update, or below once merged
        else:
            if len(self.steps) == 1:
                self.values = dict(self.values)
            self.values.update(msg.payload)
        self.steps.append((after, source))

    def item(self) -> Item:
        return events.kpi_update(self._msg, self.values, None, self._firing), self._key, self._ts


Entry = Single | KpiGroup


class Run:
    """Entries in arrival order (a coalesced KPI update at its newest sample's place);
    with `coalesce`, one KpiGroup per site."""

    def __init__(self, coalesce: bool) -> None:
        self.coalesce = coalesce
        self._entries: dict[int, Entry] = {}  # insertion-ordered; a group moves to the end
        self._sites: dict[tuple[str, str], KpiGroup] = {}

    def add(self, item: Item | None, after: After | None, source: Source) -> None:
        entry = Single(item, after, source)
        self._entries[id(entry)] = entry
        self._sites.clear()  # later samples must not be folded into updates before this

    def add_kpi(
        self,
        msg: KpiMessage,
        key: Dedupe,
        ts_ms: int | None,
        after: After | None,
        source: Source,
        firing: bool,
    ) -> None:
        """`firing`: a rule of the site fires after this sample (`kpi_data.threshold_breach`)."""
        group = self._sites.get((msg.tenant_id, msg.site_id)) if self.coalesce else None
        if group is None:
            group = KpiGroup()
            if self.coalesce:
                self._sites[(msg.tenant_id, msg.site_id)] = group
        else:  # to the end: after every sample before this one
            del self._entries[id(group)]
        self._entries[id(group)] = group
        group.add(msg, key, ts_ms, after, source, firing)

    def take(self) -> list[Entry]:
        entries = list(self._entries.values())
        self._entries.clear()
        self._sites.clear()
        return entries
