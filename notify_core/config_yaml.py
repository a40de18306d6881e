"""The one YAML loader of the operator config files, and their one error format.

thresholds.yaml, escalation.yaml and suppression.yaml are read here: the values and the
line of every key and item in one parse (`yaml.compose`, then the values built from the
same node), duplicate keys and unknown top-level keys found, and pydantic's errors turned
into `file:line: <kind> <name>: <field>: <message> (got <value>)`. `check-config`,
`explain`, `backtest` and every reload use these loaders, so an error reads the same
wherever it is met.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    line: int | None
    rule: str
    field: str
    message: str
    kind: str = "rule"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.kind} {self.rule}: {self.field}: {self.message}"


class ConfigInvalid(ValueError):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class YamlLines:
    """Line numbers of every mapping key and sequence item, by path."""

    def __init__(self) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        self.duplicates: list[tuple[tuple[Any, ...], int]] = []

    def walk(self, node: yaml.Node, path: tuple[Any, ...] = ()) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    self.duplicates.append(((*path, key), key_node.start_mark.line + 1))
                seen.add(key)
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                self.walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, (*path, i))

    def line(self, path: tuple[Any, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def read_text(path: Path, kind: str) -> str:
    """The file's text, or ConfigInvalid naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigInvalid(
            [ConfigProblem(str(path), None, "-", "-", f"cannot read: {exc}", kind)]
        ) from None


@dataclass
class Parsed:
    """A config file's values (a mapping), the lines of its keys, and what is already wrong."""

    data: dict[str, Any]
    lines: YamlLines
    problems: list[ConfigProblem]


def parse_yaml(
    text: str,
    name: str,
    kind: str,
    allowed: Iterable[str],
    top_hint: str,
    duplicate: Callable[[tuple[Any, ...]], tuple[str, str]] | None = None,
) -> Parsed:
    """One parse: values and lines. Invalid YAML or a top level that is not a mapping
    raise; duplicate keys and unknown top-level keys are problems to report with the rest.
    `duplicate(path)`: the (name, message) a duplicate key is reported with."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigInvalid(
            [ConfigProblem(name, line, "-", "-", f"invalid YAML: {exc}", kind)]
        ) from None
    lines = YamlLines()
    data: Any = {}
    if node is not None:
        lines.walk(node)
        data = yaml.SafeLoader(text).construct_document(node)
    problems = []
    for path, line in lines.duplicates:
        label, message = (
            duplicate(path)
            if duplicate
            else ("/".join(map(str, path[:-1])) or "-", "duplicate key")
        )
        problems.append(ConfigProblem(name, line, label, str(path[-1]), message, kind))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigInvalid(
            [*problems, ConfigProblem(name, 1, "-", "-", f"top level must be {top_hint}", kind)]
        )
    allowed = tuple(allowed)
    for key in sorted(set(data) - set(allowed), key=str):
        problems.append(
            ConfigProblem(
                name,
                lines.line((key,)),
                "-",
                str(key),
                f"unknown key; expected {', '.join(allowed)}",
                kind,
            )
        )
    return Parsed(data, lines, problems)


def validation_problems(
    exc: ValidationError,
    name: str,
    lines: YamlLines,
    at: tuple[Any, ...],
    label: str,
    kind: str,
    aliases: dict[str, str] | None = None,
) -> list[ConfigProblem]:
    """pydantic's errors of the item at path `at`, each with its line, field and value."""
    out = []
    for err in exc.errors():
        loc = [(aliases or {}).get(str(p), p) for p in err["loc"]]
        field = ".".join(str(p) for p in loc) or "-"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        if "(got " not in msg:
            msg += f" (got {err.get('input')!r:.80})"
        line = lines.line((*at, *loc)) or lines.line(at)
        out.append(ConfigProblem(name, line, label, field, msg, kind))
    return out


def parse_items(
    text: str,
    name: str,
    kind: str,
    top: str,
    model: type[M],
    key: Callable[[M], Any],
    check: Callable[[M], list[tuple[str, str]]] | None = None,
    aliases: dict[str, str] | None = None,
    label_field: str = "name",
) -> list[M]:
    """A file of `version: 1` and one list (`top`) of items, each validated with `model`:
    the items in order, or ConfigInvalid naming file, line, item and field of every
    problem. `key(item)`: what must be unique (a repeat is a duplicate of `label_field`,
    which also names the item in messages); `check(item)`: further (field, message)
    problems of a valid item."""
    parsed = parse_yaml(text, name, kind, ("version", top), "a mapping")
    data, lines, problems = parsed.data, parsed.lines, parsed.problems
    if data.get("version", 1) != 1:
        problems.append(
            ConfigProblem(name, lines.line(("version",)), "-", "version", "must be 1", kind)
        )
    raw = data.get(top) or []
    if not isinstance(raw, list):
        problems.append(ConfigProblem(name, lines.line((top,)), "-", top, "must be a list", kind))
        raw = []
    out: list[M] = []
    seen: set[Any] = set()
    for i, item in enumerate(raw):
        at = (top, i)
        label = str(item.get(label_field, f"{top}[{i}]")) if isinstance(item, dict) else f"[{i}]"
        try:
            spec = model.model_validate(item)
        except ValidationError as exc:
            problems += validation_problems(exc, name, lines, at, label, kind, aliases)
            continue
        if key(spec) in seen:
            line = lines.line((*at, label_field))
            message = f"duplicate {label_field}"
            problems.append(ConfigProblem(name, line, label, label_field, message, kind))
            continue
        found = check(spec) if check is not None else []
        for field, message in found:
            path = tuple(int(p) if p.isdigit() else p for p in field.split("."))
            line = lines.line((*at, *path)) or lines.line(at)
            problems.append(ConfigProblem(name, line, label, field, message, kind))
        if not found:
            seen.add(key(spec))
            out.append(spec)
    if problems:
        raise ConfigInvalid(problems)
    return out
