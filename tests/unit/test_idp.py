"""Customer IdP access tokens: RS256 and ES256 from the provider's JWKS, nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from otp_core.errors import DependencyError, UnauthorizedError
from otp_core.idp import IdpTokenVerifier

ISS, AUD = "https://idp.example", "my-app"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


class FakeJwkClient:
    """Stands in for PyJWKClient: the provider publishes ``rsa-1`` and ``ec-1``."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.keys = {
            "rsa-1": jwt.PyJWK(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())) | {"kid": "rsa-1"}),
            "ec-1": jwt.PyJWK(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key())) | {"kid": "ec-1"}),
        }

    def get_signing_key(self, kid: str) -> jwt.PyJWK:
        if self.down:
            raise jwt.PyJWKClientConnectionError("down")
        if kid not in self.keys:
            raise jwt.PyJWKClientError("unknown kid")
        return self.keys[kid]


def claims(**overrides):
    now = int(time.time())
    return {"iss": ISS, "aud": AUD, "sub": "user-9", "iat": now, "exp": now + 300, **overrides}


def token(key=RSA_KEY, alg="RS256", kid="rsa-1", headers=None, **overrides) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid, **(headers or {})})


@pytest.fixture
def verifier() -> IdpTokenVerifier:
    return IdpTokenVerifier(ISS, AUD, "https://idp.example/jwks", jwk_client=FakeJwkClient())


def test_rs256_and_es256_tokens_give_the_subject(verifier):
    assert verifier.subject(f"Bearer {token()}") == "user-9"
    assert verifier.subject(f"Bearer {token(EC_KEY, 'ES256', 'ec-1')}") == "user-9"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_alg_none_and_hs256_with_the_public_key_are_refused(verifier):
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'kid': 'rsa-1'}).encode())}.{_b64(json.dumps(claims()).encode())}."
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{_b64(json.dumps({'alg': 'HS256', 'kid': 'rsa-1'}).encode())}.{_b64(json.dumps(claims()).encode())}"
    )
    mac = _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    for forged in (unsigned, f"{signing_input}.{mac}"):
        with pytest.raises(UnauthorizedError):
            verifier.subject(f"Bearer {forged}")


@pytest.mark.parametrize(
    "bad",
    [
        {"iss": "https://evil.example"},
        {"aud": "other-app"},
        {"exp": int(time.time()) - 60},
        {"sub": ""},
    ],
)
def test_wrong_claims_are_refused(verifier, bad):
    with pytest.raises(UnauthorizedError):
        verifier.subject(f"Bearer {token(**bad)}")


def test_unknown_kid_foreign_key_and_key_type_confusion_are_refused(verifier):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        token(kid="rsa-2"),
        token(stranger, kid="rsa-1"),
        token(EC_KEY, "ES256", "rsa-1"),
        token(headers={"jku": "https://evil.example/jwks"}),
        token(RSA_KEY, "RS512"),
    ]
    for forged in cases:
        with pytest.raises(UnauthorizedError):
            verifier.subject(f"Bearer {forged}")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer not.a.jwt"])
def test_missing_or_malformed_headers_are_refused(verifier, header):
    with pytest.raises(UnauthorizedError):
        verifier.subject(header)


def test_unreachable_jwks_is_a_503():
    verifier = IdpTokenVerifier(ISS, AUD, "https://idp.example/jwks", jwk_client=FakeJwkClient(down=True))
    with pytest.raises(DependencyError):
        verifier.subject(f"Bearer {token()}")
