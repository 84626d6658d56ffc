"""Issuing ES256 JWTs with a signer whose private key never leaves its key store (KMS)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping

from otp_core.ports import Clock, Signer

VERIFICATION_TOKEN_TYPE = "sms-otp-verification+jwt"
CLIENT_TOKEN_TYPE = "sms-otp-client+jwt"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenIssuer:
    """Builds and signs tokens with the registered claims the contract fixes.

    Parameters
    ----------
    signer:
        Produces raw ES256 signatures; its ``key_id`` becomes the ``kid`` header.
    issuer:
        The ``iss`` claim (the stack's).
    app_id:
        The ``app`` claim: the app whose tokens these are. Its ``aud`` (the app's ``tokenAudience``, which an
        operator may change) is given with each token.
    """

    def __init__(self, signer: Signer, *, issuer: str, app_id: str, clock: Clock) -> None:
        self._signer = signer
        self._issuer = issuer
        self._app_id = app_id
        self._clock = clock

    def issue(
        self,
        claims: Mapping[str, object],
        *,
        token_type: str,
        ttl_seconds: int,
        audience: str,
        not_after: int | None = None,
    ) -> str:
        """Sign ``claims`` plus iss, aud, app, iat, nbf, exp and jti; claims whose value is None are left out.

        The token lives ``ttl_seconds`` (the policy's token lifetime); ``not_after`` caps ``exp``, so a token
        bound to a tracked attempt never outlives the attempt.
        """
        now = self._clock.now()
        expires = now + ttl_seconds if not_after is None else min(now + ttl_seconds, not_after)
        header = {"alg": "ES256", "typ": token_type, "kid": self._signer.key_id}
        payload: dict[str, object] = {
            "iss": self._issuer,
            "aud": audience,
            "app": self._app_id,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "jti": str(uuid.uuid4()),
        }
        payload.update({name: value for name, value in claims.items() if value is not None and name not in payload})
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":"), sort_keys=True).encode()) for part in (header, payload)
        )
        signature = self._signer.sign(signing_input.encode("ascii"))
        return f"{signing_input}.{b64url(signature)}"
