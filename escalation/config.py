"""Load and validate `escalation.yaml`; every error names file, line, policy and field."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from escalation.policy import Policy
from escalation.targets import secret_problems
from notify_core.config_yaml import (
    ConfigInvalid,
    ConfigProblem,
    parse_yaml,
    read_text,
    validation_problems,
)

ESCALATION_FILE = "escalation.yaml"


def _problem(file: str, line: int | None, policy: str, field: str, message: str) -> ConfigProblem:
    return ConfigProblem(file, line, policy, field, message, kind="policy")


def load_policies(path: Path) -> list[Policy]:
    return parse_policies(read_text(path, "policy"), str(path))


def parse_policies(
    text: str, name: str = ESCALATION_FILE, environ: Mapping[str, str] | None = None
) -> list[Policy]:
    """Validate a policies file; a receiver's secret must be readable now (`environ`,
    default the process environment), or the file is refused like any other error."""
    parsed = parse_yaml(text, name, "policy", ("version", "policies"), "a mapping with 'policies'")
    data, lines, problems = parsed.data, parsed.lines, parsed.problems
    raw = data.get("policies") or []
    if not isinstance(raw, list):
        raise ConfigInvalid(
            [
                *problems,
                _problem(
                    name, lines.line(("policies",)), "-", "policies", "must be a list of policies"
                ),
            ]
        )
    policies: list[Policy] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        label = item.get("name", f"policies[{i}]") if isinstance(item, dict) else f"policies[{i}]"
        try:
            policy = Policy.model_validate(item)
        except ValidationError as exc:
            problems += validation_problems(exc, name, lines, ("policies", i), str(label), "policy")
            continue
        if policy.name in seen:
            problems.append(
                _problem(
                    name,
                    lines.line(("policies", i, "name")),
                    policy.name,
                    "name",
                    f"duplicate policy (first at line {seen[policy.name]})",
                )
            )
            continue
        seen[policy.name] = lines.line(("policies", i)) or 0
        for li, level in enumerate(policy.levels):
            for ti, target in enumerate(level.targets):
                for field, message in secret_problems(target, environ):
                    at = ("policies", i, "levels", li, "targets", ti, field.split(".")[0])
                    problems.append(
                        _problem(
                            name,
                            lines.line(at),
                            policy.name,
                            f"levels.{li}.targets.{ti}.{field}",
                            message,
                        )
                    )
        policies.append(policy)
    if problems:
        raise ConfigInvalid(problems)
    return policies
