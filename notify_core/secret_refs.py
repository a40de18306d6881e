"""Secrets by reference: a config file names the environment variable or the file that
holds a secret (`*_env`, `*_file`), never the secret itself, and the value is read when
it is used, so a rotated file or variable is picked up without a reload. Used by the
receivers' webhook URLs and routing keys and by the inbound integrations' keys."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, StringConstraints

EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


def read_secret(source: tuple[str, str], environ: Mapping[str, str] | None = None) -> str | None:
    """The secret a reference (`("env", NAME)` or `("file", PATH)`) names, read now."""
    kind, name = source
    if kind == "env":
        value = (os.environ if environ is None else environ).get(name)
        return value.strip() if value else None
    try:
        return Path(name).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def describe_missing(source: tuple[str, str]) -> str:
    """What `check-config` says of a reference that cannot be read."""
    where = "environment variable" if source[0] == "env" else "file"
    return f"{where} {source[1]!r} is unset or empty"


class KeyByReference(BaseModel):
    """A credential of an inbound caller (an integration, a heartbeat): `key_env` or
    `key_file`, read when a request is checked."""

    key_env: EnvName | None = None
    key_file: str | None = None

    def key_source(self) -> tuple[str, str]:
        return ("env", self.key_env) if self.key_env else ("file", self.key_file or "")

    def key(self) -> str | None:
        """The secret, read now; None when it cannot be read (or none is named)."""
        if self.key_env is None and self.key_file is None:
            return None
        return read_secret(self.key_source())
