"""Verifying tokens this service issued: ES256 only, against the published keys, every claim checked.

Imported only where tokens are accepted (it loads pyjwt and cryptography).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from otp_core.errors import UnauthorizedError
from otp_core.ports import Clock, SystemClock

_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})
_REQUIRED_CLAIMS = ["iss", "aud", "app", "iat", "nbf", "exp", "jti"]


class TokenVerifier:
    """Checks algorithm, key, signature, ``typ``, ``iss``, ``aud``, ``app``, ``exp`` and ``nbf`` of a token.

    Parameters
    ----------
    jwks:
        The key set (``{"keys": [...]}``) published at ``/.well-known/jwks.json``.
    issuer:
        Expected ``iss``.
    app_id, audience:
        The app whose tokens are accepted: its ID (``app``) and its token audience (``aud``). A token of any
        other app fails both. ``None`` for both checks only what every app's tokens share (signature, ``iss``,
        ``typ``, times): it tells which app a genuine token is of, before that app's verifier checks it.
    leeway_seconds:
        Clock skew tolerated on ``exp`` and ``nbf``.
    clock:
        The time ``exp`` and ``nbf`` are checked against (the service's clock, so tests can move it).
    """

    def __init__(
        self,
        jwks: Mapping[str, Any],
        *,
        issuer: str,
        app_id: str | None,
        audience: str | None,
        leeway_seconds: int = 5,
        clock: Clock | None = None,
    ) -> None:
        self._keys = {
            key["kid"]: jwt.PyJWK(dict(key), algorithm="ES256")
            for key in jwks.get("keys", [])
            if key.get("kty") == "EC" and key.get("crv") == "P-256" and "kid" in key
        }
        self._issuer = issuer
        self._app_id = app_id
        self._audience = audience
        self._leeway = leeway_seconds
        self._clock = clock or SystemClock()

    def verify_any(self, token: str, *, token_types: tuple[str, ...]) -> dict[str, Any]:
        """Return the claims of a valid token whose ``typ`` is one of ``token_types``.

        Raises
        ------
        UnauthorizedError
            For any defect, a ``typ`` outside ``token_types`` included.
        """
        try:
            token_type = jwt.get_unverified_header(token).get("typ")
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("the token is invalid or expired") from exc
        if token_type not in token_types:
            raise UnauthorizedError("the token is invalid or expired")
        return self.verify(token, token_type=str(token_type))

    def verify(self, token: str, *, token_type: str) -> dict[str, Any]:
        """Return the claims of a valid token of ``token_type``.

        Raises
        ------
        UnauthorizedError
            For any defect; the reason is deliberately not told to the caller.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("the token is invalid or expired") from exc
        if (
            header.get("alg") != "ES256"
            or header.get("typ") != token_type
            or _FORBIDDEN_HEADERS.intersection(header)
            or header.get("kid") not in self._keys
        ):
            raise UnauthorizedError("the token is invalid or expired")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=self._keys[header["kid"]],
                algorithms=["ES256"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                # Times are checked below against the service's clock, with the same leeway.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "strict_aud": self._audience is not None,
                    "verify_aud": self._audience is not None,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("the token is invalid or expired") from exc
        now = self._clock.now()
        times = [claims.get(name) for name in ("exp", "nbf", "iat")]
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in times):
            raise UnauthorizedError("the token is invalid or expired")
        if not isinstance(claims["app"], str) or (self._app_id is not None and claims["app"] != self._app_id):
            raise UnauthorizedError("the token is invalid or expired")
        if claims["exp"] <= now - self._leeway or claims["nbf"] > now + self._leeway:
            raise UnauthorizedError("the token is invalid or expired")
        return claims
