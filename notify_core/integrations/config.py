"""Load and validate `integrations.yaml`: systems that send alerts over HTTP instead of
writing to Kafka (Prometheus Alertmanager, Grafana, any tool that can call a URL).

```yaml
version: 1
integrations:
  - name: prom-west              # the URL: POST /api/v1/integrations/prom-west/alerts
    tenant: acme
    kind: alertmanager           # or generic
    key_env: PROM_WEST_KEY       # or key_file: /run/secrets/prom-west (never the key itself)
    site_label: site_id          # alertmanager: the label that names the site
    default_severity: major      # a severity label that is not one of ours
```

Errors name file, line, integration and field, as the other config files do. The key is
read when a request is checked (`Integration.key()`), so a rotated file is picked up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, model_validator

from notify_core.config_yaml import parse_items, read_text
from notify_core.secret_refs import KeyByReference, describe_missing
from notify_core.wire.events import Ident, Severity

INTEGRATIONS_FILE = "integrations.yaml"
KIND = "integration"


class Integration(KeyByReference):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Ident
    tenant: Ident
    kind: Literal["alertmanager", "generic"]
    site_label: str = "site_id"
    default_severity: Severity = "major"

    @model_validator(mode="after")
    def _one_key(self) -> Integration:
        if (self.key_env is None) == (self.key_file is None):
            raise ValueError("name exactly one of key_env, key_file (never the key itself)")
        return self


class Integrations(dict[str, Integration]):
    """The file's integrations by name (an empty one when there is no file)."""


def load_integrations(path: Path) -> Integrations:
    return parse_integrations(read_text(path, KIND), str(path))


def parse_integrations(text: str, name: str = INTEGRATIONS_FILE) -> Integrations:
    def key_readable(spec: Integration) -> list[tuple[str, str]]:
        if spec.key() is not None:
            return []
        source = spec.key_source()
        return [(f"key_{source[0]}", describe_missing(source))]

    items = parse_items(
        text, name, KIND, "integrations", Integration, lambda i: i.name, key_readable
    )
    return Integrations((i.name, i) for i in items)
