"""JWT -> Principal. Every refusal is one opaque failure to the caller, a reason in logs.

HS256 with the shared secret; RS256 too when a public key is configured. The key is
chosen by the algorithm the server expects for it, never by the token alone, so an
HS256 token signed with the public key (algorithm confusion) or `alg: none` fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt

from notify_core.wire.events import ROLES, is_ident
from notify_core.wire.rooms import may_see_site, rooms_of, visible

log = logging.getLogger(__name__)

MAX_SITES = 1000
ASYMMETRIC = ("RS256", "ES256")


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
        """The one visibility rule (notify_core.wire.rooms.visible): replay, HTTP, polling."""
        return visible(self, event, self.rooms)

    def has_any_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


class Revoked(Protocol):
    def revoked(self, p: Principal) -> bool:
        """True when `p`'s token was revoked (by `jti`, or by user and issue time)."""


class Authenticator:
    """Verifies tokens: HS256 with the shared secret; RS256 with a configured public key;
    RS256/ES256 from an identity provider's JWKS, by `kid` (fetched and refreshed on an
    unknown `kid`, off the event loop). `aud`/`iss` are checked when configured (a token
    carrying `aud` is not refused for it when no audience is configured). The tenant and
    roles may sit at dotted paths of the claims (`realm_access.roles`)."""

    def __init__(
        self,
        secret: str | None,
        public_key: str | None = None,
        leeway_s: float = 5.0,
        audience: str | None = None,
        issuer: str | None = None,
        jwks: jwt.PyJWKClient | None = None,
        tenant_claim: str = "tenant_id",
        roles_claim: str = "roles",
        revocations: Revoked | None = None,
        seen: Callable[[Principal], Awaitable[None]] | None = None,
    ):
        """`seen(principal)`: told of each token accepted by `authenticate` (the people
        store records the roles and sites a user last signed in with)."""
        self._seen = seen
        self._secret = secret
        self._public_key = public_key
        self._leeway = leeway_s
        self._audience = audience
        self._issuer = issuer
        self._jwks = jwks
        self._tenant_claim = tenant_claim
        self._roles_claim = roles_claim
        self._revocations = revocations

    async def authenticate(self, token: object) -> Principal:
        """`verify`, fetching an identity provider's keys first when the token names a
        `kid` not seen yet (a blocking HTTP call, so in a thread)."""
        if self._jwks is not None and isinstance(token, str) and 0 < len(token) <= 8192:
            try:
                header = jwt.get_unverified_header(token)
            except jwt.PyJWTError as exc:
                raise AuthError(f"malformed token: {exc}") from None
            if header.get("kid") and header.get("alg") in ASYMMETRIC:
                key = await asyncio.to_thread(self._jwks_key, token)
                return await self._told(self._decode(token, key, str(header["alg"])))
        return await self._told(self.verify(token))

    async def _told(self, p: Principal) -> Principal:
        if self._seen is not None:
            try:
                await self._seen(p)
            except Exception:  # a profile not written must not refuse a valid token
                log.warning("could not record the profile of %s/%s", p.tenant_id, p.user_id)
        return p

    def _jwks_key(self, token: str) -> Any:
        assert self._jwks is not None
        try:
            return self._jwks.get_signing_key_from_jwt(token).key
        except (jwt.PyJWKClientError, jwt.PyJWTError) as exc:
            raise AuthError(f"no signing key: {exc}") from None

    def verify(self, token: object) -> Principal:
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise AuthError("missing token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self._secret:
            key = self._secret
        elif alg == "RS256" and self._public_key:
            key = self._public_key
        elif alg in ASYMMETRIC and self._jwks is not None:
            key = self._jwks_key(token)  # cached keys: no fetch unless the kid is new
        else:
            raise AuthError(f"algorithm {alg!r} not accepted")
        return self._decode(token, key, str(alg))

    def _decode(self, token: str, key: Any, alg: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                leeway=self._leeway,
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                },
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        principal = principal_from_claims(claims, self._tenant_claim, self._roles_claim)
        if self._revocations is not None and self._revocations.revoked(principal):
            raise AuthError("token revoked")
        return principal


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (`realm_access.roles`), None when absent."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def principal_from_claims(
    claims: dict[str, Any], tenant_claim: str = "tenant_id", roles_claim: str = "roles"
) -> Principal:
    sub, tenant = claims.get("sub"), claim_at(claims, tenant_claim)
    if not is_ident(sub):
        raise AuthError("claim sub missing or malformed")
    if not is_ident(tenant):
        raise AuthError(f"claim {tenant_claim} missing or malformed")
    roles = claim_at(claims, roles_claim)
    roles = [] if roles is None else roles
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise AuthError(f"claim {roles_claim} must be a list of strings")
    unknown = set(roles) - ROLES
    if unknown and roles_claim == "roles":
        raise AuthError(f"unknown roles {sorted(unknown)}")
    roles = [r for r in roles if r in ROLES]  # an identity provider's own roles: ignored
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
    iat, jti = claims.get("iat"), claims.get("jti")
    return Principal(
        user_id=sub,
        tenant_id=tenant,
        roles=frozenset(roles),
        sites=sites,
        expires_at=float(claims["exp"]),
        issued_at=float(iat) if isinstance(iat, int | float) else None,
        token_id=jti if isinstance(jti, str) and 0 < len(jti) <= 256 else None,
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
        "jti": uuid.uuid4().hex,  # what `POST /api/v1/admin/revocations {jti}` names
    }
    if sites is not None:
        claims["sites"] = sites
    principal_from_claims(claims)  # refuse to mint what we would refuse to accept
    return jwt.encode(claims, secret, algorithm="HS256")
