"""Escalation policy, pure: which policy takes an incident, and what is due when.

No I/O, the clock passed in. A level `i` of cycle `c` is due at

    epoch + c * cycle_length + sum(wait of levels 0..i)

where `epoch` is when the incident opened, or when an acknowledgement timed out
(`ack_timeout`), which starts the chain again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from escalation.targets import Target
from notify_core.thresholds.rules import parse_duration
from notify_core.wire.events import Ident

__all__ = ["EscalationState", "Level", "Match", "Policy", "Step", "Target", "advance"]


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    wait: float = 0.0
    targets: list[Target] = Field(min_length=1)

    @field_validator("wait", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


Severity = Literal["critical", "major", "minor", "warning", "info"]


def _critical_only() -> list[Severity]:
    return ["critical"]


class Match(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    severities: list[Severity] = Field(default_factory=_critical_only, min_length=1)
    tenants: list[Ident] | None = None
    sites: list[Ident] | None = None
    regions: list[Ident] | None = None  # the site's region in sites.yaml


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Ident
    match: Match = Field(default_factory=Match)
    levels: list[Level] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=100)
    ack_timeout: float | None = None
    # storms: incidents of one group (per site) raised within `group_wait` of the first
    # share one chain, whose pages list them all (Alertmanager's group_by / group_wait)
    group_by: list[Literal["site"]] = Field(default_factory=list)
    group_wait: float = 0.0
    # the text of its pages per receiver type (escalation/receivers/page.py)
    templates: dict[str, str] = Field(default_factory=dict)

    @field_validator("templates")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        from escalation.receivers.page import template_problem

        for key, text in value.items():
            problem = template_problem(key, text)
            if problem is not None:
                raise ValueError(f"{key}: {problem}")
        return value

    @field_validator("ack_timeout", "group_wait", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    def group_of(self, site: str | None) -> str | None:
        """The chain id an incident of `site` joins under this policy, None: its own."""
        if not self.group_by:
            return None
        return f"group.{self.name}.{site or '-'}"

    def takes(
        self, tenant: str, site: str | None, severity: str, region: str | None = None
    ) -> bool:
        m = self.match
        return (
            severity in m.severities
            and (m.tenants is None or tenant in m.tenants)
            and (m.sites is None or (site is not None and site in m.sites))
            and (m.regions is None or (region is not None and region in m.regions))
        )

    @property
    def cycle_length(self) -> float:
        return sum(level.wait for level in self.levels)


def select_policy(
    policies: list[Policy],
    tenant: str,
    site: str | None,
    severity: str,
    region: str | None = None,
) -> Policy | None:
    for policy in policies:
        if policy.takes(tenant, site, severity, region):
            return policy
    return None


@dataclass
class EscalationState:
    """What the engine keeps per incident (plain data, stored as a Redis hash)."""

    policy: str
    status: str  # open | acknowledged | snoozed | resolved
    epoch: float  # chain start: opened, re-triggered after ack_timeout, or re-armed
    acked_at: float | None = None
    fired: set[str] = field(default_factory=set)  # Step.key of steps already notified
    site: str | None = None
    title: str = ""
    snoozed_until: float | None = None
    severity: str = ""
    muted: bool = False  # held back by suppression at its last tick
    group: str | None = None  # a member: the group chain it belongs to (no timer of its own)
    members: list[str] = field(default_factory=list)  # a group chain: its incidents, in order


@dataclass(frozen=True)
class Step:
    epoch: float
    cycle: int
    level: int  # 0-based
    due: float

    @property
    def key(self) -> str:
        """Unique per chain run, so each step fires once cluster-wide."""
        return f"{int(self.epoch * 1000)}:{self.cycle}:{self.level}"


def steps(policy: Policy, epoch: float) -> list[Step]:
    out, at = [], epoch
    for cycle in range(policy.repeat + 1):
        for i, level in enumerate(policy.levels):
            at += level.wait
            out.append(Step(epoch, cycle, i, at))
    return out


def advance(
    policy: Policy, state: EscalationState, now: float
) -> tuple[EscalationState, list[Step], float | None]:
    """Apply the clock: re-trigger after ack_timeout, list the steps due now (not yet
    fired), and return when to look again (None: nothing left to do)."""
    if state.status == "resolved":
        return state, [], None
    if state.status == "snoozed":
        until = state.snoozed_until
        if until is not None and now < until:
            return state, [], until  # no level fires while snoozed
        # the snooze ran out: still unacknowledged, the chain starts over from level 1
        state = EscalationState(
            policy.name,
            "open",
            until if until is not None else now,
            None,
            set(),
            state.site,
            state.title,
        )
    if state.status == "acknowledged":
        if policy.ack_timeout is None or state.acked_at is None:
            return state, [], None
        retrigger = state.acked_at + policy.ack_timeout
        if now < retrigger:
            return state, [], retrigger
        state = replace(state, status="open", epoch=retrigger, acked_at=None, fired=set())
    due = [s for s in steps(policy, state.epoch) if s.due <= now and s.key not in state.fired]
    later = [s.due for s in steps(policy, state.epoch) if s.due > now]
    return state, due, (min(later) if later else None)
