"""Adaptive MFA: track an action, challenge the user from a client with a client token, validate the result.

A client token is an ES256 JWT of this service (``typ`` ``sms-otp-client+jwt``) bound to one user, one action
and one tracked attempt (``trk``). Everything a client endpoint touches is found through the attempt that
the token names and checked against the token's user, so a token can never act on another user's
challenge, and the client can never choose a scope: enrollment happens only where the server rules allow
it (no authenticator yet, or a token that already proves a successful challenge).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from otp_core.errors import ConflictError, ForbiddenError, UnauthorizedError
from otp_core.models import (
    ChallengeSent,
    ClientChallengeSent,
    ClientVerifyResult,
    TrackRequest,
    TrackResult,
    ValidateResult,
)
from otp_core.observability import logger, metrics
from otp_core.ports import (
    Challenge,
    ChallengeLink,
    ChallengeState,
    Clock,
    IdentityRepository,
    TrackedAttempt,
)
from otp_core.rules import RuleSet, decide
from otp_core.service import CHALLENGE_SUCCEEDED, ChallengeService, Proof, stored_number
from otp_core.settings import Settings
from otp_core.tokens import CLIENT_TOKEN_TYPE, VERIFICATION_TOKEN_TYPE, TokenIssuer

if TYPE_CHECKING:
    from otp_core.token_verify import TokenVerifier

BLOCK = "BLOCK"
_TOKEN_TYPES = (VERIFICATION_TOKEN_TYPE, CLIENT_TOKEN_TYPE)


class MfaService:
    """Track, validate and the client endpoints.

    Parameters
    ----------
    challenges:
        The challenge service (sends, checks codes, enrolls on verification).
    identities:
        Authenticators, tracked attempts, devices and used tokens.
    tokens, verifier:
        Issue and check this service's tokens.
    rules:
        The adaptive rules; needed by track only.
    device_key:
        Keyed, opaque identifier of a (user, device) pair; needed by track only.
    """

    def __init__(
        self,
        settings: Settings,
        identities: IdentityRepository,
        clock: Clock,
        *,
        challenges: ChallengeService | None = None,
        tokens: TokenIssuer | None = None,
        verifier: TokenVerifier | None = None,
        rules: RuleSet | None = None,
        device_key: Callable[[str, str], str] | None = None,
    ) -> None:
        self._settings = settings
        self._identities = identities
        self._clock = clock
        self._challenges = challenges
        self._tokens = tokens
        self._verifier = verifier
        self._rules = rules
        self._device_key = device_key

    # -- server ---------------------------------------------------------------------------------------------

    def track(self, request: TrackRequest) -> TrackResult:
        """Decide ALLOW, CHALLENGE_REQUIRED or BLOCK for an action and issue the client token for it."""
        if self._rules is None or self._device_key is None or self._tokens is None:
            raise RuntimeError("track needs rules, a device key and a token issuer")
        if request.attributes.phone_number is not None:
            from otp_core.phone import require_canonical  # only tracks that carry a number load libphonenumber

            require_canonical(request.attributes.phone_number)
        attributes = request.attributes.model_dump(by_alias=True, exclude_none=True)
        enrolled = self._identities.get_authenticator(request.user_id) is not None
        device = request.attributes.device_id
        device_key = self._device_key(request.user_id, device) if device else None
        state = decide(
            self._rules,
            request.action,
            attributes,
            enrolled=enrolled,
            is_new_device=lambda: (
                device_key is None or not self._identities.is_known_device(request.user_id, device_key, request.action)
            ),
        )
        now = self._clock.now()
        attempt = TrackedAttempt(
            attempt_id=str(uuid.uuid4()),
            user_id=request.user_id,
            action=request.action,
            state=state,
            device_key=device_key,
            created_at=now,
            expires_at=now + self._settings.token_ttl_seconds,
        )
        self._identities.put_attempt(attempt, seen_device=state == "ALLOW")
        token = self._tokens.issue(
            {"sub": request.user_id, "act": request.action, "trk": attempt.attempt_id, "state": state},
            token_type=CLIENT_TOKEN_TYPE,
            not_after=attempt.expires_at,
        )
        metrics.add_metric(name=f"Track{state.title().replace('_', '')}", unit="Count", value=1)
        logger.info("action tracked", attempt_id=attempt.attempt_id, state=state)
        return TrackResult(
            state=state,  # type: ignore[arg-type]
            token=token,
            is_enrolled=enrolled,
            enrolled_verification_methods=["SMS"] if enrolled else [],
        )

    def validate(self, token: str, action: str | None) -> ValidateResult:
        """Check a verification or client token; a successful one validates exactly once."""
        claims = self._claims(token)
        if claims is None:
            return ValidateResult(is_valid=False, failure_reason="TOKEN_INVALID_OR_EXPIRED")
        if action is not None and claims.get("act") != action:
            return ValidateResult(is_valid=False, failure_reason="ACTION_MISMATCH")
        fields: dict[str, Any] = {
            "state": claims.get("state"),
            "user_id": claims.get("sub"),
            "action": claims.get("act"),
            "challenge_id": claims.get("chl"),
            "verification_method": "SMS" if claims.get("chl") else None,
            "phone_number": claims.get("phone_number"),
        }
        if claims.get("state") != CHALLENGE_SUCCEEDED:
            return ValidateResult(is_valid=False, failure_reason="CHALLENGE_NOT_COMPLETED", **fields)
        if not self._identities.consume_token(str(claims["jti"]), int(claims["exp"])):
            metrics.add_metric(name="TokenReplayed", unit="Count", value=1)
            return ValidateResult(is_valid=False, failure_reason="TOKEN_ALREADY_USED")
        return ValidateResult(is_valid=True, **fields)

    def _claims(self, token: str) -> dict[str, Any] | None:
        if self._verifier is None:
            raise RuntimeError("validate needs a token verifier")
        import jwt  # only validate reads headers itself; the client endpoints go through the verifier

        try:
            token_type = jwt.get_unverified_header(token).get("typ")
        except jwt.PyJWTError:
            return None
        if token_type not in _TOKEN_TYPES:
            return None
        try:
            return self._verifier.verify(token, token_type=str(token_type))
        except UnauthorizedError:
            return None

    # -- client ---------------------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> dict[str, Any]:
        """Claims of the client token in an ``Authorization: Bearer`` header.

        Raises
        ------
        UnauthorizedError
            Missing, malformed, forged or expired token, or not a client token.
        """
        if self._verifier is None:
            raise RuntimeError("client endpoints need a token verifier")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Bearer" or not token.strip():
            raise UnauthorizedError("a client token is required: Authorization: Bearer <token>")
        claims = self._verifier.verify(token.strip(), token_type=CLIENT_TOKEN_TYPE)
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("trk"), str):
            raise UnauthorizedError("the token is invalid or expired")
        return claims

    def _attempt(self, claims: dict[str, Any]) -> TrackedAttempt:
        attempt = self._identities.get_attempt(claims["trk"])
        if attempt is None or attempt.user_id != claims["sub"] or attempt.expires_at <= self._clock.now():
            raise UnauthorizedError("the token is invalid or expired")
        if attempt.state == BLOCK:
            raise ForbiddenError("this action was blocked")
        return attempt

    def _service(self) -> ChallengeService:
        if self._challenges is None:
            raise RuntimeError("client endpoints need the challenge service")
        return self._challenges

    def client_enroll(
        self, claims: dict[str, Any], phone_number: str, ip_address: str | None = None
    ) -> ClientChallengeSent:
        """Send a code to a new number for the token's user.

        A user who has an SMS authenticator may change it only with a token that proves a challenge to the
        current number; that proof authorises one change (it is spent when the new number is verified) and
        none once ``/v1/validate`` consumed it.

        Raises
        ------
        ForbiddenError
            The user is enrolled and the token does not prove a successful challenge to the current number,
            the proof was spent, or the action is blocked.
        """
        attempt = self._attempt(claims)
        user_id = attempt.user_id
        service = self._service()
        authenticator = service.authenticator_of(user_id)
        proof = None
        if authenticator is not None:
            proves_current = (
                claims.get("state") == CHALLENGE_SUCCEEDED
                and claims.get("phone_number") == stored_number(authenticator)
                and isinstance(claims.get("jti"), str)
            )
            if not proves_current:
                raise ForbiddenError("complete a challenge with the enrolled number before changing it")
            if self._identities.token_used(str(claims["jti"])):
                raise ForbiddenError("this proof was already used; complete a new challenge")
            proof = Proof(str(claims["jti"]), int(claims["exp"]))
        sent, _ = service.start(
            phone_number,
            attempt.action,
            user_id=user_id,
            scope="update:authenticators" if authenticator else "add:authenticators",
            ip_address=ip_address,
            link=ChallengeLink(user_id, attempt_id=attempt.attempt_id),
            replaces=authenticator.authenticator_id if authenticator else None,
            proof=proof,
        )
        return _client_sent(sent)

    def client_challenge(self, claims: dict[str, Any], ip_address: str | None = None) -> ClientChallengeSent:
        """Send, or resend, a code to the user's enrolled number.

        Raises
        ------
        ConflictError
            The user has no SMS authenticator.
        RateLimitedError
            Inside the resend cooldown, over a send cap, or locked out.
        """
        attempt = self._attempt(claims)
        service = self._service()
        authenticator = service.authenticator_of(attempt.user_id)
        if authenticator is None:
            raise ConflictError("this user has no SMS authenticator; enroll first")
        number = stored_number(authenticator)
        current = service.find(attempt.challenge_id) if attempt.challenge_id else None
        if _resendable(current, number, self._clock.now()):
            sent = service.resend(attempt.challenge_id or "", user_id=attempt.user_id)
        else:
            sent, _ = service.start(
                number,
                attempt.action,
                user_id=attempt.user_id,
                ip_address=ip_address,
                link=ChallengeLink(attempt.user_id, attempt_id=attempt.attempt_id),
                owner=True,  # the user who enrolled the number: the owner's allowance and lock
            )
        return _client_sent(sent)

    def client_verify(self, claims: dict[str, Any], code: str) -> ClientVerifyResult:
        """Check the code of the attempt's current challenge; success yields a CHALLENGE_SUCCEEDED token."""
        attempt = self._attempt(claims)
        if attempt.challenge_id is None:
            return ClientVerifyResult(is_verified=False, failure_reason="CODE_INVALID_OR_EXPIRED", attempts_remaining=0)
        check = self._service().check_code(
            attempt.challenge_id,
            code,
            user_id=attempt.user_id,
            attempt_id=attempt.attempt_id,
            device_key=attempt.device_key,
        )
        if not check.verified or check.challenge is None or self._tokens is None:
            return ClientVerifyResult.model_validate(
                {
                    "is_verified": False,
                    "failure_reason": check.failure_reason,
                    "attempts_remaining": check.attempts_remaining,
                }
            )
        challenge = check.challenge
        token = self._tokens.issue(
            {
                "sub": attempt.user_id,
                "act": attempt.action,
                "trk": attempt.attempt_id,
                "chl": challenge.challenge_id,
                "state": CHALLENGE_SUCCEEDED,
                "amr": ["sms"],
                "phone_number": challenge.phone_number,
                "phone_number_verified": True,
            },
            token_type=CLIENT_TOKEN_TYPE,
            not_after=attempt.expires_at,
        )
        return ClientVerifyResult(is_verified=True, token=token, attempts_remaining=0)


def _client_sent(sent: ChallengeSent) -> ClientChallengeSent:
    """The client endpoints' answer: the create answer without the server-side fields."""
    return ClientChallengeSent.model_validate(sent.model_dump(include=set(ClientChallengeSent.model_fields)))


def _resendable(challenge: Challenge | None, number: str, now: int) -> bool:
    """Resend only a pending plain challenge to the enrolled number; anything else gets a new challenge."""
    return (
        challenge is not None
        and challenge.scope is None
        and challenge.phone_number == number
        and challenge.state_at(now) is ChallengeState.PENDING
    )
