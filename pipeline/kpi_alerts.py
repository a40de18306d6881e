"""KPI updates through the threshold rules: fetch state, call the pure evaluator, publish.

Alert state per (tenant, site, KPI) lives in a Faust table (changelog-backed), so a
restarted worker neither re-alerts nor forgets a firing alert. A local cache holds
the hot copy; the table is written when the state changes, and otherwise at most
every `persist_every_s` (last-seen times only matter to the staleness sweep).
Publishing happens before the state is written: a crash in between replays the
message, and the history's dedupe drops what was already published.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from notify_core.history.store import Dedupe
from notify_core.in_force import View
from notify_core.obs import metrics
from notify_core.state.incidents import IncidentState, IncidentStore, epoch_ms
from notify_core.suppression.policy import Notice, suppression_fields
from notify_core.suppression.store import SuppressionStore
from notify_core.thresholds.rules import Rule, RuleSet
from notify_core.wire import events
from notify_core.wire.events import IncidentPayload, KpiMessage, Origin
from pipeline.listener import IncidentListener
from pipeline.publisher import Publisher
from pipeline.thresholds import LAST_SEEN, AlertState, Transition, evaluate, stale

log = logging.getLogger(__name__)

ENGINE_USER = "threshold-engine"
MAX_CACHED_SITES = 100_000


class Assessment:
    """What one KPI message did to the alert states (one per message: a plain class,
    cheaper to create than a dataclass with default factories)."""

    __slots__ = ("firing", "records", "transitions", "writes")

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []  # threshold_breach entries
        self.transitions: list[Transition] = []
        self.writes: list[tuple[str, dict[str, Any]]] = []  # table updates
        self.firing = False  # a rule of the site fires after this message


class StateStore(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: dict[str, Any], partition: int | None = None) -> None:
        """`partition`: the source message's, for stores partitioned like the input."""

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]: ...


class DictStore:
    """A StateStore in a dict (tests, and any engine without Faust)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def set(self, key: str, value: dict[str, Any], partition: int | None = None) -> None:
        self.data[key] = value

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return iter(list(self.data.items()))


def incident_id_for(tenant: str, site: str, kpi: str) -> str:
    """Stable per (tenant, site, KPI): one incident per breach episode, deduped."""
    digest = hashlib.blake2b(f"{tenant}/{site}/{kpi}".encode(), digest_size=8).hexdigest()
    return f"thr-{digest}"


class KpiAlerts:
    def __init__(
        self,
        rules: View[RuleSet],
        states: StateStore,
        publisher: Publisher,
        incidents: IncidentStore,
        persist_every_s: float = 30.0,
        listener: IncidentListener | None = None,
        suppression: SuppressionStore | None = None,
    ) -> None:
        self.suppression = suppression
        self.listener = listener
        self.rules = rules
        self.states = states
        self.publisher = publisher
        self.incidents = incidents
        self.persist_every_s = persist_every_s
        self._cache: dict[str, tuple[AlertState, float, float]] = {}  # state, seen, persisted
        self._stale_reported: set[str] = set()
        # per (tenant, site): KPI name -> its rule and state key, for the rules in force
        self._sites: dict[tuple[str, str], dict[str, tuple[Rule, str]]] = {}
        self._sites_for: RuleSet | None = None
        # per (tenant, site): the KPIs whose rule is firing (`kpi_data.threshold_breach`)
        self._firing: dict[tuple[str, str], set[str]] = {}
        # the input partition of each state this worker wrote, and the partitions it holds
        # now (None: all, no consumer group): a state of a partition that moved away is
        # another worker's to sweep, whatever copy the table still holds here
        self._partition_of: dict[str, int] = {}
        self._held: frozenset[int] | None = None

    def partitions_revoked(self) -> None:
        """A rebalance took this worker's partitions: what it remembers of their states
        may be stale when they come back (another worker moved them on meanwhile), so it
        is forgotten and read again from the table, which recovery brings up to date."""
        self._cache.clear()
        self._firing.clear()
        self._stale_reported.clear()
        self._held = frozenset()

    def partitions_assigned(self, partitions: frozenset[int]) -> None:
        """The input partitions this worker holds after a rebalance."""
        self._held = partitions

    def _site_rules(self, rules: RuleSet, tenant: str, site: str) -> dict[str, tuple[Rule, str]]:
        """The rules of one site's KPIs resolved so far (filled by `assess`); forgotten when
        the rules are reloaded. Only KPIs that have a rule are kept, so a producer's
        made-up KPI names cannot grow it."""
        if rules is not self._sites_for:
            self._sites, self._sites_for = {}, rules
        found = self._sites.get((tenant, site))
        if found is None:
            found = {}
            if len(self._sites) < MAX_CACHED_SITES:
                self._sites[(tenant, site)] = found
        return found

    def _state(self, key: str) -> tuple[AlertState | None, float, float]:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        raw = self.states.get(key)
        state = AlertState.from_dict(raw)
        seen = float(raw.get("seen_wall", 0.0)) if raw else 0.0
        return state, seen, seen

    def assess(self, msg: KpiMessage, wall: float | None = None) -> Assessment:
        """Evaluate every KPI of one message against its rule; the hot cache moves on at
        once (the next message of the same KPI sees this state), the table is written
        by `conclude`, after the message's event is published. `wall`: the time it was
        received (a batch shares one reading)."""
        tenant, site = msg.tenant_id, msg.site_id
        rules = self.rules.current
        now = msg.timestamp.timestamp()
        wall = time.time() if wall is None else wall
        a = Assessment()
        cache, stale_reported = self._cache, self._stale_reported
        known = self._site_rules(rules, tenant, site)
        firing = self._firing.get((tenant, site))
        for name, value in msg.payload.items():
            cls = value.__class__  # is_kpi_number, inlined: once per KPI sample
            if cls is not float and cls is not int:
                continue  # a flag or label riding along, never evaluated
            entry = known.get(name)
            if entry is None:
                rule = rules.effective(tenant, site, name)
                if rule is None:
                    continue
                entry = known[name] = (rule, f"{tenant}/{site}/{name}")
            rule, skey = entry
            hit = cache.get(skey)
            prev, _, persisted = hit if hit is not None else self._state(skey)
            new, found = evaluate(rule, prev, float(value), now)
            if stale_reported:
                stale_reported.discard(skey)
            if (
                prev is None
                or prev[:LAST_SEEN] != new[:LAST_SEEN]  # all but the last sample's time, value
                or prev.incident_open != new.incident_open
                or (wall - persisted >= self.persist_every_s)
            ):
                a.writes.append((skey, {**new.to_dict(), "seen_wall": wall}))
                persisted = wall
            cache[skey] = (new, wall, persisted)
            if new.state == "firing":
                if firing is None:
                    firing = self._firing[(tenant, site)] = set()
                firing.add(name)
            elif firing:
                firing.discard(name)
            for t in found:
                metrics.THRESHOLD_TRANSITIONS.labels(t.level).inc()
                a.records.append(t.record())
                a.transitions.append(t)
        a.firing = bool(firing)
        return a

    async def conclude(
        self, env: Origin, a: Assessment, key: str, partition: int | None = None
    ) -> None:
        """After the message's event is stored: raise/resolve incidents, write state."""
        for t in a.transitions:
            if t.raises_incident:
                await self._raise(env, t, key)
            elif t.resolves_incident:
                await self._resolve(env.tenant_id, env.site_id or "", t, key, env.timestamp)
        await self.persist(a, partition)

    async def persist(self, a: Assessment, partition: int | None = None) -> None:
        """Write the alert states a quiet sample moved (what `conclude` does when the
        message has no transitions)."""
        for skey, value in a.writes:
            self.states.set(skey, value, partition)
            if partition is not None:
                self._partition_of[skey] = partition

    async def finish(
        self,
        msg: KpiMessage,
        a: Assessment,
        key: str,
        ts_ms: int | None,
        partition: int | None,
        dedupe: Dedupe,
    ) -> str | None:
        """Publish the message's `kpi_update` (with its breaches; deduped by `dedupe`), then
        `conclude` (its incidents' dedupe keys derive from `key`)."""
        event_id = await self.publisher.publish(
            events.kpi_update(msg, msg.payload, a.records or None, a.firing), dedupe, ts_ms
        )
        await self.conclude(msg, a, key, partition)
        return event_id

    async def _raise(self, env: Origin, t: Transition, key: str) -> None:
        rule, site = t.rule, env.site_id or ""
        incident_id = incident_id_for(env.tenant_id, site, rule.kpi)
        title = (
            f"{rule.description or rule.kpi}: {t.value:g}{rule.unit} (critical at "
            f"{rule.critical:g}{rule.unit})"
        )
        payload = IncidentPayload(
            incident_id=incident_id,
            title=title[:500],
            severity="critical",
            description=f"Threshold rule {rule.rule_id} fired critical at site {site}.",
            source="threshold",
            rule_id=rule.rule_id,
            kpi=rule.kpi,  # type: ignore[call-arg]
        )
        await self.incidents.put(
            env.tenant_id,
            incident_id,
            IncidentState(
                site, "critical", "open", title=title[:500], opened_at_ms=epoch_ms(env.timestamp)
            ),
        )
        event = events.incident_alert(env, payload)
        if self.suppression is not None:
            notice = Notice(env.tenant_id, incident_id, site, "critical", rule.kpi, "threshold")
            event.update(suppression_fields(self.suppression.mutes(notice)))
        await self.publisher.publish(event, f"{key}/raise/{rule.kpi}")
        if self.listener is not None:
            await self.listener.on_alert(env.tenant_id, incident_id, site, "critical", title)

    async def _resolve(self, tenant: str, site: str, t: Transition, key: str, ts: datetime) -> None:
        incident_id = incident_id_for(tenant, site, t.rule.kpi)
        known = await self.incidents.get(tenant, incident_id)
        if known is not None and known.status == "resolved":
            return
        resolved = (
            replace(known, status="resolved", resolved_at_ms=epoch_ms(ts))
            if known is not None
            else IncidentState(site, "critical", "resolved", epoch_ms(ts))
        )
        await self.incidents.put(tenant, incident_id, resolved)
        event = events.incident_update(tenant, incident_id, "resolved", ENGINE_USER, ts, site)
        await self.publisher.publish(event, f"{key}/resolve/{t.rule.kpi}")
        if self.listener is not None:
            await self.listener.on_action(tenant, incident_id, "resolved", ENGINE_USER)

    async def sweep_stale(self, now_wall: float | None = None) -> int:
        """Report KPIs not seen for their `stale_after` (once per silence); returns count."""
        now_wall = time.time() if now_wall is None else now_wall
        rules = self.rules.current
        seen_keys = set(self._cache)
        candidates: list[tuple[str, AlertState, float]] = [
            (k, s, seen) for k, (s, seen, _) in self._cache.items()
        ]
        held, partition_of = self._held, self._partition_of
        for k, raw in self.states.items():
            moved = partition_of.get(k)
            if held is not None and moved is not None and moved not in held:
                continue  # its partition is another worker's now
            if k not in seen_keys:
                st = AlertState.from_dict(raw)
                if st is not None:
                    candidates.append((k, st, float(raw.get("seen_wall", 0.0))))
        reported = 0
        for skey, state, seen in candidates:
            if skey in self._stale_reported:
                continue
            tenant, site, kpi = skey.split("/", 2)
            rule: Rule | None = rules.effective(tenant, site, kpi)
            if rule is None:
                continue
            t = stale(rule, state, seen, now_wall)
            if t is None:
                continue
            self._stale_reported.add(skey)
            metrics.THRESHOLD_TRANSITIONS.labels("no_data").inc()
            event = events.kpi_no_data(
                tenant,
                site,
                datetime.fromtimestamp(now_wall, UTC),
                t.record(),
                state.state == "firing",
            )
            await self.publisher.publish(event, f"nodata/{skey}/{state.last_seen}")
            reported += 1
        return reported
