"""Verification tokens: what the service signs, and every forgery the verifier must refuse."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from otp_core.adapters.kms import der_to_raw_signature
from otp_core.errors import UnauthorizedError
from otp_core.jwks import build_jwks, p256_jwk
from otp_core.token_verify import TokenVerifier
from otp_core.tokens import CLIENT_TOKEN_TYPE, VERIFICATION_TOKEN_TYPE, TokenIssuer, b64url
from tests.fakes import EPOCH, FakeClock, FakeSigner

ISS, AUD, APP = "urn:sms-otp:test", "sms-otp", "default"


@pytest.fixture
def signer() -> FakeSigner:
    return FakeSigner("key-1")


@pytest.fixture
def verifier(signer) -> TokenVerifier:
    # The verifier checks times against the service's clock: here the fake clock's fixed epoch.
    return TokenVerifier(build_jwks(signer, [signer.key_id]), issuer=ISS, app_id=APP, audience=AUD, clock=FakeClock())


def issue(signer, *, clock=None, issuer=ISS, audience=AUD, app=APP, ttl=600, token_type=VERIFICATION_TOKEN_TYPE) -> str:
    tokens = TokenIssuer(signer, issuer=issuer, app_id=app, clock=clock or FakeClock())
    claims = {"sub": "user-1", "chl": "c", "state": "CHALLENGE_SUCCEEDED"}
    return tokens.issue(claims, token_type=token_type, ttl_seconds=ttl, audience=audience)


def forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    def part(value: dict) -> str:
        return b64url(json.dumps(value).encode())

    return f"{part(header)}.{part(claims)}.{b64url(signature)}"


def valid_claims() -> dict:
    now = EPOCH
    return {"iss": ISS, "aud": AUD, "app": APP, "iat": now, "nbf": now, "exp": now + 600, "jti": "j", "sub": "attacker"}


def test_issued_token_verifies_with_its_header_and_claims(signer, verifier):
    token = issue(signer)
    header = jwt.get_unverified_header(token)
    claims = verifier.verify(token, token_type=VERIFICATION_TOKEN_TYPE)
    assert header == {"alg": "ES256", "kid": "key-1", "typ": VERIFICATION_TOKEN_TYPE}
    assert claims["sub"] == "user-1" and claims["iss"] == ISS and claims["aud"] == AUD
    assert claims["exp"] - claims["iat"] == 600 and claims["jti"]


def test_alg_none_is_rejected(verifier):
    token = forge({"alg": "none", "typ": VERIFICATION_TOKEN_TYPE, "kid": "key-1"}, valid_claims())
    with pytest.raises(UnauthorizedError):
        verifier.verify(token, token_type=VERIFICATION_TOKEN_TYPE)


def test_hs256_signed_with_the_public_key_is_rejected(signer, verifier):
    public_pem = signer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": VERIFICATION_TOKEN_TYPE, "kid": "key-1"}
    signing_input = forge(header, valid_claims()).rsplit(".", 1)[0]
    import hashlib
    import hmac

    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(UnauthorizedError):
        verifier.verify(f"{signing_input}.{b64url(mac)}", token_type=VERIFICATION_TOKEN_TYPE)


@pytest.mark.parametrize(("issuer", "audience"), [("urn:evil", AUD), (ISS, "another-app")])
def test_wrong_issuer_or_audience_is_rejected(signer, verifier, issuer, audience):
    with pytest.raises(UnauthorizedError):
        verifier.verify(issue(signer, issuer=issuer, audience=audience), token_type=VERIFICATION_TOKEN_TYPE)


def test_expired_token_is_rejected(signer, verifier):
    old = FakeClock(EPOCH - 700)
    with pytest.raises(UnauthorizedError):
        verifier.verify(issue(signer, clock=old), token_type=VERIFICATION_TOKEN_TYPE)


def test_token_from_the_future_is_rejected(signer, verifier):
    future = FakeClock(EPOCH + 300)
    with pytest.raises(UnauthorizedError):
        verifier.verify(issue(signer, clock=future), token_type=VERIFICATION_TOKEN_TYPE)


def test_unknown_kid_and_foreign_key_are_rejected(verifier):
    with pytest.raises(UnauthorizedError):
        verifier.verify(issue(FakeSigner("key-2")), token_type=VERIFICATION_TOKEN_TYPE)
    with pytest.raises(UnauthorizedError):
        verifier.verify(issue(FakeSigner("key-1")), token_type=VERIFICATION_TOKEN_TYPE)


@pytest.mark.parametrize(
    "extra", [{"jku": "https://evil/jwks"}, {"jwk": {"kty": "EC"}}, {"x5u": "x"}, {"crit": ["exp"]}]
)
def test_key_injection_and_crit_headers_are_rejected(signer, verifier, extra):
    header = {"alg": "ES256", "typ": VERIFICATION_TOKEN_TYPE, "kid": "key-1", **extra}
    signing_input = forge(header, valid_claims()).rsplit(".", 1)[0]
    token = f"{signing_input}.{b64url(signer.sign(signing_input.encode()))}"
    with pytest.raises(UnauthorizedError):
        verifier.verify(token, token_type=VERIFICATION_TOKEN_TYPE)


def test_a_client_token_is_not_a_verification_token(signer, verifier):
    with pytest.raises(UnauthorizedError):
        verifier.verify(issue(signer, token_type=CLIENT_TOKEN_TYPE), token_type=VERIFICATION_TOKEN_TYPE)


def test_tampered_payload_is_rejected(signer, verifier):
    header, payload, signature = issue(signer).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "admin"
    with pytest.raises(UnauthorizedError):
        verifier.verify(
            f"{header}.{b64url(json.dumps(claims).encode())}.{signature}", token_type=VERIFICATION_TOKEN_TYPE
        )


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9.e30."])
def test_garbage_is_rejected(verifier, garbage):
    with pytest.raises(UnauthorizedError):
        verifier.verify(garbage, token_type=VERIFICATION_TOKEN_TYPE)


def test_der_signatures_convert_to_fixed_width_jose_form():
    key = ec.generate_private_key(ec.SECP256R1())
    for index in range(200):
        der = key.sign(f"message {index}".encode(), ec.ECDSA(hashes.SHA256()))
        raw = der_to_raw_signature(der)
        r, s = decode_dss_signature(der)
        assert len(raw) == 64
        assert (int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")) == (r, s)


@pytest.mark.parametrize("bad", [b"", b"\x31\x06\x02\x01\x01\x02\x01\x01", b"\x30\x06\x02\x01\x01\x02\x01\x01\x00"])
def test_malformed_der_is_refused(bad):
    with pytest.raises(ValueError):
        der_to_raw_signature(bad)


def test_jwk_matches_the_public_key(signer):
    jwk = p256_jwk(signer.public_key_der("key-1"), "key-1")
    numbers = signer.private_key.public_key().public_numbers()
    assert jwk["x"] == b64url(numbers.x.to_bytes(32, "big"))
    assert jwk["y"] == b64url(numbers.y.to_bytes(32, "big"))
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    rsa_like = b"\x30" + b"\x00" * 90
    with pytest.raises(ValueError):
        p256_jwk(rsa_like, "k")
