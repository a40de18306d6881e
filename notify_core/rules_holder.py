"""The threshold rules in force: loaded at start, swapped whole on a valid reload, kept
on an invalid one (the pipeline reads `current` per message)."""

from __future__ import annotations

from pathlib import Path

from notify_core.config_yaml import ConfigInvalid
from notify_core.rules import THRESHOLDS_FILE, RuleSet
from notify_core.rules_file import load_rules


class RulesHolder:
    """The rules in force; swapped whole on a valid reload, kept on an invalid one."""

    def __init__(self, path: Path, rules: RuleSet | None = None) -> None:
        self.path = path
        self.current = rules if rules is not None else RuleSet(source=str(path))
        self.generation = 0
        self.last_error: str | None = None

    @classmethod
    def from_dir(cls, config_dir: Path) -> RulesHolder:
        """Load at start: a missing file means no rules; an invalid one is fatal."""
        path = config_dir / THRESHOLDS_FILE
        return cls(path, load_rules(path) if path.exists() else None)

    def swap(self, rules: RuleSet) -> None:
        """Put validated rules in force (the reloader validates every file first)."""
        self.current = rules
        self.generation += 1
        self.last_error = None

    def reload(self) -> bool:
        """Load the file again; True if the new rules are in force."""
        try:
            rules = load_rules(self.path) if self.path.exists() else RuleSet(source=str(self.path))
        except ConfigInvalid as exc:
            self.last_error = str(exc)
            return False
        self.current = rules
        self.generation += 1
        self.last_error = None
        return True
