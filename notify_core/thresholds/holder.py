"""The threshold rules in force: loaded at start (`towerco_notify.config_files`), swapped
whole on a valid reload, kept on an invalid one (the pipeline reads `current` per message)."""

from __future__ import annotations

from pathlib import Path

from notify_core.thresholds.rules import RuleSet


class RulesHolder:
    """The rules in force; swapped whole on a valid reload, kept on an invalid one."""

    def __init__(self, path: Path, rules: RuleSet | None = None) -> None:
        self.path = path
        self.current = rules if rules is not None else RuleSet(source=str(path))
        self.generation = 0
        self.last_error: str | None = None

    def swap(self, rules: RuleSet) -> None:
        """Put validated rules in force (the reloader validates every file first)."""
        self.current = rules
        self.generation += 1
        self.last_error = None
