"""People: each user's contact methods and personal notification rules, and where they live.

A contact method (`email`, `sms`, `voice`, `slack`, `webpush`) is paged only once verified
(a 6-digit code sent through it; five wrong codes lock it for an hour) and while not
disabled. Rules say when each method is tried after a page: `default`, and `important`
for critical incidents when it is not empty; with no rules, every verified method at once.

`plan` (pure) turns a user's methods and rules into (method, delay) pairs for one page.
The store is one Redis hash per tenant (`people:{tenant}`, fields `cm:<user>:<id>` and
`rules:<user>`), memory in the embedded mode.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

from notify_core.bounded import Bounded
from notify_core.redis.keys import RedisKeys
from notify_core.redis.shared_hashes import shared_hashes

MethodType = Literal["email", "sms", "voice", "slack", "webpush"]
METHOD_TYPES: tuple[MethodType, ...] = ("email", "sms", "voice", "slack", "webpush")
MAX_WRONG_CODES = 5
LOCK_S = 3600.0
CODE_TTL_S = 15 * 60.0
MAX_AFTER_S = 24 * 3600.0
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}$")
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ContactMethod:
    id: str
    user_id: str
    type: str
    value: str
    verified: bool = False
    disabled: bool = False
    code_sha256: str | None = None  # the pending verification code, hashed
    code_expires: float = 0.0
    wrong_codes: int = 0
    locked_until: float = 0.0

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "value": self.value,
            "verified": self.verified,
            "disabled": self.disabled,
        }

    @property
    def pageable(self) -> bool:
        return self.verified and not self.disabled

    def with_code(self, now: float) -> tuple[ContactMethod, str]:
        code = f"{secrets.randbelow(10**6):06d}"
        return replace(self, code_sha256=_digest(code), code_expires=now + CODE_TTL_S), code

    def check(self, code: str, now: float) -> tuple[ContactMethod, str]:
        """(the method after the attempt, `ok` | `wrong` | `locked` | `expired`)."""
        if self.locked_until > now:
            return self, "locked"
        if self.code_sha256 is None or self.code_expires <= now:
            return self, "expired"
        if hmac.compare_digest(_digest(code.strip()), self.code_sha256):
            return replace(self, verified=True, code_sha256=None, wrong_codes=0), "ok"
        wrong = self.wrong_codes + 1
        if wrong >= MAX_WRONG_CODES:
            return replace(
                self, wrong_codes=0, locked_until=now + LOCK_S, code_sha256=None
            ), "locked"
        return replace(self, wrong_codes=wrong), "wrong"


@dataclass(frozen=True, slots=True)
class Rule:
    after_s: float
    contact_method_id: str


@dataclass(frozen=True, slots=True)
class Rules:
    default: tuple[Rule, ...] = ()
    important: tuple[Rule, ...] = ()

    def view(self) -> dict[str, list[dict[str, Any]]]:
        def one(r: Rule) -> dict[str, Any]:
            return {"after": _duration(r.after_s), "contact_method_id": r.contact_method_id}

        return {
            "default": [one(r) for r in self.default],
            "important": [one(r) for r in self.important],
        }


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0 and seconds:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def plan(
    methods: list[ContactMethod], rules: Rules, critical: bool
) -> list[tuple[ContactMethod, float]]:
    """Which methods a page tries, and after how long (s): the `important` rules for a
    critical incident when there are any, else `default`; no rules: every pageable
    method at once. Rules naming a method that is not pageable are skipped."""
    by_id = {m.id: m for m in methods if m.pageable}
    chosen = rules.important if critical and rules.important else rules.default
    if not chosen:
        return [(m, 0.0) for m in by_id.values()]
    return [(by_id[r.contact_method_id], r.after_s) for r in chosen if r.contact_method_id in by_id]


class PeopleStore:
    """One shared hash per tenant (`cm:<user>:<id>`, `rules:<user>`, `profile:<user>`)
    and one index of Slack users (who a Slack button acts as)."""

    def __init__(self, redis: Redis | None, prefix: str = "") -> None:
        self._hashes = shared_hashes(redis)
        self._keys = RedisKeys(prefix)
        # the profile last written per (tenant, user): a token used again writes nothing
        self._profiles: Bounded[tuple[str, str], bytes] = Bounded(100_000)

    def _key(self, tenant: str) -> str:
        return self._keys.tenant("people", tenant)

    async def _get(self, tenant: str, field: str) -> bytes | None:
        return await self._hashes.get(self._key(tenant), field)

    async def _set(self, tenant: str, field: str, value: bytes) -> None:
        await self._hashes.put(self._key(tenant), field, value)

    async def methods(self, tenant: str, user: str) -> list[ContactMethod]:
        prefix = f"cm:{user}:"
        table = await self._hashes.fields(self._key(tenant))
        out = [ContactMethod(**orjson.loads(v)) for k, v in table.items() if k.startswith(prefix)]
        return sorted(out, key=lambda m: m.id)

    async def method(self, tenant: str, user: str, ident: str) -> ContactMethod | None:
        raw = await self._get(tenant, f"cm:{user}:{ident}")
        return ContactMethod(**orjson.loads(raw)) if raw else None

    async def put_method(self, tenant: str, method: ContactMethod) -> None:
        await self._set(tenant, f"cm:{method.user_id}:{method.id}", orjson.dumps(asdict(method)))
        if method.type == "slack" and method.pageable:  # who a Slack button acts as
            owner = orjson.dumps([tenant, method.user_id])
            await self._hashes.put(self._keys.shared("people-slack"), method.value, owner)

    async def disable_number(self, number: str) -> int:
        """`STOP` from a phone: every sms method of that number, in every tenant, disabled;
        how many."""
        tables = []
        async for name in self._hashes.keys(f"{self._keys.prefix}people:"):
            tenant = name.split("{", 1)[1].split("}", 1)[0]
            tables.append((tenant, await self._hashes.fields(name)))
        stopped = 0
        for tenant, table in tables:
            for field, raw in table.items():
                if not field.startswith("cm:"):
                    continue
                method = ContactMethod(**orjson.loads(raw))
                if method.type == "sms" and method.value == number and not method.disabled:
                    await self.put_method(tenant, replace(method, disabled=True))
                    stopped += 1
        return stopped

    async def seen(self, p: Any) -> None:
        """Record the roles and sites of the token a user last used (a Principal): paging
        and every action taken from a page follow them."""
        sites = sorted(p.sites) if p.sites is not None else None
        view = orjson.dumps({"roles": sorted(p.roles), "sites": sites})
        key = (p.tenant_id, p.user_id)
        if self._profiles.get(key) == view:
            return
        self._profiles.put(key, view)
        await self._set(p.tenant_id, f"profile:{p.user_id}", view)

    async def sites_of(self, tenant: str, user: str) -> frozenset[str] | None:
        """The sites `user` may see by their last token; None: every site (or never seen:
        an admin named them in a schedule or policy)."""
        raw = await self._get(tenant, f"profile:{user}")
        if not raw:
            return None
        sites = orjson.loads(raw).get("sites")
        return frozenset(sites) if sites is not None else None

    async def by_slack(self, slack_user: str) -> tuple[str, str] | None:
        """(tenant, user) whose verified `slack` method holds this Slack user id."""
        raw = await self._hashes.get(self._keys.shared("people-slack"), slack_user)
        if not raw:
            return None
        tenant, user = orjson.loads(raw)
        method_ok = [
            m for m in await self.methods(tenant, user)
            if m.type == "slack" and m.value == slack_user and m.pageable
        ]  # fmt: skip
        return (tenant, user) if method_ok else None  # removed or disabled since

    async def delete_method(self, tenant: str, user: str, ident: str) -> bool:
        return await self._hashes.remove(self._key(tenant), f"cm:{user}:{ident}")

    async def rules(self, tenant: str, user: str) -> Rules:
        raw = await self._get(tenant, f"rules:{user}")
        if not raw:
            return Rules()
        data = orjson.loads(raw)
        return Rules(
            tuple(Rule(r["after_s"], r["id"]) for r in data.get("default", [])),
            tuple(Rule(r["after_s"], r["id"]) for r in data.get("important", [])),
        )

    async def put_rules(self, tenant: str, user: str, rules: Rules) -> None:
        data = {
            "default": [{"after_s": r.after_s, "id": r.contact_method_id} for r in rules.default],
            "important": [
                {"after_s": r.after_s, "id": r.contact_method_id} for r in rules.important
            ],
        }
        await self._set(tenant, f"rules:{user}", orjson.dumps(data))

    async def throttled(self, tenant: str, user: str, kind: str, limit: int, window_s: int) -> bool:
        """Count one page of `kind` to `user`; True when over `limit` in the window."""
        bucket = int(time.time() // window_s)
        key = self._keys.tenant("people-throttle", tenant, f"{user}:{kind}:{bucket}")
        return await self._hashes.count(key, window_s * 2) > limit
