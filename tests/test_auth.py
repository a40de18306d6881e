"""JWT claims -> Principal, and what a Principal may see."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sio_server.admission.auth import Authenticator, AuthError, mint_token, principal_from_claims

SECRET = "unit-test-secret-0123456789abcdefghijkl"


def claims(**over):
    base = {"sub": "u1", "tenant_id": "t1", "roles": ["operator"], "exp": time.time() + 60}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_minted_token_verifies_to_principal():
    auth = Authenticator(SECRET)
    p = auth.verify(mint_token(SECRET, "t1", "alice", ["operator", "oncall"], ["s1", "s2"]))
    assert (p.user_id, p.tenant_id) == ("alice", "t1")
    assert p.roles == {"operator", "oncall"} and p.sites == {"s1", "s2"}
    assert p.can_see_site("s1") and not p.can_see_site("s3") and p.can_see_site(None)


@pytest.mark.parametrize(
    "bad",
    [
        {"sub": None},
        {"tenant_id": None},
        {"tenant_id": ""},
        {"tenant_id": "a:b"},
        {"tenant_id": 5},
        {"roles": "operator"},
        {"roles": ["god"]},
        {"sites": "s1"},
        {"sites": ["ok", "no:colon"]},
        {"sub": "x" * 65},
    ],
)
def test_bad_claims_are_refused(bad):
    with pytest.raises(AuthError):
        principal_from_claims(claims(**bad))


def test_expired_and_tampered_tokens_fail():
    auth = Authenticator(SECRET, leeway_s=0)
    with pytest.raises(AuthError, match="expired"):
        auth.verify(jwt.encode(claims(exp=time.time() - 10), SECRET, algorithm="HS256"))
    good = jwt.encode(claims(), SECRET, algorithm="HS256")
    head, _, sig = good.split(".")
    forged = jwt.encode(claims(tenant_id="t2"), SECRET, algorithm="HS256").split(".")[1]
    with pytest.raises(AuthError, match="invalid token"):
        auth.verify(f"{head}.{forged}.{sig}")


def test_missing_exp_is_refused():
    auth = Authenticator(SECRET)
    token = jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="exp"):
        auth.verify(token)


def _rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public.decode()


def test_rs256_accepted_only_with_a_public_key():
    key, public = _rsa_pair()
    token = jwt.encode(claims(), key, algorithm="RS256")
    assert Authenticator(SECRET, public).verify(token).tenant_id == "t1"
    with pytest.raises(AuthError, match="algorithm"):
        Authenticator(SECRET).verify(token)


def test_algorithm_confusion_public_key_as_hmac_secret_fails():
    _, public = _rsa_pair()
    # an attacker signs HS256 with the (public) RSA key; we use the secret for HS256
    forged = jwt.api_jws.PyJWS().encode(
        jwt.utils.force_bytes('{"sub":"u","tenant_id":"t1","exp":9999999999}'),
        key=SECRET + "x",
        algorithm="HS256",
    )
    with pytest.raises(AuthError):
        Authenticator(SECRET, public).verify(forged)


def test_none_algorithm_is_refused():
    with pytest.raises(AuthError, match="algorithm"):
        Authenticator(SECRET).verify(jwt.encode(claims(), None, algorithm="none"))


@pytest.mark.parametrize("token", [None, "", 42, "a.b", "x" * 9000])
def test_non_tokens_are_refused(token):
    with pytest.raises(AuthError):
        Authenticator(SECRET).verify(token)


def test_mint_refuses_what_verify_would_refuse():
    with pytest.raises(AuthError):
        mint_token(SECRET, "bad:tenant", "u", ["operator"])


def test_visibility_rule():
    auth = Authenticator(SECRET)
    restricted = auth.verify(mint_token(SECRET, "t1", "u", ["operator"], ["s1"]))
    everyone = auth.verify(mint_token(SECRET, "t1", "u", ["operator"]))
    ev = {"tenant_id": "t1", "type": "incident_alert"}
    assert restricted.can_see({**ev, "site_id": "s1"})
    assert not restricted.can_see({**ev, "site_id": "s2"})
    assert restricted.can_see(ev)  # tenant-wide
    assert not restricted.can_see({"tenant_id": "t1", "type": "incident_update"})
    assert everyone.can_see({"tenant_id": "t1", "type": "incident_update"})
    assert not everyone.can_see({**ev, "tenant_id": "t2"})
