"""Access tokens of the customer's own identity provider, for phone verification of signed-in users.

Only RS256 and ES256 are accepted, each with a key of its own family from the provider's JWKS. The key set is
cached for five minutes and fetched again when a token names an unknown ``kid`` (a key rotation), so a
token signed by a key from any other key set is refused.
"""

from __future__ import annotations

from typing import Any

import jwt

from otp_core.errors import DependencyError, UnauthorizedError

_ALGORITHM_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})
_INVALID = "the access token is invalid or expired"


class IdpTokenVerifier:
    """Verifies the customer's user access tokens against their JWKS.

    Parameters
    ----------
    issuer, audience:
        Expected ``iss`` and ``aud``.
    jwks_url:
        Where the provider publishes its keys.
    jwk_client:
        A ``jwt.PyJWKClient`` (tests pass their own); built from ``jwks_url`` when None.
    """

    def __init__(self, issuer: str, audience: str, jwks_url: str, *, jwk_client: Any = None) -> None:
        self._issuer = issuer
        self._audience = audience
        self._keys = jwk_client or jwt.PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=300, timeout=3)

    def subject(self, authorization: str | None) -> str:
        """The ``sub`` of a valid ``Authorization: Bearer`` access token.

        Raises
        ------
        UnauthorizedError
            Missing, malformed, forged, expired, or for another issuer or audience.
        DependencyError
            The provider's JWKS could not be fetched.
        """
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme != "Bearer" or not token:
            raise UnauthorizedError("a user access token is required: Authorization: Bearer <token>")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(_INVALID) from exc
        algorithm = header.get("alg")
        if algorithm not in _ALGORITHM_KEY_TYPES or _FORBIDDEN_HEADERS.intersection(header) or not header.get("kid"):
            raise UnauthorizedError(_INVALID)
        try:
            key = self._keys.get_signing_key(header["kid"])
        except jwt.PyJWKClientConnectionError as exc:
            raise DependencyError("the identity provider's keys are unavailable; retry later") from exc
        except jwt.PyJWKClientError as exc:
            raise UnauthorizedError(_INVALID) from exc
        except jwt.PyJWKSetError as exc:
            raise DependencyError("the identity provider publishes no usable keys") from exc
        if key.key_type != _ALGORITHM_KEY_TYPES[algorithm] or key.algorithm_name not in (None, algorithm):
            raise UnauthorizedError(_INVALID)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=5,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(_INVALID) from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 1 <= len(subject) <= 128:
            raise UnauthorizedError(_INVALID)
        return subject
