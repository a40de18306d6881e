"""JWT -> Principal. Every refusal is one opaque failure to the caller, a reason in logs.

HS256 with the shared secret; RS256 too when a public key is configured. The key is
chosen by the algorithm the server expects for it, never by the token alone, so an
HS256 token signed with the public key (algorithm confusion) or `alg: none` fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from notify_core.events import ROLES, is_ident
from notify_core.rooms import may_see_site, rooms_of, visible

MAX_SITES = 1000


class AuthError(Exception):
    """Authentication failed; `reason` is for logs and metrics, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    tenant_id: str
    roles: frozenset[str]
    sites: frozenset[str] | None  # None: every site of the tenant
    expires_at: float
    issued_at: float | None = None  # `iat`: what revocation by user compares
    token_id: str | None = None  # `jti`: what revocation by token names
    rooms: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rooms", frozenset(rooms_of(self)))

    def can_see_site(self, site: str | None) -> bool:
        return may_see_site(self, site)

    def can_see(self, event: dict[str, Any]) -> bool:
        """The one visibility rule (notify_core.rooms.visible): replay, HTTP, polling."""
        return visible(self, event, self.rooms)

    def has_any_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


class Authenticator:
    def __init__(self, secret: str, public_key: str | None = None, leeway_s: float = 5.0):
        self._secret = secret
        self._public_key = public_key
        self._leeway = leeway_s

    def verify(self, token: object) -> Principal:
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise AuthError("missing token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg == "HS256":
            key: str = self._secret
        elif alg == "RS256" and self._public_key:
            key = self._public_key
        else:
            raise AuthError(f"algorithm {alg!r} not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                leeway=self._leeway,
                options={"require": ["exp", "sub", "tenant_id"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    sub, tenant = claims.get("sub"), claims.get("tenant_id")
    if not is_ident(sub):
        raise AuthError("claim sub missing or malformed")
    if not is_ident(tenant):
        raise AuthError("claim tenant_id missing or malformed")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError("claim roles must be a list of strings")
    unknown = set(roles) - ROLES
    if unknown:
        raise AuthError(f"unknown roles {sorted(unknown)}")
    sites_claim = claims.get("sites")
    sites: frozenset[str] | None = None
    if sites_claim is not None:
        if (
            not isinstance(sites_claim, list)
            or len(sites_claim) > MAX_SITES
            or not all(is_ident(s) for s in sites_claim)
        ):
            raise AuthError("claim sites must be a list of site ids")
        sites = frozenset(sites_claim)
    return Principal(
        user_id=sub,
        tenant_id=tenant,
        roles=frozenset(roles),
        sites=sites,
        expires_at=float(claims["exp"]),
    )


def mint_token(
    secret: str,
    tenant_id: str,
    user_id: str,
    roles: list[str],
    sites: list[str] | None = None,
    ttl_s: int = 12 * 3600,
    now: float | None = None,
) -> str:
    """An HS256 token with the contract's claims (for `towerco-notify token` and tests)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": user_id,
        "tenant_id": tenant_id,
        "roles": roles,
        "iat": issued,
        "exp": issued + ttl_s,
    }
    if sites is not None:
        claims["sites"] = sites
    principal_from_claims(claims)  # refuse to mint what we would refuse to accept
    return jwt.encode(claims, secret, algorithm="HS256")
