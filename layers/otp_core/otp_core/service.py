"""The challenge service: create, verify, resend, claim and read SMS challenges.

Pure logic over the ports; no boto3 here. Every state change is delegated to one conditional write of the
repository, so concurrent requests cannot exceed a limit or use a code twice.
"""

from __future__ import annotations

import dataclasses
import hmac
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from otp_core.codes import CodeBook
from otp_core.errors import (
    ConflictError,
    DeliveryFailedError,
    FieldError,
    InvalidPhoneNumberError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
)
from otp_core.messages import check_template, default_template, render
from otp_core.models import (
    ChallengeSent,
    ChallengeView,
    ClaimResult,
    CreateChallengeRequest,
    VerifyResult,
)
from otp_core.observability import logger, mask_phone, metrics
from otp_core.policy import ip_subject
from otp_core.ports import (
    Authenticator,
    Challenge,
    ChallengeLink,
    ChallengeRepository,
    ChallengeState,
    Clock,
    DeliveryLog,
    IdentityRepository,
    OutgoingSms,
    SendQuota,
    SmsSender,
    VerifiedEffects,
    VerifyOutcome,
)
from otp_core.settings import Settings
from otp_core.timefmt import rfc3339
from otp_core.tokens import VERIFICATION_TOKEN_TYPE, TokenIssuer

_CHALLENGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CHALLENGE_SUCCEEDED = "CHALLENGE_SUCCEEDED"


@dataclass(frozen=True)
class CodeCheck:
    """Outcome of one code check; ``challenge`` is the challenge as read before the check.

    ``enrolled`` is True when the same write made the challenge's number the user's SMS authenticator.
    """

    verified: bool
    failure_reason: str
    attempts_remaining: int
    challenge: Challenge | None
    enrolled: bool = False


@dataclass(frozen=True)
class Proof:
    """A step-up proof (a client token that proves a challenge to the current number) an enrollment spends."""

    token_id: str
    expires_at: int


def is_challenge_id(value: str) -> bool:
    """True for IDs this service could have issued; anything else is treated like an unknown ID."""
    return bool(_CHALLENGE_ID.fullmatch(value))


class ChallengeService:
    """Use cases of the Challenges section of the contract.

    Parameters
    ----------
    settings:
        The policy.
    repository:
        Where challenges and counters live.
    clock:
        Source of the current time.
    codes:
        Keyed code operations (its key comes from Secrets Manager); needed by create, verify and resend.
    sender:
        The SMS port; needed by create and resend only.
    tokens:
        Token issuer; needed by verify only.
    phone_check:
        Validates a number against the policy and returns its region; needed by create only.
    identities:
        Authenticators; needed by create when the number comes from the user's enrollment.
    deliveries:
        Where the provider and message ID of each accepted SMS are recorded on its challenge.
    """

    def __init__(
        self,
        settings: Settings,
        repository: ChallengeRepository,
        clock: Clock,
        *,
        codes: CodeBook | None = None,
        sender: SmsSender | None = None,
        tokens: TokenIssuer | None = None,
        phone_check: Callable[[str, Settings], str] | None = None,
        identities: IdentityRepository | None = None,
        deliveries: DeliveryLog | None = None,
    ) -> None:
        self._settings = settings
        self._repository = repository
        self._code_book = codes
        self._clock = clock
        self._sender = sender
        self._tokens = tokens
        self._phone_check = phone_check
        self._identities = identities
        self._deliveries = deliveries

    @property
    def _codes(self) -> CodeBook:
        if self._code_book is None:
            raise RuntimeError("this use case needs the code book")
        return self._code_book

    # -- create -------------------------------------------------------------------------------------------

    def create(self, request: CreateChallengeRequest) -> ChallengeSent:
        """Start a challenge and send its code (to the user's enrolled number when none is given).

        Raises
        ------
        InvalidRequestError, InvalidPhoneNumberError, UnsupportedCountryError, UnsupportedNumberTypeError,
        InvalidMessageTemplateError
            Bad input; nothing was written or sent.
        ConflictError
            ``add:authenticators`` for a user who already has an SMS authenticator.
        RateLimitedError
            A send cap or a lockout; nothing was written or sent.
        DeliveryFailedError
            The SMS could not be sent; the challenge and the send were rolled back.
        """
        phone = request.phone_number
        authenticator = self.authenticator_of(request.user_id) if request.user_id else None
        enrolled = stored_number(authenticator) if authenticator else None
        if request.scope == "add:authenticators" and authenticator is not None:
            raise ConflictError("this user already has an SMS authenticator; use scope update:authenticators")
        if phone is None and request.scope is None:
            phone = enrolled
        if phone is None:
            raise InvalidRequestError(
                "phoneNumber is required",
                errors=[FieldError("phoneNumber", "required unless userId has an enrolled SMS number")],
            )
        return self.start(
            phone,
            request.action,
            user_id=request.user_id,
            scope=request.scope,
            message=request.message,
            sender_id=request.sender_id,
            locale=request.locale,
            ip_address=request.ip_address,
            # A create naming the user whose enrolled number it targets draws on the owner's allowance.
            owner=enrolled is not None and phone == enrolled,
            replaces=authenticator.authenticator_id if authenticator and request.scope else None,
        )[0]

    def authenticator_of(self, user_id: str) -> Authenticator | None:
        """The user's SMS authenticator, or None."""
        if self._identities is None:
            raise RuntimeError("this use case needs the identity repository")
        return self._identities.get_authenticator(user_id)

    def start(
        self,
        phone: str,
        action: str,
        *,
        user_id: str | None = None,
        scope: str | None = None,
        message: str | None = None,
        sender_id: str | None = None,
        locale: str | None = None,
        ip_address: str | None = None,
        link: ChallengeLink | None = None,
        owner: bool = False,
        replaces: str | None = None,
        proof: Proof | None = None,
        end_user: bool = False,
    ) -> tuple[ChallengeSent, Challenge]:
        """Validate, store and send a new challenge; ``link`` is written in the same transaction.

        ``owner``: the challenge names the owner of the enrolled number (owner's allowance and lock).
        ``replaces``: for an enrollment (``scope``), the authenticator ID its verification may replace.
        ``proof``: the step-up proof the enrollment spends when it is verified.
        ``end_user``: the text and sender ID come from an end user, not from the customer's server.
        """
        settings = self._settings
        if self._phone_check is None:
            raise RuntimeError("create needs a phone_check")
        self._phone_check(phone, settings)
        if end_user and sender_id is not None and sender_id not in settings.end_user_sender_ids:
            raise InvalidRequestError(
                "this sender ID is not allowed",
                errors=[FieldError("senderId", "not one of the sender IDs the operator allows end users")],
            )
        if message is not None:
            check_template(
                message,
                app=settings.app_name,
                code_length=self._codes.length,
                minutes=_minutes(settings.code_ttl_seconds),
                end_user=end_user,
            )

        now = self._clock.now()
        challenge_id = str(uuid.uuid4())
        code = self._codes.new_code()
        challenge = Challenge(
            challenge_id=challenge_id,
            phone_number=phone,
            action=action,
            user_id=user_id,
            scope=scope,
            code_hash=self._codes.code_hash(challenge_id, code),
            code_mask=self._codes.mask(challenge_id, code),
            number_key=self._codes.subject_key("phone", phone),
            ip_key=self._ip_key(ip_address),
            message=message,
            sender_id=sender_id,
            locale=locale,
            created_at=now,
            expires_at=now + settings.code_ttl_seconds,
            max_attempts=settings.max_attempts,
            next_resend_at=now + settings.resend_cooldown_seconds,
            attempt_id=link.attempt_id if link else None,
            user_key=self._codes.subject_key("user", link.user_id) if link else None,
            owner=owner,
            replaces=replaces if scope is not None else None,
            proof_id=proof.token_id if proof else None,
            proof_expires_at=proof.expires_at if proof else None,
        )
        quota = SendQuota(challenge.number_key, challenge.ip_key, now, challenge.user_key, owner=owner)
        try:
            self._repository.create(challenge, quota, link)
        except RateLimitedError:
            metrics.add_metric(name="SendRateLimited", unit="Count", value=1)
            raise
        self._deliver(challenge, code, quota, rollback=True)
        metrics.add_metric(name="ChallengeCreated", unit="Count", value=1)
        logger.info("challenge created", challenge_id=challenge_id, phone_mask=mask_phone(phone))
        return self._sent(challenge), challenge

    # -- verify -------------------------------------------------------------------------------------------

    def verify(self, challenge_id: str, code: str) -> VerifyResult:
        """Check a code and, when it is right, issue a verification token.

        A challenge with a ``scope`` enrolls or replaces the user's SMS authenticator in the same write.

        Raises
        ------
        InvalidRequestError
            The code does not have the policy's length.
        RateLimitedError
            The challenge's number is locked out.
        """
        check = self.check_code(challenge_id, code)
        if not check.verified or check.challenge is None:
            return self._not_verified(check.failure_reason, check.attempts_remaining)
        challenge = check.challenge
        return VerifyResult(
            is_verified=True,
            token=self._verification_token(challenge),
            attempts_remaining=0,
            user_id=challenge.user_id,
            phone_number=challenge.phone_number,
            action=challenge.action,
        )

    def check_code(
        self,
        challenge_id: str,
        code: str,
        *,
        user_id: str | None = None,
        attempt_id: str | None = None,
        device_key: str | None = None,
        enroll_if_unenrolled: bool = False,
    ) -> CodeCheck:
        """Check a code with one conditional write, whatever concurrent requests do.

        ``user_id`` (when given) must own the challenge, else it behaves as unknown. On success the
        challenge's scope enrolls its number (only while the user's authenticator is still the one the
        enrollment was decided against), its step-up proof is spent, and ``attempt_id`` / ``device_key``
        record the tracked attempt's success and the device, all in the same write. With
        ``enroll_if_unenrolled`` the number becomes the user's authenticator only if the user has none.
        """
        challenge = self._repository.get(challenge_id) if is_challenge_id(challenge_id) else None
        lengths = {self._codes.length, challenge.code_length} if challenge else {self._codes.length}
        if len(code) not in lengths:
            raise InvalidRequestError(
                f"code must be {self._codes.length} digits",
                errors=[FieldError("code", f"must be exactly {self._codes.length} digits")],
            )
        now = self._clock.now()
        if challenge is None or (user_id is not None and challenge.user_id != user_id):
            return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", 0, None)
        state = challenge.state_at(now)
        if state is ChallengeState.FAILED:
            return CodeCheck(False, "MAX_ATTEMPTS_EXCEEDED", 0, challenge)
        if state is not ChallengeState.PENDING:
            return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", 0, challenge)

        candidate = self._codes.code_hash(challenge_id, code)
        enrolled = False
        if hmac.compare_digest(candidate, challenge.code_hash):
            enroll, replaces = self._enrollment(challenge, now), challenge.replaces
            optional = enroll is None and enroll_if_unenrolled and challenge.user_id is not None
            if optional and challenge.user_id is not None and self.authenticator_of(challenge.user_id) is None:
                enroll, replaces = _new_authenticator(challenge, now), None
            effects = VerifiedEffects(
                enroll=enroll,
                replaces=replaces,
                consume_proof=(challenge.proof_id, challenge.proof_expires_at or now) if challenge.proof_id else None,
                attempt_id=attempt_id,
                seen_device=(challenge.user_id, device_key) if device_key and challenge.user_id else None,
            )
            outcome = self._repository.mark_verified(challenge, candidate, now, effects)
            if outcome is VerifyOutcome.ENROLL_CONFLICT and optional:
                # The user enrolled a number meanwhile: the code still proves this number, but it enrolls nothing.
                effects = dataclasses.replace(effects, enroll=None)
                outcome = self._repository.mark_verified(challenge, candidate, now, effects)
            elif outcome is VerifyOutcome.ENROLL_CONFLICT:
                # The authenticator this enrollment was decided against was deleted or replaced: it is cancelled.
                outcome = VerifyOutcome.INVALID
            enrolled = outcome is VerifyOutcome.VERIFIED and effects.enroll is not None
        else:
            outcome = self._repository.record_failure(challenge, candidate, now)

        if outcome is VerifyOutcome.VERIFIED:
            metrics.add_metric(name="ChallengeVerified", unit="Count", value=1)
            logger.info("challenge verified", challenge_id=challenge_id, enrolled=enrolled)
            return CodeCheck(True, "", 0, challenge, enrolled=enrolled)
        metrics.add_metric(name="VerificationFailed", unit="Count", value=1)
        logger.info("verification failed", challenge_id=challenge_id, outcome=outcome.value)
        if outcome is VerifyOutcome.WRONG:
            return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", max(0, challenge.attempts_remaining - 1), challenge)
        if outcome is VerifyOutcome.EXHAUSTED:
            return CodeCheck(False, "MAX_ATTEMPTS_EXCEEDED", 0, challenge)
        return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", 0, challenge)

    @staticmethod
    def _enrollment(challenge: Challenge, now: int) -> Authenticator | None:
        if challenge.scope is None or challenge.user_id is None:
            return None
        return _new_authenticator(challenge, now)

    def _verification_token(self, challenge: Challenge) -> str:
        if self._tokens is None:
            raise RuntimeError("verify needs a token issuer")
        return self._tokens.issue(
            {
                "sub": challenge.user_id,
                "act": challenge.action,
                "chl": challenge.challenge_id,
                "state": CHALLENGE_SUCCEEDED,
                "amr": ["sms"],
                "phone_number": challenge.phone_number,
                "phone_number_verified": True,
            },
            token_type=VERIFICATION_TOKEN_TYPE,
        )

    @staticmethod
    def _not_verified(reason: str, remaining: int) -> VerifyResult:
        return VerifyResult.model_validate(
            {"is_verified": False, "failure_reason": reason, "attempts_remaining": remaining}
        )

    # -- resend -------------------------------------------------------------------------------------------

    def resend(self, challenge_id: str, *, user_id: str | None = None) -> ChallengeSent:
        """Send the same code again; expiry and attempts stay as they are.

        Raises
        ------
        ConflictError
            Unknown, verified, exhausted or expired challenge.
        RateLimitedError
            Inside the cooldown, over a send cap, or locked out.
        DeliveryFailedError
            The SMS could not be sent; the send was not charged.
        """
        challenge = self._repository.get(challenge_id) if is_challenge_id(challenge_id) else None
        now = self._clock.now()
        if user_id is not None and challenge is not None and challenge.user_id != user_id:
            challenge = None
        if challenge is None or challenge.state_at(now) is not ChallengeState.PENDING:
            raise ConflictError("this challenge can no longer be resent; start a new one")
        if now < challenge.next_resend_at:
            raise RateLimitedError("a resend is not available yet", retry_after=challenge.next_resend_at - now)
        cooldown = self._settings.resend_cooldown_seconds * 2 ** (challenge.resends + 1)
        quota = SendQuota(challenge.number_key, challenge.ip_key, now, challenge.user_key, owner=challenge.owner)
        updated = self._repository.record_resend(challenge, quota, now + cooldown)
        self._deliver(updated, self._codes.unmask(challenge_id, challenge.code_mask), quota, rollback=False)
        metrics.add_metric(name="ChallengeResent", unit="Count", value=1)
        logger.info("challenge resent", challenge_id=challenge_id, resends=updated.resends)
        return self._sent(updated)

    # -- claim and read -----------------------------------------------------------------------------------

    def claim(self, challenge_id: str, user_id: str) -> ClaimResult:
        """Attribute a verified challenge to a user.

        Raises
        ------
        ConflictError
            Unknown, not verified, claimed by another user, or past the claim window.
        """
        if not is_challenge_id(challenge_id):
            raise ConflictError("this challenge is not verified or is already claimed")
        challenge = self._repository.claim(challenge_id, user_id, self._clock.now())
        logger.info("challenge claimed", challenge_id=challenge_id)
        return ClaimResult(
            challenge_id=challenge.challenge_id,
            user_id=user_id,
            phone_number=challenge.phone_number,
            action=challenge.action,
        )

    def find(self, challenge_id: str) -> Challenge | None:
        """The stored challenge, or None for unknown and malformed IDs."""
        return self._repository.get(challenge_id) if is_challenge_id(challenge_id) else None

    def get(self, challenge_id: str) -> ChallengeView:
        """Read a challenge's public state.

        Raises
        ------
        NotFoundError
            Unknown or malformed ID.
        """
        challenge = self._repository.get(challenge_id) if is_challenge_id(challenge_id) else None
        if challenge is None:
            raise NotFoundError("no challenge with this ID")
        now = self._clock.now()
        state = challenge.state_at(now)
        return ChallengeView(
            challenge_id=challenge.challenge_id,
            state=state.value,
            action=challenge.action,
            user_id=challenge.claimed_by or challenge.user_id,
            phone_mask=mask_phone(challenge.phone_number),
            created_at=rfc3339(challenge.created_at),
            expires_at=rfc3339(challenge.expires_at),
            attempts_remaining=challenge.attempts_remaining if state is ChallengeState.PENDING else 0,
        )

    # -- helpers ------------------------------------------------------------------------------------------

    def _ip_key(self, ip_address: str | None) -> str | None:
        """The per-IP counter key: IPv4-mapped addresses count as IPv4, IPv6 per /64 (see otp_core.policy)."""
        if not ip_address:
            return None
        try:
            subject = ip_subject(ip_address)
        except ValueError:
            return None  # only the gateway's own source address gets here unvalidated; it is always an address
        return self._codes.subject_key("ip", subject)

    def _deliver(self, challenge: Challenge, code: str, quota: SendQuota, *, rollback: bool) -> None:
        if self._sender is None:
            raise RuntimeError("sending needs an SMS sender")
        template = challenge.message or default_template(challenge.locale)
        minutes = _minutes(challenge.expires_at - quota.now)
        body = render(template, app=self._settings.app_name, otp=code, minutes=minutes)
        sms = OutgoingSms(
            to=challenge.phone_number, body=body, sender_id=challenge.sender_id, challenge_id=challenge.challenge_id
        )
        try:
            sent = self._sender.send(sms)
        except (DeliveryFailedError, InvalidPhoneNumberError):
            # Nothing reached the user: the send is not charged, and a new challenge is not kept.
            self._repository.refund_send(challenge, quota, delete=rollback)
            logger.warning("sms delivery failed", challenge_id=challenge.challenge_id)
            raise
        if self._deliveries is not None:
            self._deliveries.record_sent(challenge.challenge_id, sent, self._clock.now())
        logger.info("sms sent", challenge_id=challenge.challenge_id, provider=sent.provider)

    def _sent(self, challenge: Challenge) -> ChallengeSent:
        return ChallengeSent(
            challenge_id=challenge.challenge_id,
            phone_mask=mask_phone(challenge.phone_number),
            expires_at=rfc3339(challenge.expires_at),
            resend_available_at=rfc3339(challenge.next_resend_at),
            attempts_remaining=challenge.attempts_remaining,
        )


def _new_authenticator(challenge: Challenge, now: int) -> Authenticator:
    """A replaced or new number is always a new authenticator, with a new ID."""
    return Authenticator(
        authenticator_id=str(uuid.uuid4()),
        user_id=challenge.user_id or "",
        phone_number=challenge.phone_number,
        verified_at=now,
        created_at=now,
    )


def stored_number(authenticator: Authenticator) -> str:
    """An enrolled number in its canonical spelling (numbers stored under v1 may carry a trunk prefix)."""
    from otp_core.phone import canonical_form  # only sending paths read enrolled numbers; they load phone anyway

    return canonical_form(authenticator.phone_number)


def _minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))
