"""Access tokens of the customer's own identity provider, for phone verification of signed-in users.

Only RS256 and ES256 are accepted, each with a key of its own family from the provider's JWKS. The key set is
cached for five minutes and fetched again when a token names an unknown ``kid`` (a key rotation), so a
token signed by a key from any other key set is refused.

The same provider also signs ID tokens, with the same keys, issuer and often the same audience (the client
ID). An ID token is proof of a login meant for the client, not a credential for an API, so only access
tokens are accepted: by their RFC 9068 header ``typ`` (``at+jwt``) or, for providers that do not set it (Amazon
Cognito), by a configured claim such as ``token_use=access``.
"""

from __future__ import annotations

import re
from typing import Any

import jwt

from otp_core.errors import DependencyError, UnauthorizedError

_ALGORITHM_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})
# RFC 9068 section 2.1; media types are case-insensitive and "application/" may be left out (RFC 7515 4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# The same shape as the stack parameter IdpAccessTokenClaim allows.
_CLAIM_RULE = re.compile(r"^(?P<claim>[A-Za-z0-9_:.-]{1,64})=(?P<value>[A-Za-z0-9_:.-]{1,64})$")
_INVALID = "the access token is invalid or expired"


def parse_access_token_claim(rule: str) -> tuple[str, str] | None:
    """Parse the ``IDP_ACCESS_TOKEN_CLAIM`` setting: ``""`` gives None (check ``typ``), ``"a=b"`` gives ``("a", "b")``.

    Raises
    ------
    ValueError
        Anything else (a claim check that could never match would refuse every user, silently).
    """
    if not rule:
        return None
    match = _CLAIM_RULE.fullmatch(rule)
    if match is None:
        raise ValueError("the access token claim must be empty or claim=value")
    return match["claim"], match["value"]


def unverified_issuer_and_audiences(authorization: str | None) -> tuple[str, tuple[str, ...]]:
    """The ``iss`` and ``aud`` of a Bearer token, read without verifying it: only to pick the app whose identity
    provider must then verify it (a token that lies about them fails that provider's checks).

    Raises
    ------
    UnauthorizedError
        No Bearer token, or not a JWT with a string ``iss`` and a string (or list of strings) ``aud``.
    """
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme != "Bearer" or not token:
        raise UnauthorizedError("a user access token is required: Authorization: Bearer <token>")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise UnauthorizedError(_INVALID) from exc
    issuer, audience = claims.get("iss"), claims.get("aud")
    audiences = (audience,) if isinstance(audience, str) else tuple(audience) if isinstance(audience, list) else ()
    if not isinstance(issuer, str) or not audiences or not all(isinstance(value, str) for value in audiences):
        raise UnauthorizedError(_INVALID)
    return issuer, audiences[:10]


class IdpTokenVerifier:
    """Verifies the customer's user access tokens against their JWKS.

    Parameters
    ----------
    issuer, audience:
        Expected ``iss`` and ``aud``.
    jwks_url:
        Where the provider publishes its keys.
    access_token_claim:
        How an access token is told from an ID token. Empty: the JOSE header ``typ`` must be ``at+jwt`` or
        ``application/at+jwt`` (RFC 9068, any case). ``"claim=value"`` (Cognito: ``token_use=access``): that
        claim must be the string ``value`` instead, whatever the ``typ``.
    jwk_client:
        A ``jwt.PyJWKClient`` (tests pass their own); built from ``jwks_url`` when None.

    Raises
    ------
    ValueError
        ``access_token_claim`` is neither empty nor ``claim=value``.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str,
        *,
        access_token_claim: str = "",
        jwk_client: Any = None,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._required_claim = parse_access_token_claim(access_token_claim)
        self._keys = jwk_client or jwt.PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=300, timeout=3)

    def subject(self, authorization: str | None) -> str:
        """The ``sub`` of a valid ``Authorization: Bearer`` access token.

        Raises
        ------
        UnauthorizedError
            Missing, malformed, forged, expired, for another issuer or audience, or not an access token (an ID
            token, say).
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
        algorithm, kid = header.get("alg"), header.get("kid")
        # Header values are attacker-chosen JSON: a list or object where a string belongs is refused, not hashed.
        if not isinstance(algorithm, str) or not isinstance(kid, str) or not kid:
            raise UnauthorizedError(_INVALID)
        if algorithm not in _ALGORITHM_KEY_TYPES or _FORBIDDEN_HEADERS.intersection(header):
            raise UnauthorizedError(_INVALID)
        if self._required_claim is None and not _is_access_token_type(header.get("typ")):
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
        if self._required_claim is not None:
            name, value = self._required_claim
            presented = claims.get(name)
            if not isinstance(presented, str) or presented != value:
                raise UnauthorizedError(_INVALID)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 1 <= len(subject) <= 128:
            raise UnauthorizedError(_INVALID)
        return subject


def _is_access_token_type(typ: object) -> bool:
    return isinstance(typ, str) and typ.lower() in ACCESS_TOKEN_TYPES
