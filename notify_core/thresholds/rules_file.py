"""Reading `thresholds.yaml` into a `RuleSet`: every error at once, each naming file,
line, rule and field (through the one config loader, `notify_core.config_yaml`).
Used by the pipeline at start and on reload, and by `check-config`, `explain` and
`backtest`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from notify_core.config_yaml import (
    ConfigInvalid,
    ConfigProblem,
    YamlLines,
    parse_yaml,
    read_text,
    validation_problems,
)
from notify_core.thresholds.rules import THRESHOLDS_FILE, RuleFields, RuleSet, complete
from notify_core.wire.events import is_ident


def load_rules(path: Path) -> RuleSet:
    """Load and validate one thresholds file; raise ConfigInvalid with every problem."""
    return parse_rules(read_text(path, "rule"), str(path))


def parse_rules(text: str, name: str = THRESHOLDS_FILE) -> RuleSet:
    parsed = parse_yaml(
        text,
        name,
        "rule",
        ("version", "kpis", "overrides"),
        "a mapping with 'kpis' and optional 'overrides'",
        duplicate=lambda path: (_rule_name(path), "duplicate key (the rule is defined twice)"),
    )
    data, lines, problems = parsed.data, parsed.lines, parsed.problems
    rules = RuleSet(source=name)
    rules.defaults = _parse_layer(data.get("kpis") or {}, ("kpis",), "", name, lines, problems)
    overrides = data.get("overrides") or []
    if not isinstance(overrides, list):
        problems.append(
            ConfigProblem(
                name,
                lines.line(("overrides",)),
                "-",
                "overrides",
                "must be a list of {tenant, site?, kpis}",
            )
        )
        overrides = []
    seen_scopes: dict[tuple[str, str | None], int] = {}
    for i, item in enumerate(overrides):
        path: tuple[Any, ...] = ("overrides", i)
        line = lines.line(path)
        if not isinstance(item, dict):
            problems.append(
                ConfigProblem(
                    name, line, f"overrides[{i}]", "-", "must be a mapping {tenant, site?, kpis}"
                )
            )
            continue
        extra = set(item) - {"tenant", "site", "kpis"}
        for key in sorted(extra, key=str):
            problems.append(
                ConfigProblem(
                    name,
                    lines.line((*path, key)),
                    f"overrides[{i}]",
                    str(key),
                    "unknown key; expected tenant, site, kpis",
                )
            )
        tenant, site = item.get("tenant"), item.get("site")
        if not is_ident(tenant):
            problems.append(
                ConfigProblem(
                    name,
                    lines.line((*path, "tenant")),
                    f"overrides[{i}]",
                    "tenant",
                    f"must be a tenant id (got {tenant!r})",
                )
            )
            continue
        if site is not None and not is_ident(site):
            problems.append(
                ConfigProblem(
                    name,
                    lines.line((*path, "site")),
                    f"overrides[{i}]",
                    "site",
                    f"must be a site id (got {site!r})",
                )
            )
            continue
        scope = f"{tenant}/{site}/" if site else f"{tenant}/"
        if (tenant, site) in seen_scopes:
            problems.append(
                ConfigProblem(
                    name,
                    line,
                    scope.rstrip("/"),
                    "tenant/site",
                    f"duplicate override (first at line {seen_scopes[(tenant, site)]})",
                )
            )
            continue
        seen_scopes[(tenant, site)] = line or 0
        layer = _parse_layer(item.get("kpis") or {}, (*path, "kpis"), scope, name, lines, problems)
        if site:
            rules.sites[(tenant, site)] = layer
        else:
            rules.tenants[tenant] = layer
    # every effective combination must itself be a valid rule
    for (tenant, site), layer in [((t, None), v) for t, v in rules.tenants.items()] + [
        (k, v) for k, v in rules.sites.items()
    ]:
        for kpi in layer:
            merged = {**rules.defaults.get(kpi, {}), **rules.tenants.get(tenant, {}).get(kpi, {})}
            if site:
                merged.update(layer[kpi])
            scope = f"{tenant}/{site}/{kpi}" if site else f"{tenant}/{kpi}"
            _, errs = complete(kpi, scope, merged)
            idx = _override_index(overrides, tenant, site)
            for fld, msg in errs:
                problems.append(
                    ConfigProblem(
                        name,
                        lines.line(("overrides", idx, "kpis", kpi, _alias(fld))),
                        scope,
                        _alias(fld),
                        msg + " (after merging defaults and overrides)",
                    )
                )
    for kpi, fields in rules.defaults.items():
        _, errs = complete(kpi, kpi, fields)
        for fld, msg in errs:
            problems.append(
                ConfigProblem(name, lines.line(("kpis", kpi, _alias(fld))), kpi, _alias(fld), msg)
            )
    if problems:
        raise ConfigInvalid(_unique(problems))
    return rules


def _parse_layer(
    raw: Any,
    path: tuple[Any, ...],
    scope: str,
    name: str,
    lines: YamlLines,
    problems: list[ConfigProblem],
) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        problems.append(
            ConfigProblem(
                name,
                lines.line(path),
                scope or "-",
                path[-1],
                "must be a mapping of KPI name to rule",
            )
        )
        return {}
    layer: dict[str, dict[str, Any]] = {}
    for kpi, body in raw.items():
        rule_name = f"{scope}{kpi}"
        if not is_ident(kpi):
            problems.append(
                ConfigProblem(
                    name,
                    lines.line((*path, kpi)),
                    str(rule_name),
                    "-",
                    "KPI name must be 1-64 of [A-Za-z0-9_.-]",
                )
            )
            continue
        if not isinstance(body, dict):
            problems.append(
                ConfigProblem(
                    name, lines.line((*path, kpi)), rule_name, "-", "must be a mapping of fields"
                )
            )
            continue
        try:
            layer[kpi] = RuleFields.model_validate(body).set_fields()
        except ValidationError as exc:
            problems += validation_problems(exc, name, lines, (*path, kpi), rule_name, "rule")
    return layer


def _alias(fld: str) -> str:
    return "for" if fld == "for_" else fld


def _override_index(overrides: list[Any], tenant: str, site: str | None) -> int:
    for i, item in enumerate(overrides):
        if isinstance(item, dict) and item.get("tenant") == tenant and item.get("site") == site:
            return i
    return 0


def _rule_name(path: tuple[Any, ...]) -> str:
    return "/".join(str(p) for p in path)


def _unique(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out
