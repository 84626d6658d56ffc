"""Adaptive MFA: track an action, challenge the user from a client with a client token, validate the result.

A client token is an ES256 JWT of this service (``typ`` ``sms-otp-client+jwt``) bound to one user, one action
and one tracked attempt (``trk``). Everything a client endpoint touches is found through the attempt that
the token names and checked against the token's user, so a token can never act on another user's
challenge, and the client can never choose a scope: enrollment happens only where the server rules allow
it (no authenticator yet, or a token that proves a successful challenge to the current number, once).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otp_core.errors import ConflictError, FieldError, ForbiddenError, InvalidRequestError, UnauthorizedError
from otp_core.observability import logger, metrics, tracer
from otp_core.ports import IdentityRepository
from otp_core.records import Challenge, ChallengeLink, ChallengeState, TrackedAttempt
from otp_core.rules import RuleSet, decide
from otp_core.service import (
    CHALLENGE_SUCCEEDED,
    ChallengeStarter,
    CodeCheck,
    CodeChecker,
    NewChallenge,
    Proof,
    stored_number,
)
from otp_core.settings import Policy
from otp_core.tokens import CLIENT_TOKEN_TYPE, VERIFICATION_TOKEN_TYPE, TokenIssuer

if TYPE_CHECKING:
    from otp_core.ports import Clock
    from otp_core.token_verify import TokenVerifier

BLOCK = "BLOCK"
# The app's token verifier for its current audience (an operator may change the audience).
Verifiers = Callable[[str], "TokenVerifier"]
_TOKEN_TYPES = (VERIFICATION_TOKEN_TYPE, CLIENT_TOKEN_TYPE)
Claims = Mapping[str, Any]


@dataclass(frozen=True)
class Tracked:
    """The outcome of a tracked action: its state, the client token and whether the user is enrolled."""

    state: str
    token: str
    enrolled: bool


@dataclass(frozen=True)
class Validation:
    """A validated token: ``valid``, the reason when not, and the token's claims when it could be read."""

    valid: bool
    failure_reason: str | None = None
    claims: Claims | None = None


@dataclass(frozen=True)
class ClientVerification:
    """A client verify: the check, and the CHALLENGE_SUCCEEDED client token when it succeeded."""

    check: CodeCheck
    token: str | None = None


class Tracker:
    """``POST /v1/track``: decide ALLOW, CHALLENGE_REQUIRED or BLOCK and issue the client token.

    Parameters
    ----------
    identities:
        Authenticators, tracked attempts and devices.
    clock:
        Source of the current time.
    tokens:
        Issues the client token.
    rules:
        The adaptive rules, or how to get them from the app's policy (its ``trackRules``).
    device_key:
        Keyed, opaque identifier of a (user, device) pair.
    """

    def __init__(
        self,
        identities: IdentityRepository,
        clock: Clock,
        tokens: TokenIssuer,
        rules: RuleSet | Callable[[Policy], RuleSet],
        device_key: Callable[[str, str], str],
    ) -> None:
        self._identities = identities
        self._clock = clock
        self._tokens = tokens
        self._rules = rules
        self._device_key = device_key

    @tracer.capture_method(capture_response=False)
    def track(
        self,
        policy: Policy,
        *,
        user_id: str,
        action: str,
        attributes: Mapping[str, Any],
        device_id: str | None = None,
        phone_number: str | None = None,
        redirect_url: str | None = None,
    ) -> Tracked:
        """Decide the state of ``action`` for ``user_id`` from the tracked ``attributes``.

        ``redirect_url``: where the hosted page hands the result back. With app ``redirectUrls`` it must be one
        of them (scheme, host, port and path) and is carried in the client token (``rdr``); without, it is
        ignored.

        Raises
        ------
        InvalidRequestError
            A ``redirect_url`` off the app's non-empty list.
        """
        if phone_number is not None:
            from otp_core.phone import require_canonical  # only tracks that carry a number load libphonenumber

            require_canonical(phone_number)
        redirect = allowed_redirect(redirect_url, policy.redirect_urls)
        enrolled = self._identities.get_authenticator(user_id) is not None
        device_key = self._device_key(user_id, device_id) if device_id else None
        state = decide(
            self._rules if isinstance(self._rules, RuleSet) else self._rules(policy),
            action,
            attributes,
            enrolled=enrolled,
            is_new_device=lambda: (
                device_key is None or not self._identities.is_known_device(user_id, device_key, action)
            ),
        )
        now = self._clock.now()
        attempt = TrackedAttempt(
            attempt_id=str(uuid.uuid4()),
            user_id=user_id,
            action=action,
            state=state,
            device_key=device_key,
            created_at=now,
            expires_at=now + policy.token_ttl_seconds,
        )
        self._identities.put_attempt(attempt, seen_device=state == "ALLOW")
        token = self._tokens.issue(
            {"sub": user_id, "act": action, "trk": attempt.attempt_id, "state": state, "rdr": redirect},
            token_type=CLIENT_TOKEN_TYPE,
            ttl_seconds=policy.token_ttl_seconds,
            audience=policy.token_audience,
            not_after=attempt.expires_at,
        )
        metrics.add_metric(name=f"Track{state.title().replace('_', '')}", unit="Count", value=1)
        logger.info("action tracked", attempt_id=attempt.attempt_id, state=state)
        return Tracked(state, token, enrolled)


class TokenValidator:
    """``POST /v1/validate``: check a verification or client token; a successful one validates exactly once."""

    def __init__(self, identities: IdentityRepository, verifier: Verifiers) -> None:
        self._identities = identities
        self._verifier = verifier

    @tracer.capture_method(capture_response=False)
    def validate(self, token: str, action: str | None, policy: Policy) -> Validation:
        """Validate a token of this app (another app's token is ``TOKEN_INVALID_OR_EXPIRED``)."""
        claims = self._claims(token, policy)
        if claims is None:
            return Validation(False, "TOKEN_INVALID_OR_EXPIRED")
        if action is not None and claims.get("act") != action:
            return Validation(False, "ACTION_MISMATCH")
        if claims.get("state") != CHALLENGE_SUCCEEDED:
            return Validation(False, "CHALLENGE_NOT_COMPLETED", claims)
        # A success proves its challenge once, whatever tokens the challenge produced (a verify's, a claim's, a
        # client verify's): the token and its challenge are spent in one write. Kept past this token's expiry by a
        # token lifetime: a challenge's tokens all expire within one lifetime of its verification.
        challenge_id = claims.get("chl")
        proves = challenge_id if isinstance(challenge_id, str) and challenge_id else None
        expires = int(claims["exp"]) + policy.token_ttl_seconds
        if not self._identities.consume_token(str(claims["jti"]), expires, challenge_id=proves):
            metrics.add_metric(name="TokenReplayed", unit="Count", value=1)
            return Validation(False, "TOKEN_ALREADY_USED")
        return Validation(True, None, claims)

    def _claims(self, token: str, policy: Policy) -> dict[str, Any] | None:
        try:
            return self._verifier(policy.token_audience).verify_any(token, token_types=_TOKEN_TYPES)
        except UnauthorizedError:
            return None


class ClientFlows:
    """The client endpoints (``/v1/client/sms/*``) for the holder of a client token.

    Parameters
    ----------
    identities:
        Authenticators, tracked attempts and used tokens.
    clock:
        Source of the current time.
    starter, checker:
        Send challenges and check codes.
    tokens, verifier:
        Issue and check client tokens.
    """

    def __init__(
        self,
        identities: IdentityRepository,
        clock: Clock,
        starter: ChallengeStarter,
        checker: CodeChecker,
        tokens: TokenIssuer,
        verifier: Verifiers,
    ) -> None:
        self._identities = identities
        self._clock = clock
        self._starter = starter
        self._checker = checker
        self._tokens = tokens
        self._verifier = verifier

    def authenticate(self, authorization: str | None, policy: Policy) -> dict[str, Any]:
        """Claims of the client token in an ``Authorization: Bearer`` header, a token of this app.

        Raises
        ------
        UnauthorizedError
            Missing, malformed, forged or expired token, not a client token, or another app's.
        """
        token = bearer_token(authorization)
        claims = self._verifier(policy.token_audience).verify(token, token_type=CLIENT_TOKEN_TYPE)
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("trk"), str):
            raise UnauthorizedError("the token is invalid or expired")
        return claims

    def _attempt(self, claims: Claims) -> TrackedAttempt:
        attempt = self._identities.get_attempt(claims["trk"])
        if attempt is None or attempt.user_id != claims["sub"] or attempt.expires_at <= self._clock.now():
            raise UnauthorizedError("the token is invalid or expired")
        if attempt.state == BLOCK:
            raise ForbiddenError("this action was blocked")
        return attempt

    @tracer.capture_method(capture_response=False)
    def enroll(self, claims: Claims, phone_number: str, policy: Policy, ip_address: str | None = None) -> Challenge:
        """Send a code to a new number for the token's user.

        A user who has an SMS authenticator may change it only with a token that proves a successful challenge
        to the current number; that proof authorises one change (it is spent when the new number is verified)
        and none once ``/v1/validate`` consumed it.

        Raises
        ------
        ForbiddenError
            The user is enrolled and the token does not prove a successful challenge to the current number,
            the proof was spent, or the action is blocked.
        """
        attempt = self._attempt(claims)
        user_id = attempt.user_id
        authenticator = self._starter.authenticator_of(user_id)
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
        new = NewChallenge(
            phone_number,
            attempt.action,
            user_id=user_id,
            scope="update:authenticators" if authenticator else "add:authenticators",
            ip_address=ip_address,
            link=ChallengeLink(user_id, attempt_id=attempt.attempt_id),
            replaces=authenticator.authenticator_id if authenticator else None,
            proof=proof,
        )
        return self._starter.start(new, policy)

    @tracer.capture_method(capture_response=False)
    def challenge(self, claims: Claims, policy: Policy, ip_address: str | None = None) -> Challenge:
        """Send, or resend, a code to the user's enrolled number.

        Inside the resend cooldown of the attempt's pending challenge it sends nothing and returns that
        challenge, so a reloaded page carries on with the code already sent.

        Raises
        ------
        ConflictError
            The user has no SMS authenticator.
        RateLimitedError
            Inside the resend cooldown, over a send cap, or locked out.
        """
        attempt = self._attempt(claims)
        authenticator = self._starter.authenticator_of(attempt.user_id)
        if authenticator is None:
            raise ConflictError("this user has no SMS authenticator; enroll first")
        number = stored_number(authenticator)
        current = self._starter.find(attempt.challenge_id) if attempt.challenge_id else None
        now = self._clock.now()
        if current is not None and _resendable(current, number, now):
            if now < current.next_resend_at:
                return current
            return self._starter.resend(current.challenge_id, policy, user_id=attempt.user_id)
        new = NewChallenge(
            number,
            attempt.action,
            user_id=attempt.user_id,
            ip_address=ip_address,
            link=ChallengeLink(attempt.user_id, attempt_id=attempt.attempt_id),
            # The user who enrolled the number: the owner's allowance and lock, valid while it stays enrolled.
            enrolled_as=authenticator.authenticator_id,
        )
        return self._starter.start(new, policy)

    @tracer.capture_method(capture_response=False)
    def verify(self, claims: Claims, code: str, policy: Policy) -> ClientVerification:
        """Check the code of the attempt's current challenge; success yields a CHALLENGE_SUCCEEDED token."""
        attempt = self._attempt(claims)
        if attempt.challenge_id is None:
            return ClientVerification(CodeCheck(False, "CODE_INVALID_OR_EXPIRED", 0, None))
        check = self._checker.check_code(
            attempt.challenge_id,
            code,
            policy,
            user_id=attempt.user_id,
            attempt_id=attempt.attempt_id,
            device_key=attempt.device_key,
        )
        if not check.verified or check.challenge is None:
            return ClientVerification(check)
        challenge = check.challenge
        token = self._tokens.issue(
            {
                "sub": attempt.user_id,
                "act": attempt.action,
                "trk": attempt.attempt_id,
                # The hand-off the track allowed (a signed claim of the token this verify was authorised by).
                # Checked again against the app's list as it is now: a URL the operator removed since the track
                # (a lost domain) receives no token.
                "rdr": _still_listed(claims.get("rdr"), policy.redirect_urls),
                # The origins the hosted page may postMessage this token to (its URL names no app).
                "ori": list(policy.allowed_origins) or None,
                "chl": challenge.challenge_id,
                "state": CHALLENGE_SUCCEEDED,
                "amr": ["sms"],
                "phone_number": challenge.phone_number,
                "phone_number_verified": True,
            },
            token_type=CLIENT_TOKEN_TYPE,
            ttl_seconds=policy.token_ttl_seconds,
            audience=policy.token_audience,
            not_after=attempt.expires_at,
        )
        return ClientVerification(check, token)


def _still_listed(redirect_url: object, allowed: tuple[str, ...]) -> str | None:
    return listed_redirect(redirect_url, allowed) if isinstance(redirect_url, str) else None


def allowed_redirect(redirect_url: str | None, allowed: tuple[str, ...]) -> str | None:
    """The redirect URL a track may hand the hosted page's result to: one of the app's ``redirectUrls``
    (compared by scheme, host, port and path), or None when the app lists none (the URL is then ignored).

    Raises
    ------
    InvalidRequestError
        A URL off a non-empty list (or one that is no URL at all).
    """
    if redirect_url is None or not allowed:
        return None
    entry = listed_redirect(redirect_url, allowed)
    if entry is None:
        raise InvalidRequestError(
            "redirectUrl is not one of the app's redirect URLs",
            errors=[FieldError("attributes.redirectUrl", "must equal one of the app's redirectUrls")],
        )
    return entry


def listed_redirect(redirect_url: str, allowed: tuple[str, ...]) -> str | None:
    """The entry of ``allowed`` that ``redirect_url`` names (scheme, host, port and path), or None.

    The answer is the operator's own entry, never the caller's spelling: the page redirects to the URL as listed,
    so a spelling that Python and a browser parse apart cannot carry the token anywhere else.
    """
    target = _redirect_parts(redirect_url)
    if target is None:
        return None
    return next((entry for entry in allowed if _redirect_parts(entry) == target), None)


def _redirect_parts(url: str) -> tuple[str, str, int | None, str] | None:
    from urllib.parse import urlsplit

    # Browsers read a backslash as "/" in http(s) URLs and drop tabs and newlines, where urlsplit does neither:
    # refuse every spelling on which the two could disagree about the host, and any user part (never needed to
    # name a page).
    if any(ord(char) <= 0x20 or ord(char) == 0x7F or char == "\\" for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment or "#" in url:
        return None
    if "@" in parts.netloc:
        return None
    default = {"https": 443, "http": 80}[parts.scheme]
    return parts.scheme, parts.hostname, port if port is not None else default, parts.path or "/"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header.

    Raises
    ------
    UnauthorizedError
        No such header.
    """
    scheme, _, token = (authorization or "").partition(" ")
    if scheme != "Bearer" or not token.strip():
        raise UnauthorizedError("a client token is required: Authorization: Bearer <token>")
    return token.strip()


def _resendable(challenge: Challenge | None, number: str, now: int) -> bool:
    """Resend only a pending plain challenge to the enrolled number; anything else gets a new challenge."""
    return (
        challenge is not None
        and challenge.scope is None
        and challenge.phone_number == number
        and challenge.state_at(now) is ChallengeState.PENDING
    )
