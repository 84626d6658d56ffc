"""The challenge use cases: start and resend (sending), check a code, verify with a token, claim and read.

Pure logic over the ports; no boto3 here. Each use case is a class whose collaborators are all required,
built by one typed factory in ``otp_core.runtime``; the policy a request runs under is an argument of each
call. Every state change is delegated to one conditional write of the repository, so concurrent requests
cannot exceed a limit or use a code twice. Use cases return domain results (``otp_core.records`` and the
small results below); handlers shape the HTTP reply (``otp_core.replies``).
"""

from __future__ import annotations

import dataclasses
import hmac
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from otp_core.codes import CodeBook
from otp_core.errors import (
    ConflictError,
    DeliveryFailedError,
    DestinationBlockedError,
    FieldError,
    InvalidPhoneNumberError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    SendBudgetExceededError,
)
from otp_core.messages import app_template, autofill, check_template, render, sms_parts
from otp_core.observability import count, logger, mask_phone, metrics, tracer
from otp_core.policy import (
    SendCharge,
    SendReceipt,
    code_cutoff,
    failure_rule,
    ip_subject,
    lock_subjects,
    send_charge,
)
from otp_core.ports import ChallengeRepository, Clock, ConversionFeedback, IdentityRepository, SmsSender
from otp_core.records import (
    DEFAULT_APP,
    Authenticator,
    Challenge,
    ChallengeLink,
    ChallengeState,
    OutgoingSms,
    SendQuota,
    VerifiedEffects,
    VerifyOutcome,
    is_challenge_id,
)
from otp_core.settings import Policy
from otp_core.tokens import VERIFICATION_TOKEN_TYPE, TokenIssuer

if TYPE_CHECKING:  # the guards' modules load with the first send, not with every function
    from otp_core.guard import SendGuard
    from otp_core.spend import BudgetCharge

CHALLENGE_SUCCEEDED = "CHALLENGE_SUCCEEDED"
UNKNOWN_REGION = "ZZ"
PhoneCheck = Callable[[str, Policy], str]


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
class Verification:
    """A server verify: the check, and the verification token when it succeeded."""

    check: CodeCheck
    token: str | None = None


@dataclass(frozen=True)
class Proof:
    """A step-up proof (a client token that proves a challenge to the current number) an enrollment spends."""

    token_id: str
    expires_at: int


@dataclass(frozen=True)
class NewChallenge:
    """What to send, and on whose behalf.

    ``enrolled_as``: the challenge goes to the user's enrolled number, the authenticator with this ID: it is
    the owner's challenge (owner's allowance and lock) and counts only while that authenticator stands.
    ``replaces``: for an enrollment (``scope``), the authenticator ID its verification may replace.
    ``proof``: the step-up proof the enrollment spends when it is verified.
    ``end_user``: the text and sender ID come from an end user, not from the customer's server.
    ``link``: the tracked attempt or pointer written in the same transaction as the challenge.
    """

    phone_number: str
    action: str
    user_id: str | None = None
    scope: str | None = None
    message: str | None = None
    sender_id: str | None = None
    locale: str | None = None
    ip_address: str | None = None
    link: ChallengeLink | None = None
    enrolled_as: str | None = None
    replaces: str | None = None
    proof: Proof | None = None
    end_user: bool = False


def stored_number(authenticator: Authenticator) -> str:
    """An enrolled number in its canonical spelling (numbers stored under v1 may carry a trunk prefix)."""
    from otp_core.phone import canonical_form  # only sending paths read enrolled numbers; they load phone anyway

    return canonical_form(authenticator.phone_number)


class ChallengeStarter:
    """Start and resend challenges: validate, charge the limits, store, send.

    Parameters
    ----------
    repository:
        Where challenges and counters live.
    identities:
        Authenticators (a create naming a user goes to, or may replace, the enrolled number).
    clock:
        Source of the current time.
    codes:
        Keyed code operations (its key comes from Secrets Manager).
    sender:
        The SMS port (routing and failover behind it).
    phone_check:
        Validates a number against the policy and returns its region.
    guard:
        The fraud guard and spend guard (their counts and caps go into the same write as the send's).
    test_sender:
        Where sends to the app's test numbers go instead of a provider (nothing leaves the stack).
    app_id:
        The app whose challenges these are (the repositories are this app's).
    """

    def __init__(
        self,
        repository: ChallengeRepository,
        identities: IdentityRepository,
        clock: Clock,
        codes: CodeBook,
        sender: SmsSender | Callable[[Policy], SmsSender],
        phone_check: PhoneCheck,
        guard: SendGuard,
        *,
        test_sender: SmsSender | None = None,
        app_id: str = DEFAULT_APP,
    ) -> None:
        self._app = app_id
        self._test_sender = test_sender
        self._guard = guard
        self._repository = repository
        self._identities = identities
        self._clock = clock
        self._codes = codes
        self._sender = sender
        self._phone_check = phone_check

    @tracer.capture_method(capture_response=False)
    def create(
        self,
        policy: Policy,
        *,
        action: str,
        phone_number: str | None = None,
        user_id: str | None = None,
        scope: str | None = None,
        message: str | None = None,
        sender_id: str | None = None,
        locale: str | None = None,
        ip_address: str | None = None,
    ) -> Challenge:
        """Start a challenge from the customer's server (to the user's enrolled number when none is given).

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
        authenticator = self.authenticator_of(user_id) if user_id else None
        enrolled = stored_number(authenticator) if authenticator else None
        if scope == "add:authenticators" and authenticator is not None:
            raise ConflictError("this user already has an SMS authenticator; use scope update:authenticators")
        phone = phone_number if phone_number is not None or scope is not None else enrolled
        if phone is None:
            raise InvalidRequestError(
                "phoneNumber is required",
                errors=[FieldError("phoneNumber", "required unless userId has an enrolled SMS number")],
            )
        new = NewChallenge(
            phone,
            action,
            user_id=user_id,
            scope=scope,
            message=message,
            sender_id=sender_id,
            locale=locale,
            ip_address=ip_address,
            # A create naming the user whose enrolled number it targets draws on the owner's allowance.
            enrolled_as=authenticator.authenticator_id if authenticator and phone == enrolled else None,
            replaces=authenticator.authenticator_id if authenticator and scope else None,
        )
        return self.start(new, policy)

    def authenticator_of(self, user_id: str) -> Authenticator | None:
        """The user's SMS authenticator, or None."""
        return self._identities.get_authenticator(user_id)

    def check(self, new: NewChallenge, policy: Policy) -> str:
        """The input checks of a send, before anything is read or written; returns the number's region.

        Raises
        ------
        InvalidPhoneNumberError, UnsupportedCountryError, UnsupportedNumberTypeError
            The number fails the policy.
        InvalidRequestError
            An end user picked a sender ID the operator does not allow.
        InvalidMessageTemplateError
            The custom text breaks the template rules (the end user's stricter ones when ``new.end_user``).
        """
        region = self._phone_check(new.phone_number, policy)
        if new.end_user and new.sender_id is not None and new.sender_id not in policy.end_user_sender_ids:
            raise InvalidRequestError(
                "this sender ID is not allowed",
                errors=[FieldError("senderId", "not one of the sender IDs the operator allows end users")],
            )
        if new.message is not None:
            check_template(
                new.message,
                app=policy.app_name,
                code_length=policy.code_length,
                minutes=_minutes(policy.code_ttl_seconds),
                end_user=new.end_user,
                android_app_hash=policy.android_app_hash,
                web_otp_domain=policy.web_otp_domain,
            )
        return region

    @tracer.capture_method(capture_response=False)
    def start(self, new: NewChallenge, policy: Policy) -> Challenge:
        """Validate, store and send a new challenge; its ``link`` is written in the same transaction.

        Raises
        ------
        DestinationBlockedError
            The fraud guard blocks the destination (or this send tripped it); nothing was sent or charged.
        SendBudgetExceededError
            An SMS budget is spent for its window; nothing was sent or charged.
        """
        region = self.check(new, policy)
        test_code = policy.test_code(new.phone_number)
        if test_code is not None and new.scope is not None:
            raise InvalidPhoneNumberError("a test number cannot be enrolled as an authenticator")
        now = self._clock.now()
        challenge_id = str(uuid.uuid4())
        code = test_code or self._codes.new_code(policy.code_length)
        link = new.link
        # A test number's send reaches no provider: no fraud bucket counts it and no budget pays for it.
        fraud = None
        if test_code is None:
            fraud = self._guard.new_challenge(
                policy,
                app_id=self._app,
                challenge_id=challenge_id,
                phone_number=new.phone_number,
                region=region,
                now=now,
                enrolled=new.enrolled_as is not None,
            )
        challenge = Challenge(
            challenge_id=challenge_id,
            phone_number=new.phone_number,
            action=new.action,
            user_id=new.user_id,
            scope=new.scope,
            code_hash=self._codes.code_hash(challenge_id, code),
            code_mask=self._codes.mask(challenge_id, code),
            number_key=self._codes.subject_key("phone", new.phone_number),
            ip_key=self._ip_key(new.ip_address),
            message=new.message,
            sender_id=new.sender_id,
            locale=new.locale,
            created_at=now,
            expires_at=now + policy.code_ttl_seconds,
            max_attempts=policy.max_attempts,
            next_resend_at=now + policy.resend_cooldown_seconds,
            attempt_id=link.attempt_id if link else None,
            user_key=self._codes.subject_key("user", link.user_id) if link and link.user_id is not None else None,
            enrolled_as=new.enrolled_as,
            replaces=new.replaces if new.scope is not None else None,
            proof_id=new.proof.token_id if new.proof else None,
            proof_expires_at=new.proof.expires_at if new.proof else None,
            region=region,
            fraud_app=self._app if fraud is not None and fraud.count else None,
            test=test_code is not None,
        )
        body = self._body(challenge, code, policy)
        charge = dataclasses.replace(
            send_charge(_quota(challenge, now), policy), fraud=fraud, budgets=self._budgets(challenge, body, policy)
        )
        try:
            receipt = self._repository.create(challenge, charge, link)
        except DestinationBlockedError as blocked:
            self._guard.refused(blocked, policy, app_id=self._app, region=region, now=now)
            raise
        except RateLimitedError as limited:
            self._limited(limited, region)
            raise
        self._guard.observed(receipt, region=region)
        self._deliver(challenge, body, charge, receipt, policy, rollback=True)
        metrics.add_metric(name="ChallengeCreated", unit="Count", value=1)
        logger.info("challenge created", challenge_id=challenge_id, phone_mask=mask_phone(new.phone_number))
        return challenge

    @tracer.capture_method(capture_response=False)
    def resend(self, challenge_id: str, policy: Policy, *, user_id: str | None = None) -> Challenge:
        """Send the same code again; expiry and attempts stay as they are.

        Raises
        ------
        ConflictError
            Unknown, verified, exhausted or expired challenge.
        RateLimitedError
            Inside the cooldown, over a send cap, or locked out (SendBudgetExceededError: a budget is spent).
        DestinationBlockedError
            The destination is blocked, or its buckets would trip now (a resend is judged, not counted).
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
        cooldown = policy.resend_cooldown_seconds * 2 ** (challenge.resends + 1)
        body = self._body(challenge, self._codes.unmask(challenge_id, challenge.code_mask), policy)
        fraud = None
        if challenge.region is not None and not challenge.test:
            fraud = self._guard.new_challenge(
                policy,
                app_id=challenge.fraud_app or self._app,
                challenge_id=challenge_id,
                phone_number=challenge.phone_number,
                region=challenge.region,
                now=now,
                enrolled=challenge.owner,
                resend=True,
            )
        charge = dataclasses.replace(
            send_charge(_quota(challenge, now), policy), fraud=fraud, budgets=self._budgets(challenge, body, policy)
        )
        try:
            updated, receipt = self._repository.record_resend(challenge, charge, now + cooldown)
        except DestinationBlockedError as blocked:
            # Refused, but no block recorded: resends of real users in one block must not close it for 12 hours
            # (a new challenge there would trip it, and record the block, all the same).
            refusal = DestinationBlockedError(blocked.level)
            region = challenge.region or UNKNOWN_REGION
            self._guard.refused(refusal, policy, app_id=challenge.fraud_app or self._app, region=region, now=now)
            raise refusal from None
        except RateLimitedError as limited:
            self._limited(limited, challenge.region)
            raise
        self._guard.observed(receipt, region=challenge.region or UNKNOWN_REGION)
        self._deliver(updated, body, charge, receipt, policy, rollback=False)
        metrics.add_metric(name="ChallengeResent", unit="Count", value=1)
        logger.info("challenge resent", challenge_id=challenge_id, resends=updated.resends)
        return updated

    def find(self, challenge_id: str) -> Challenge | None:
        """The stored challenge, or None for unknown and malformed IDs."""
        return self._repository.get(challenge_id) if is_challenge_id(challenge_id) else None

    def _ip_key(self, ip_address: str | None) -> str | None:
        """The per-IP counter key: IPv4-mapped addresses count as IPv4, IPv6 per /64 (see otp_core.policy)."""
        if not ip_address:
            return None
        try:
            subject = ip_subject(ip_address)
        except ValueError:
            return None  # only the gateway's own source address gets here unvalidated; it is always an address
        return self._codes.subject_key("ip", subject)

    def _body(self, challenge: Challenge, code: str, policy: Policy) -> str:
        template = challenge.message or app_template(policy.templates, challenge.locale)
        minutes = _minutes(challenge.expires_at - self._clock.now())
        body = render(template, app=policy.app_name, otp=code, minutes=minutes)
        return autofill(body, code, android_app_hash=policy.android_app_hash, web_otp_domain=policy.web_otp_domain)

    def _budgets(self, challenge: Challenge, body: str, policy: Policy) -> tuple[BudgetCharge, ...]:
        if challenge.test:
            return ()  # a test number's SMS is never sent, so it costs nothing
        # A fifth of each budget is held for the users' enrolled numbers (the owner's challenges).
        return self._guard.budgets(
            policy,
            app_id=self._app,
            parts=sms_parts(body),
            enrolled=challenge.owner,
            challenge_id=challenge.challenge_id,
        )

    @staticmethod
    def _limited(error: RateLimitedError, region: str | None) -> None:
        if isinstance(error, SendBudgetExceededError):
            count("SmsBudgetExceeded", region)
            logger.warning("sms budget exceeded", country=region)
        else:
            metrics.add_metric(name="SendRateLimited", unit="Count", value=1)

    def _sender_for(self, challenge: Challenge, policy: Policy) -> SmsSender:
        if challenge.test:
            if self._test_sender is None:
                raise DeliveryFailedError("test numbers are not available here")
            return self._test_sender
        return self._sender if isinstance(self._sender, SmsSender) else self._sender(policy)

    def _deliver(
        self,
        challenge: Challenge,
        body: str,
        charge: SendCharge,
        receipt: SendReceipt,
        policy: Policy,
        *,
        rollback: bool,
    ) -> None:
        sms = OutgoingSms(
            to=challenge.phone_number,
            body=body,
            sender_id=challenge.sender_id or policy.sender_id,
            challenge_id=challenge.challenge_id,
            send=challenge.resends,
            expires_at=challenge.expires_at,
            region=challenge.region,
        )
        try:
            sent = self._sender_for(challenge, policy).send(sms)
        except InvalidPhoneNumberError as refused:
            # A provider refused the number (a 4xx): nothing is charged anywhere, and a new challenge is not kept,
            # unless earlier attempts of a failover may have delivered: their SMS stay on the budgets and buckets.
            first_attempt = refused.attempts <= 1
            self._repository.refund_send(challenge, charge, delete=rollback, receipt=receipt if first_attempt else None)
            self._repository.charge_attempts(receipt, refused.attempts - 2, charge.now)
            logger.warning("sms refused by the provider", challenge_id=challenge.challenge_id)
            raise
        except DeliveryFailedError as failed:
            # Nothing reached the user: the caller's limits are not charged, a new challenge is not kept, and its
            # buckets do not count it (it can never be verified: an outage must not look like pumping). Every
            # provider attempt may have been billed, so the budgets keep them; with none made, nothing is kept.
            kept = dataclasses.replace(receipt, budget_shards=()) if failed.attempts else receipt
            self._repository.refund_send(challenge, charge, delete=rollback, receipt=kept)
            self._repository.charge_attempts(receipt, failed.attempts - 1, charge.now)
            logger.warning("sms delivery failed", challenge_id=challenge.challenge_id)
            raise
        self._repository.charge_attempts(receipt, sent.attempts - 1, charge.now)
        # Nothing is recorded: the challenge ID and send number travel with the message (otp_core.sms.delivery).
        if challenge.test:
            metrics.add_metric(name="TestNumberSent", unit="Count", value=1)
            logger.info("test number sent", challenge_id=challenge.challenge_id)
            return
        count("SmsSent", challenge.region)
        logger.info("sms sent", challenge_id=challenge.challenge_id, provider=sent.provider)


class CodeChecker:
    """Check a code with one conditional write, with the effects a success has.

    Parameters
    ----------
    repository, identities, clock, codes:
        As for :class:`ChallengeStarter`; identities are read when a success may enroll the number.
    feedback:
        Told that a verified challenge's SMS converted, when its delivery receipt (with the provider's message
        ID) arrived before the code did; the receipt tells it otherwise (otp_core.sms.reports).
    """

    def __init__(
        self,
        repository: ChallengeRepository,
        identities: IdentityRepository,
        clock: Clock,
        codes: CodeBook,
        feedback: ConversionFeedback | None = None,
    ) -> None:
        self._repository = repository
        self._identities = identities
        self._clock = clock
        self._codes = codes
        self._feedback = feedback

    @tracer.capture_method(capture_response=False)
    def check_code(
        self,
        challenge_id: str,
        code: str,
        policy: Policy,
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

        Raises
        ------
        InvalidRequestError
            The code has neither the policy's length nor the challenge's.
        RateLimitedError
            The challenge's number is locked out.
        """
        challenge = self._repository.get(challenge_id) if is_challenge_id(challenge_id) else None
        lengths = {policy.code_length, challenge.code_length} if challenge else {policy.code_length}
        if len(code) not in lengths:
            raise InvalidRequestError(
                f"code must be {policy.code_length} digits",
                errors=[FieldError("code", f"must be exactly {policy.code_length} digits")],
            )
        now = self._clock.now()
        cutoff = code_cutoff(now, policy)
        if challenge is None or (user_id is not None and challenge.user_id != user_id):
            return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", 0, None)
        state = challenge.state_at(cutoff)
        if state is ChallengeState.FAILED:
            return CodeCheck(False, "MAX_ATTEMPTS_EXCEEDED", 0, challenge)
        if state is not ChallengeState.PENDING:
            return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", 0, challenge)

        candidate = self._codes.code_hash(challenge_id, code)
        enrolled = False
        if hmac.compare_digest(candidate, challenge.code_hash):
            outcome, enrolled = self._verified(
                challenge, candidate, now, cutoff, policy, attempt_id, device_key, enroll_if_unenrolled
            )
        else:
            rule = failure_rule(challenge.number_key, challenge.owner, policy)
            outcome = self._repository.record_failure(challenge, candidate, now, rule, cutoff=cutoff)

        if outcome is VerifyOutcome.VERIFIED:
            metrics.add_metric(name="ChallengeVerified", unit="Count", value=1)
            count("SmsVerified", challenge.region)
            logger.info("challenge verified", challenge_id=challenge_id, enrolled=enrolled)
            self._converted(challenge)
            return CodeCheck(True, "", 0, challenge, enrolled=enrolled)
        metrics.add_metric(name="VerificationFailed", unit="Count", value=1)
        logger.info("verification failed", challenge_id=challenge_id, outcome=outcome.value)
        if outcome is VerifyOutcome.WRONG:
            return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", max(0, challenge.attempts_remaining - 1), challenge)
        if outcome is VerifyOutcome.EXHAUSTED:
            return CodeCheck(False, "MAX_ATTEMPTS_EXCEEDED", 0, challenge)
        return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", 0, challenge)

    def _converted(self, challenge: Challenge) -> None:
        """Conversion feedback for the latest send's message, when its delivery receipt came first."""
        delivery = challenge.delivery
        if self._feedback is None or delivery is None or delivery.status != "delivered":
            return
        if delivery.provider and delivery.message_id and delivery.send == challenge.resends:
            self._feedback.converted(delivery.provider, delivery.message_id)

    def _verified(
        self,
        challenge: Challenge,
        candidate: str,
        now: int,
        cutoff: int,
        policy: Policy,
        attempt_id: str | None,
        device_key: str | None,
        enroll_if_unenrolled: bool,
    ) -> tuple[VerifyOutcome, bool]:
        """Mark a right code verified with its effects; (outcome, whether the number was enrolled)."""
        enroll = _new_authenticator(challenge, now) if challenge.scope and challenge.user_id else None
        replaces = challenge.replaces
        # A test number proves nothing about a person: it is never enrolled.
        optional = enroll is None and enroll_if_unenrolled and challenge.user_id is not None and not challenge.test
        if optional and challenge.user_id is not None and self._identities.get_authenticator(challenge.user_id) is None:
            enroll, replaces = _new_authenticator(challenge, now), None
        effects = VerifiedEffects(
            enroll=enroll,
            replaces=replaces,
            consume_proof=(challenge.proof_id, challenge.proof_expires_at or now) if challenge.proof_id else None,
            # An enrollment already conditions the authenticator item (its replaces check); one item, one op.
            still_enrolled=(challenge.user_id, challenge.enrolled_as)
            if challenge.enrolled_as and challenge.user_id and enroll is None
            else None,
            attempt_id=attempt_id,
            seen_device=(challenge.user_id, device_key) if device_key and challenge.user_id else None,
        )
        locks = tuple(lock_subjects(challenge.number_key, challenge.owner))
        claimable_until = now + policy.token_ttl_seconds
        outcome = self._repository.mark_verified(
            challenge, candidate, now, locks=locks, claimable_until=claimable_until, effects=effects, cutoff=cutoff
        )
        if outcome is VerifyOutcome.ENROLL_CONFLICT and optional:
            # The user enrolled a number meanwhile: the code still proves this number, but it enrolls nothing.
            effects = dataclasses.replace(effects, enroll=None)
            outcome = self._repository.mark_verified(
                challenge, candidate, now, locks=locks, claimable_until=claimable_until, effects=effects, cutoff=cutoff
            )
        elif outcome is VerifyOutcome.ENROLL_CONFLICT:
            # The authenticator this enrollment was decided against was deleted or replaced: it is cancelled.
            outcome = VerifyOutcome.INVALID
        return outcome, outcome is VerifyOutcome.VERIFIED and effects.enroll is not None


class ChallengeVerifier:
    """A server verify: check the code and, when it is right, issue the verification token."""

    def __init__(self, checker: CodeChecker, tokens: TokenIssuer) -> None:
        self._checker = checker
        self._tokens = tokens

    @tracer.capture_method(capture_response=False)
    def verify(self, challenge_id: str, code: str, policy: Policy) -> Verification:
        """Check a code; a challenge with a ``scope`` enrolls or replaces the user's authenticator in the same
        write.

        Raises
        ------
        InvalidRequestError
            The code does not have the policy's length.
        RateLimitedError
            The challenge's number is locked out.
        """
        check = self._checker.check_code(challenge_id, code, policy)
        if not check.verified or check.challenge is None:
            return Verification(check)
        return Verification(check, self.token_for(check.challenge, policy))

    def token_for(
        self, challenge: Challenge, policy: Policy, *, user_id: str | None = None, not_after: int | None = None
    ) -> str:
        """The verification token of a verified challenge: its subject the challenge's user (or ``user_id``, the
        user a claim names), alive the policy's token lifetime and never past ``not_after`` (a claim's window)."""
        return self._tokens.issue(
            {
                "sub": user_id if user_id is not None else challenge.user_id,
                "act": challenge.action,
                "chl": challenge.challenge_id,
                "state": CHALLENGE_SUCCEEDED,
                "amr": ["sms"],
                "phone_number": challenge.phone_number,
                "phone_number_verified": True,
            },
            token_type=VERIFICATION_TOKEN_TYPE,
            ttl_seconds=policy.token_ttl_seconds,
            audience=policy.token_audience,
            not_after=not_after,
        )


class ChallengeRecords:
    """Read and claim challenges (no codes, no sending)."""

    def __init__(self, repository: ChallengeRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    def now(self) -> int:
        return self._clock.now()

    @tracer.capture_method(capture_response=False)
    def claim(self, challenge_id: str, user_id: str, *, again: bool = True) -> Challenge:
        """Attribute a verified challenge to a user (again by the same user, unless ``again`` is false).

        Raises
        ------
        ConflictError
            Unknown, not verified, claimed by another user (or at all, when ``again`` is false), or past the claim
            window.
        """
        if not is_challenge_id(challenge_id):
            raise ConflictError("this challenge is not verified or is already claimed")
        challenge = self._repository.claim(challenge_id, user_id, self._clock.now(), again=again)
        logger.info("challenge claimed", challenge_id=challenge_id)
        return challenge

    @tracer.capture_method(capture_response=False)
    def cancel(self, challenge_id: str) -> Challenge | None:
        """Make a pending challenge unusable (it reads as EXPIRED from now on), with one conditional write; its
        sends stay counted. None when it was not pending (unknown, malformed, verified, exhausted, expired)."""
        if not is_challenge_id(challenge_id):
            return None
        cancelled = self._repository.cancel(challenge_id, self._clock.now())
        if cancelled is not None:
            logger.info("challenge cancelled", challenge_id=challenge_id)
        return cancelled

    @tracer.capture_method(capture_response=False)
    def get(self, challenge_id: str) -> Challenge:
        """Read a challenge (its visible state is ``challenge.state_at(now)``).

        Raises
        ------
        NotFoundError
            Unknown or malformed ID.
        """
        challenge = self._repository.get(challenge_id) if is_challenge_id(challenge_id) else None
        if challenge is None:
            raise NotFoundError("no challenge with this ID")
        return challenge


def _quota(challenge: Challenge, now: int) -> SendQuota:
    return SendQuota(challenge.number_key, challenge.ip_key, now, challenge.user_key, owner=challenge.owner)


def _new_authenticator(challenge: Challenge, now: int) -> Authenticator:
    """A replaced or new number is always a new authenticator, with a new ID."""
    return Authenticator(
        authenticator_id=str(uuid.uuid4()),
        user_id=challenge.user_id or "",
        phone_number=challenge.phone_number,
        verified_at=now,
        created_at=now,
    )


def _minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))
