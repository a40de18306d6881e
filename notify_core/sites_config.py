"""The site inventory (`sites.yaml`): names, regions, positions and what each site depends
on (its backhaul: hubs, aggregation sites). Sites not listed still work as before.

```yaml
version: 1
sites:
  - {tenant: acme, id: hub-7, name: Nakuru hub, region: west, lat: -0.30, lon: 36.07}
  - {tenant: acme, id: s-17, name: Njoro tower, region: west, lat: -0.33, lon: 35.94,
     depends_on: [hub-7]}
```

Large inventories load on a fast path: `towerco-notify sites import` writes the file as
JSON (one site per line, after a comment header; JSON is YAML too), read by orjson and
validated as one list by pydantic: 50 000 sites in well under a second, where a YAML
parser takes seconds. A hand-written YAML file goes through libyaml. Only a file with a
problem is parsed again the slow way, to name file, line, site and field of every problem
(unknown parent, cycle, coordinates, duplicates), as the other config files do.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from notify_core.config_yaml import (
    ConfigInvalid,
    ConfigProblem,
    parse_items,
    parse_yaml,
    read_text,
)
from notify_core.wire.events import Ident

SITES_FILE = "sites.yaml"
KIND = "site"
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tenant: Ident
    id: Ident
    name: str = Field(default="", max_length=200)
    region: Ident | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    depends_on: tuple[Ident, ...] = ()

    @model_validator(mode="after")
    def _both(self) -> Site:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give lat and lon both, or neither")
        if self.id in self.depends_on:
            raise ValueError(f"depends_on: a site cannot depend on itself ({self.id})")
        return self

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name or self.id,
            "region": self.region,
            "lat": self.lat,
            "lon": self.lon,
            "depends_on": list(self.depends_on),
        }


_SITES = TypeAdapter(list[Site])


class Inventory:
    """The sites by (tenant, id), and the dependency graph both ways."""

    def __init__(self, sites: Iterable[Site] = ()) -> None:
        self._by: dict[tuple[str, str], Site] = {}
        self._children: dict[tuple[str, str], list[str]] = {}
        for site in sites:
            self._by[(site.tenant, site.id)] = site
            for parent in site.depends_on:
                self._children.setdefault((site.tenant, parent), []).append(site.id)
        self._ancestors: dict[tuple[str, str], tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._by)

    def get(self, tenant: str, site: str | None) -> Site | None:
        return self._by.get((tenant, site)) if site is not None else None

    def region(self, tenant: str, site: str | None) -> str | None:
        found = self.get(tenant, site)
        return found.region if found is not None else None

    def of_tenant(self, tenant: str) -> list[Site]:
        return [s for (t, _), s in self._by.items() if t == tenant]

    def ancestors(self, tenant: str, site: str) -> tuple[str, ...]:
        """Every site `site` depends on, directly or through others, nearest first."""
        key = (tenant, site)
        found = self._ancestors.get(key)
        if found is None:
            site_known = self._by.get(key)
            if site_known is None or not site_known.depends_on:
                return ()  # not cached: ids not in the inventory must not grow the cache
            found = self._ancestors[key] = tuple(self._walk(tenant, site, up=True))
        return found

    def dependents(self, tenant: str, site: str, transitive: bool = True) -> list[str]:
        """The sites that depend on `site` (directly, or also through others)."""
        if not transitive:
            return list(self._children.get((tenant, site), ()))
        return list(self._walk(tenant, site, up=False))

    def _walk(self, tenant: str, site: str, up: bool) -> Iterable[str]:
        seen = {site}
        queue = deque([site])
        while queue:
            current = queue.popleft()
            if up:
                found = self._by.get((tenant, current))
                nexts: Iterable[str] = found.depends_on if found is not None else ()
            else:
                nexts = self._children.get((tenant, current), ())
            for other in nexts:
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
                    yield other


def load_sites(path: Path) -> Inventory:
    return parse_sites(read_text(path, KIND), str(path))


def _fast_load(text: str) -> Any:
    """JSON (after `#` comment lines) by orjson, else YAML by libyaml; None if neither."""
    body = text.lstrip()
    while body.startswith("#"):
        body = body.split("\n", 1)[1].lstrip() if "\n" in body else ""
    if body.startswith("{"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return yaml.load(text, Loader=_Loader)  # a safe loader: C or Python
    except yaml.YAMLError:
        return None


def dump_sites(sites: Iterable[Site], header: str) -> str:
    """The inventory as `sites.yaml` in the form that loads fastest: JSON, a site a line."""
    rows = [orjson.dumps(s.model_dump(exclude_defaults=True)).decode() for s in sites]
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + '{"version": 1, "sites": [\n' + ",\n".join(rows) + "\n]}\n"


def parse_sites(text: str, name: str = SITES_FILE) -> Inventory:
    """The fast path; anything wrong is reported by the slow one (`_problems`)."""
    data = _fast_load(text)
    if isinstance(data, dict) and set(data) <= {"version", "sites"} and data.get("version", 1) == 1:
        raw = data.get("sites") or []
        try:
            sites = _SITES.validate_python(raw) if isinstance(raw, list) else None
        except ValidationError:
            sites = None
        if sites is not None and not graph_problems(sites):
            return Inventory(sites)
    raise ConfigInvalid(_problems(text, name))


def graph_problems(sites: list[Site]) -> list[tuple[int, str, str]]:
    """(index, field, message): duplicates, unknown parents, cycles."""
    out: list[tuple[int, str, str]] = []
    index: dict[tuple[str, str], int] = {}
    for i, site in enumerate(sites):
        if (site.tenant, site.id) in index:
            out.append((i, "id", "duplicate id"))
        else:
            index[(site.tenant, site.id)] = i
    for i, site in enumerate(sites):
        for j, parent in enumerate(site.depends_on):
            if (site.tenant, parent) not in index:
                out.append(
                    (i, f"depends_on.{j}", f"unknown site {parent!r} of tenant {site.tenant}")
                )
    if out:
        return out
    state: dict[tuple[str, str], int] = {}  # 1: on the path, 2: done
    for start in index:
        if state.get(start):
            continue
        stack: list[tuple[tuple[str, str], int]] = [(start, 0)]
        path: list[tuple[str, str]] = []
        while stack:
            key, at = stack.pop()
            if at == 0:
                state[key] = 1
                path.append(key)
            parents = sites[index[key]].depends_on
            if at < len(parents):
                stack.append((key, at + 1))
                nxt = (key[0], parents[at])
                if state.get(nxt) == 1:
                    loop = [*path[path.index(nxt) :], nxt]
                    text = " -> ".join(k[1] for k in loop)
                    out.append((index[key], "depends_on", f"cycle: {text}"))
                elif not state.get(nxt):
                    stack.append((nxt, 0))
                continue
            state[key] = 2
            path.pop()
    return out


def _problems(text: str, name: str) -> list[ConfigProblem]:
    """The slow parse: every problem with its line (raises for YAML or item problems)."""
    items = parse_items(
        text, name, KIND, "sites", Site, lambda s: (s.tenant, s.id), label_field="id"
    )
    lines = parse_yaml(text, name, KIND, ("version", "sites"), "a mapping").lines
    out = []
    for i, field, message in graph_problems(items):
        path = tuple(int(p) if p.isdigit() else p for p in field.split("."))
        line = lines.line(("sites", i, *path)) or lines.line(("sites", i))
        out.append(ConfigProblem(name, line, items[i].id, field, message, KIND))
    return out or [ConfigProblem(name, None, "-", "-", "could not be read", KIND)]
