"""JSON Web Key Set of the token signing keys."""

from __future__ import annotations

from collections.abc import Iterable

from otp_core.ports import PublicKeySource
from otp_core.tokens import b64url

# DER prefix of a SubjectPublicKeyInfo holding an uncompressed P-256 point (id-ecPublicKey, prime256v1).
_P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


def p256_jwk(spki_der: bytes, kid: str) -> dict[str, str]:
    """Build the public JWK of a P-256 key from its DER SubjectPublicKeyInfo.

    Raises
    ------
    ValueError
        The key is not an uncompressed P-256 public key.
    """
    point = spki_der[len(_P256_SPKI_PREFIX) :]
    if not spki_der.startswith(_P256_SPKI_PREFIX) or len(point) != 65 or point[0] != 0x04:
        raise ValueError("not an uncompressed P-256 public key")
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(point[1:33]),
        "y": b64url(point[33:]),
        "kid": kid,
        "use": "sig",
        "alg": "ES256",
    }


def build_jwks(source: PublicKeySource, key_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """Publish the current key and every retired key that can still verify a live token."""
    return {"keys": [p256_jwk(source.public_key_der(key_id), key_id) for key_id in key_ids]}
