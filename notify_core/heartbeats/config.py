"""Load and validate `heartbeats.yaml`: sources that must keep saying they are alive.

```yaml
version: 1
heartbeats:
  - name: nms-west               # incident heartbeat:nms-west when it goes quiet
    tenant: acme
    kind: http                   # POST /api/v1/heartbeats/acme/nms-west?key=<secret>
    key_env: NMS_WEST_HEARTBEAT  # or key_file (never the key itself)
    timeout: 5m
    severity: critical
  - name: site-17-kpis
    tenant: acme
    kind: kpi                    # any KPI sample of the tenant (and site, when given)
    site_id: s-17
    timeout: 15m
```

Errors name file, line, heartbeat and field, as the other config files do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, field_validator, model_validator

from notify_core.config_yaml import parse_items, read_text
from notify_core.secret_refs import KeyByReference, describe_missing
from notify_core.thresholds.rules import parse_duration
from notify_core.wire.events import Ident, Severity

HEARTBEATS_FILE = "heartbeats.yaml"
KIND = "heartbeat"
MIN_TIMEOUT_S = 1.0


class Heartbeat(KeyByReference):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Ident
    tenant: Ident
    kind: Literal["http", "kpi"]
    timeout: float
    severity: Severity = "critical"
    site_id: Ident | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds < MIN_TIMEOUT_S:
            raise ValueError(f"at least {MIN_TIMEOUT_S:.0f}s (got {value!r})")
        return seconds

    @model_validator(mode="after")
    def _key(self) -> Heartbeat:
        named = (self.key_env is not None) + (self.key_file is not None)
        if self.kind == "http" and named != 1:
            raise ValueError("kind http: name exactly one of key_env, key_file (never the key)")
        if self.kind == "kpi" and named:
            raise ValueError("kind kpi takes no key: KPI samples are its pings")
        return self

    @property
    def incident_id(self) -> str:
        return f"heartbeat:{self.name}"


class Heartbeats(dict[tuple[str, str], Heartbeat]):
    """The file's heartbeats by (tenant, name) (an empty one when there is no file)."""

    def of_tenant(self, tenant: str) -> list[Heartbeat]:
        return [h for (t, _), h in self.items() if t == tenant]


def load_heartbeats(path: Path) -> Heartbeats:
    return parse_heartbeats(read_text(path, KIND), str(path))


def _key_readable(spec: Heartbeat) -> list[tuple[str, str]]:
    if spec.kind != "http" or spec.key() is not None:
        return []
    source = spec.key_source()
    return [(f"key_{source[0]}", describe_missing(source))]


def parse_heartbeats(text: str, name: str = HEARTBEATS_FILE) -> Heartbeats:
    items = parse_items(
        text, name, KIND, "heartbeats", Heartbeat, lambda h: (h.tenant, h.name), _key_readable
    )
    return Heartbeats(((h.tenant, h.name), h) for h in items)
