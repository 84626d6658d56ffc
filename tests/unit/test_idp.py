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
    """An RFC 9068 access token by default (``typ: at+jwt``); ``headers={"typ": "JWT"}`` makes an ID token."""
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid, "typ": "at+jwt", **(headers or {})})


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


# ---------------------------------------------------------------------------------------------- token kind


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"])
def test_rfc9068_access_token_types_are_accepted_in_any_case(verifier, typ):
    # Given an access token whose typ is one of RFC 9068's spellings
    access = token(headers={"typ": typ})

    # When it is verified, then it gives the subject
    assert verifier.subject(f"Bearer {access}") == "user-9"


@pytest.mark.parametrize(
    "typ",
    ["JWT", "jwt", None, "", "id+jwt", "at+jwt2", "application/jwt", "at+jwt ", 1],
    ids=["JWT", "jwt", "absent", "empty", "id+jwt", "suffix", "application/jwt", "space", "number"],
)
def test_an_id_token_or_any_other_typ_is_refused_as_an_access_token(verifier, typ):
    # Given a token signed by the provider's own key for the right issuer and audience, but not typed as an
    # access token (an ID token carries typ JWT, or none)
    # (pyjwt leaves typ out when given None or "")
    forged = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1", "typ": typ})
    assert jwt.get_unverified_header(forged).get("typ") == (typ if typ != "" else None)

    # When it is presented as a user access token, then it is refused
    with pytest.raises(UnauthorizedError):
        verifier.subject(f"Bearer {forged}")


@pytest.fixture
def cognito() -> IdpTokenVerifier:
    """A verifier told that access tokens carry token_use=access (Amazon Cognito sets no at+jwt typ)."""
    return IdpTokenVerifier(
        ISS, AUD, "https://idp.example/jwks", access_token_claim="token_use=access", jwk_client=FakeJwkClient()
    )


def test_under_the_claim_mode_a_token_with_the_claim_is_accepted_whatever_its_typ(cognito):
    # Given Cognito-style access tokens: typ JWT (or none) and token_use=access
    typed_jwt = token(headers={"typ": "JWT"}, token_use="access")
    typed_at = token(token_use="access")

    # When verified, then both give the subject
    assert cognito.subject(f"Bearer {typed_jwt}") == "user-9"
    assert cognito.subject(f"Bearer {typed_at}") == "user-9"


@pytest.mark.parametrize(
    "token_use",
    ["id", "ACCESS", "access ", ["access"], True, None],
    ids=["id", "upper", "space", "list", "bool", "absent"],
)
def test_under_the_claim_mode_an_id_token_is_refused(cognito, token_use):
    # Given a token of the right issuer, audience and key whose token_use is not exactly "access", even one
    # typed at+jwt
    overrides = {} if token_use is None else {"token_use": token_use}
    id_token = token(**overrides)

    # When presented as an access token, then it is refused
    with pytest.raises(UnauthorizedError):
        cognito.subject(f"Bearer {id_token}")


@pytest.mark.parametrize("rule", ["token_use", "=access", "token_use=", "a=b=c", "token use=access", "x" * 65 + "=y"])
def test_a_malformed_access_token_claim_is_refused_at_construction(rule):
    # Given a claim rule that could never match (it would refuse every user, silently), when building, then
    # the verifier refuses the configuration
    with pytest.raises(ValueError, match="claim=value"):
        IdpTokenVerifier(ISS, AUD, "https://idp.example/jwks", access_token_claim=rule, jwk_client=FakeJwkClient())


@pytest.mark.parametrize("header", [{"alg": ["RS256"]}, {"alg": {"a": 1}}, {"alg": None}, {"kid": ["rsa-1"]}])
def test_header_values_of_the_wrong_json_type_are_refused_not_raised(verifier, header):
    # An anonymous caller controls the whole header: a list where a string belongs must be a 401, never a 500
    forged_header = {"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt", **header}
    forged = f"{_b64(json.dumps(forged_header).encode())}.{_b64(json.dumps(claims()).encode())}.c2ln"
    with pytest.raises(UnauthorizedError):
        verifier.subject(f"Bearer {forged}")
