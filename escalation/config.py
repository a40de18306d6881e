"""Load and validate `escalation.yaml`; every error names file, line, policy and field."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from escalation.policy import Policy
from escalation.targets import secret_problems
from notify_core.rules import ConfigInvalid, ConfigProblem, YamlLines

ESCALATION_FILE = "escalation.yaml"


def _problem(file: str, line: int | None, policy: str, field: str, message: str) -> ConfigProblem:
    return ConfigProblem(file, line, policy, field, message, kind="policy")


def load_policies(path: Path) -> list[Policy]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigInvalid([_problem(str(path), None, "-", "-", f"cannot read: {exc}")]) from None
    return parse_policies(text, str(path))


def parse_policies(
    text: str, name: str = ESCALATION_FILE, environ: Mapping[str, str] | None = None
) -> list[Policy]:
    """Validate a policies file; a receiver's secret must be readable now (`environ`,
    default the process environment), or the file is refused like any other error."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigInvalid([_problem(name, line, "-", "-", f"invalid YAML: {exc}")]) from None
    lines = YamlLines()
    if node is not None:
        lines.walk(node)
    problems = [
        _problem(name, line, "/".join(map(str, path[:-1])) or "-", str(path[-1]), "duplicate key")
        for path, line in lines.duplicates
    ]
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigInvalid(
            [_problem(name, 1, "-", "-", "top level must be a mapping with 'policies'")]
        )
    for key in sorted(set(data) - {"version", "policies"}, key=str):
        problems.append(
            _problem(
                name, lines.line((key,)), "-", str(key), "unknown key; expected version, policies"
            )
        )
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
            for err in exc.errors():
                loc = [p for p in err["loc"]]
                field = ".".join(str(p) for p in loc) or "-"
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "unknown field"
                if "(got " not in msg:
                    msg += f" (got {err.get('input')!r})"
                problems.append(
                    _problem(name, lines.line(("policies", i, *loc)), str(label), field, msg)
                )
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
