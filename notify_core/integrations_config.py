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

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from notify_core.config_yaml import (
    ConfigInvalid,
    ConfigProblem,
    parse_yaml,
    read_text,
    validation_problems,
)
from notify_core.events import Ident, Severity
from notify_core.secret_refs import EnvName, describe_missing, read_secret

INTEGRATIONS_FILE = "integrations.yaml"
KIND = "integration"


class Integration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Ident
    tenant: Ident
    kind: Literal["alertmanager", "generic"]
    key_env: EnvName | None = None
    key_file: str | None = None
    site_label: str = "site_id"
    default_severity: Severity = "major"

    @model_validator(mode="after")
    def _one_key(self) -> Integration:
        if (self.key_env is None) == (self.key_file is None):
            raise ValueError("name exactly one of key_env, key_file (never the key itself)")
        return self

    def key_source(self) -> tuple[str, str]:
        return ("env", self.key_env) if self.key_env else ("file", self.key_file or "")

    def key(self) -> str | None:
        """The integration's secret, read now; None when it cannot be read."""
        return read_secret(self.key_source())


class Integrations(dict[str, Integration]):
    """The file's integrations by name (an empty one when there is no file)."""


def load_integrations(path: Path) -> Integrations:
    return parse_integrations(read_text(path, KIND), str(path))


def parse_integrations(text: str, name: str = INTEGRATIONS_FILE) -> Integrations:
    parsed = parse_yaml(text, name, KIND, ("version", "integrations"), "a mapping")
    data, lines, problems = parsed.data, parsed.lines, parsed.problems
    if data.get("version", 1) != 1:
        problems.append(
            ConfigProblem(name, lines.line(("version",)), "-", "version", "must be 1", KIND)
        )
    raw = data.get("integrations") or []
    if not isinstance(raw, list):
        line = lines.line(("integrations",))
        problems.append(ConfigProblem(name, line, "-", "integrations", "must be a list", KIND))
        raw = []
    out = Integrations()
    for i, item in enumerate(raw):
        at = ("integrations", i)
        label = str(item.get("name", f"integrations[{i}]")) if isinstance(item, dict) else f"[{i}]"
        try:
            spec = Integration.model_validate(item)
        except ValidationError as exc:
            problems += validation_problems(exc, name, lines, at, label, KIND)
            continue
        if spec.name in out:
            line = lines.line((*at, "name"))
            problems.append(ConfigProblem(name, line, spec.name, "name", "duplicate name", KIND))
            continue
        if spec.key() is None:
            source = spec.key_source()
            line = lines.line((*at, f"key_{source[0]}"))
            field = f"key_{source[0]}"
            problems.append(
                ConfigProblem(name, line, spec.name, field, describe_missing(source), KIND)
            )
            continue
        out[spec.name] = spec
    if problems:
        raise ConfigInvalid(problems)
    return out
