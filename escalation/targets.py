"""Who a level pages: the `targets:` entries of `escalation.yaml`.

Beside the rooms (`oncall`, `user`, `role`), the people on call by schedule (`schedule`,
`site_oncall`: resolved when the level fires) and the signed `webhook`, the receivers that
reach someone away from the screen: `email`, `slack`, `teams`, `pagerduty` and `webpush`.
Their secrets (chat webhook URLs, PagerDuty routing keys) are never written in the file:
a target names the environment variable or the file that holds them (`url_env`,
`url_file`, `routing_key_env`, `routing_key_file`); `secret_problems` says which are
missing (check-config and every load report them with file, line, policy and field),
and the value is read only when a page is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator

from notify_core.redact import url_origin
from notify_core.secret_refs import EnvName, describe_missing, read_secret
from notify_core.wire.events import Ident

_EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"not an email address (got {value!r})")
    return value


Email = Annotated[str, AfterValidator(_email)]
RECEIVER_TYPES = ("email", "slack", "teams", "pagerduty", "webpush", "webhook")


class _Ref(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UrlRef(_Ref):
    """Where a chat incoming-webhook URL is kept: an environment variable or a file."""

    url_env: EnvName | None = None
    url_file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> UrlRef:
        if (self.url_env is None) == (self.url_file is None):
            raise ValueError("name exactly one of url_env, url_file (never the URL itself)")
        return self

    def source(self) -> tuple[str, str]:
        return ("env", self.url_env) if self.url_env else ("file", self.url_file or "")


class KeyRef(_Ref):
    """Where a PagerDuty Events v2 routing key is kept."""

    routing_key_env: EnvName | None = None
    routing_key_file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> KeyRef:
        if (self.routing_key_env is None) == (self.routing_key_file is None):
            raise ValueError("name exactly one of routing_key_env, routing_key_file")
        return self

    def source(self) -> tuple[str, str]:
        if self.routing_key_env:
            return ("env", self.routing_key_env)
        return ("file", self.routing_key_file or "")


class PushRef(_Ref):
    """Whose registered Web Push subscriptions a page goes to."""

    role: Literal["operator", "oncall", "admin"] | None = None
    user: Ident | None = None

    @model_validator(mode="after")
    def _one(self) -> PushRef:
        if (self.role is None) == (self.user is None):
            raise ValueError("name exactly one of role, user")
        return self


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    oncall: bool | None = None
    user: Ident | None = None
    role: Literal["operator", "oncall", "admin"] | None = None
    webhook: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = None
    email: Email | None = None
    slack: UrlRef | None = None
    teams: UrlRef | None = None
    pagerduty: KeyRef | None = None
    webpush: PushRef | None = None
    # resolved when the level fires (escalation/oncall): who is on call in that schedule,
    # or in those whose `covers` holds the incident's site
    schedule: Ident | None = None
    site_oncall: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for kind in ("slack", "teams"):
                if isinstance(data.get(kind), str):
                    raise ValueError(
                        f"{kind}: write {{url_env: VARIABLE}} or {{url_file: PATH}}, not the "
                        "URL: it is a secret and this file is committed "
                        "(got an inline value, not shown)"
                    )
            if isinstance(data.get("pagerduty"), str):
                raise ValueError(
                    "pagerduty: write {routing_key_env: VARIABLE} or {routing_key_file: PATH} "
                    "(got an inline value, not shown)"
                )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        set_fields = [k for k, v in self.model_dump().items() if v not in (None, False)]
        if len(set_fields) != 1:
            raise ValueError(
                "each target names exactly one of oncall, user, role, webhook, email, slack, "
                "teams, pagerduty, webpush, schedule, site_oncall"
            )
        return self

    @property
    def receiver(self) -> str | None:
        """The receiver type that delivers this target away from the rooms, or None."""
        for kind in RECEIVER_TYPES:
            if getattr(self, kind) is not None:
                return kind
        return None

    def describe(self) -> dict[str, Any]:
        """What events and timelines say of this target: a webhook only by its origin
        (its path and query are often the secret), a secret only by where it is kept."""
        described = {
            k: v for k, v in self.model_dump(exclude_none=True).items() if v not in (None, False)
        }
        if "webhook" in described:
            described["webhook"] = url_origin(described["webhook"])
        return described


def secret_problems(
    target: Target, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(field, message) for every secret of `target` that cannot be read now."""
    out = []
    for kind in ("slack", "teams", "pagerduty"):
        ref = getattr(target, kind)
        if ref is None:
            continue
        source = ref.source()
        if read_secret(source, environ) is None:
            field = f"{kind}.{'url' if kind != 'pagerduty' else 'routing_key'}_{source[0]}"
            out.append((field, describe_missing(source)))
    return out
