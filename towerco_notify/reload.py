"""Reload the operator config on file change (watchfiles) and on request (SIGHUP, which
the process owner - the CLI - routes here): thresholds.yaml, escalation.yaml and
suppression.yaml together.

Everything that can fail is built before anything is swapped (Alertmanager's reloader):
an invalid file is refused, every rule, policy and window in force stays, the error is
logged with file, line and field, and `notify_config_reloads_total{result="invalid"}` rises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from watchfiles import awatch

from escalation.config import ESCALATION_FILE, load_policies
from escalation.policy import Policy
from notify_core import metrics
from notify_core.config_yaml import ConfigInvalid
from notify_core.rules import THRESHOLDS_FILE, RuleSet
from notify_core.rules_file import load_rules
from notify_core.rules_holder import RulesHolder
from notify_core.suppression_config import SUPPRESSION_FILE, Suppression, load_suppression

log = logging.getLogger(__name__)

WATCHED = (THRESHOLDS_FILE, ESCALATION_FILE, SUPPRESSION_FILE)


def load_config(config_dir: Path) -> tuple[RuleSet, list[Policy], Suppression]:
    """All three files, validated (a missing one is empty); raises ConfigInvalid naming
    every problem of every file."""
    problems = []
    rules, policies, suppression = (
        RuleSet(source=str(config_dir / THRESHOLDS_FILE)),
        [],
        Suppression(),
    )
    for name in WATCHED:
        path = config_dir / name
        if not path.exists():
            continue
        try:
            if name == THRESHOLDS_FILE:
                rules = load_rules(path)
            elif name == ESCALATION_FILE:
                policies = load_policies(path)
            else:
                suppression = load_suppression(path)
        except ConfigInvalid as exc:
            problems += exc.problems
    if problems:
        raise ConfigInvalid(problems)
    return rules, policies, suppression


class ConfigReloader:
    def __init__(
        self,
        holder: RulesHolder,
        on_policies: Callable[[list[Policy]], None] | None = None,
        on_suppression: Callable[[Suppression], None] | None = None,
        watch: bool = True,
        tell: Callable[[str, str | None], None] | None = None,
    ) -> None:
        """`tell(result, reason)`: each reload for the audit trail (`config_reload`)."""
        self._tell = tell
        self.holder = holder
        self.config_dir = holder.path.parent
        self._on_policies = on_policies
        self._on_suppression = on_suppression
        self._watch = watch
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def reload(self, why: str) -> bool:
        try:
            rules, policies, suppression = load_config(self.config_dir)
        except ConfigInvalid as exc:
            self.holder.last_error = str(exc)
            metrics.CONFIG_RELOADS.labels("invalid").inc()
            log.error("config reload (%s) refused, what is in force stays:\n%s", why, exc)
            if self._tell is not None:
                self._tell("refused", str(exc.problems[0]) if exc.problems else why)
            return False
        self.holder.swap(rules)
        if self._on_policies is not None:
            self._on_policies(policies)
        if self._on_suppression is not None:
            self._on_suppression(suppression)
        metrics.CONFIG_RELOADS.labels("ok").inc()
        if self._tell is not None:
            self._tell("ok", None)
        log.info(
            "config reloaded (%s): thresholds generation %d, %d policies, %d windows",
            why,
            self.holder.generation,
            len(policies),
            len(suppression.windows),
        )
        return True

    async def start(self) -> None:
        if self._watch and self.config_dir.is_dir():
            self._task = asyncio.create_task(self._run(), name="config-watch")

    async def _run(self) -> None:
        targets = {(self.config_dir / name).resolve() for name in WATCHED}
        while not self._stop.is_set():
            try:
                async for changes in awatch(
                    self.config_dir.resolve(), stop_event=self._stop, debounce=200, step=50
                ):
                    if any(path_matches(p, targets) for _, p in changes):
                        self.reload("file changed")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("config watcher failed; retrying in 5s")
                await asyncio.sleep(5)

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def path_matches(changed: str, targets: set[Path]) -> bool:
    """Is `changed` (a path watchfiles reported) one of the config files?"""
    return Path(changed).resolve() in targets
