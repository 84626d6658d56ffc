"""The small abstract ports the use cases talk to (records live in ``otp_core.records``).

Adapters (DynamoDB, SNS, KMS, Secrets Manager) implement the ports; unit tests use in-memory fakes.
"""

from __future__ import annotations

import builtins
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from otp_core.policy import FailureRule, SendCharge, SendReceipt
from otp_core.records import (
    Authenticator,
    Challenge,
    ChallengeLink,
    OutgoingSms,
    SentSms,
    TrackedAttempt,
    VerifiedEffects,
    VerifyOutcome,
)

if TYPE_CHECKING:
    from otp_core.apps import ApiKey, AppRecord, KeyGrant
    from otp_core.fraud import Block, Bucket, Guard, Rules, Trip


class Clock(ABC):
    @abstractmethod
    def now(self) -> int:
        """Current time in whole epoch seconds."""


class SystemClock(Clock):
    def now(self) -> int:
        return int(time.time())


class ChallengeRepository(ABC):
    """Persistence of challenges and of the counters that limit them.

    Every state change is one conditional write: limits, attempts and transitions are enforced by the
    store's conditions, never by a value read earlier. Which counters, caps and locks apply is decided by
    ``otp_core.policy`` and handed in; a store only translates it into its write.
    """

    @abstractmethod
    def create(self, challenge: Challenge, charge: SendCharge, link: ChallengeLink | None = None) -> SendReceipt:
        """Store a new challenge, charge one send and write its ``link``, atomically, with the fraud guard's
        counts and the budgets' charges of ``charge`` in the same write.

        Raises
        ------
        RateLimitedError
            A send cap is reached or a lock is in force; nothing was written.
        DestinationBlockedError
            A block in force, or this send trips a bucket (``block`` mode; ``trip`` says why); nothing written.
        SendBudgetExceededError
            A budget has no room for the send's parts; nothing was written.
        ConflictError
            The linked tracked attempt no longer exists, has expired or belongs to another user.
        """

    @abstractmethod
    def get(self, challenge_id: str) -> Challenge | None:
        """Return the stored challenge, expired ones included, or None."""

    @abstractmethod
    def record_resend(
        self, challenge: Challenge, charge: SendCharge, next_resend_at: int
    ) -> tuple[Challenge, SendReceipt]:
        """Count one resend of ``challenge`` (as read) and charge it and its budgets, atomically.

        Raises
        ------
        RateLimitedError
            A send cap is reached or a lock is in force.
        SendBudgetExceededError
            A budget has no room for the send's parts.
        ConflictError
            The challenge changed since it was read (verified, exhausted, resent concurrently).
        """

    @abstractmethod
    def refund_send(
        self, challenge: Challenge, charge: SendCharge, *, delete: bool, receipt: SendReceipt | None = None
    ) -> None:
        """Undo the charge of a send that could not be delivered (and the challenge when ``delete``); with
        ``receipt`` (a provider refused the number) also its bucket counts and budget charges."""

    @abstractmethod
    def charge_attempts(self, receipt: SendReceipt, attempts: int, now: int) -> None:
        """Charge the receipt's budgets ``attempts`` more times (provider attempts beyond the first)."""

    @abstractmethod
    def record_failure(
        self, challenge: Challenge, code_hash: str, now: int, rule: FailureRule, *, cutoff: int | None = None
    ) -> VerifyOutcome:
        """Count one wrong code against the challenge and its number, atomically; the failure that reaches the
        threshold sets the rule's lock in the same write.

        The challenge counts as unexpired while its ``expires_at`` is after ``cutoff`` (``now`` when None;
        see ``otp_core.policy.code_cutoff``).

        Returns WRONG when the attempt was counted, EXHAUSTED when no attempt was left, INVALID when the
        challenge is no longer pending or has expired.

        Raises
        ------
        RateLimitedError
            A lock is in force.
        """

    @abstractmethod
    def mark_verified(
        self,
        challenge: Challenge,
        code_hash: str,
        now: int,
        *,
        locks: tuple[str, ...],
        claimable_until: int,
        effects: VerifiedEffects | None = None,
        cutoff: int | None = None,
    ) -> VerifyOutcome:
        """Turn a pending challenge into a verified one if ``code_hash`` is its hash, with ``effects``, atomically.

        Expiry is judged against ``cutoff`` as for :meth:`record_failure`.

        The challenge can be claimed until ``claimable_until``. Returns VERIFIED, EXHAUSTED / INVALID when
        another request got there first or a linked record (tracked attempt, step-up proof) is gone or
        expired, or ENROLL_CONFLICT when only the enrollment's expectation of the user's authenticator
        failed; in every case but VERIFIED nothing was written.

        Raises
        ------
        RateLimitedError
            One of ``locks`` is in force.
        """

    @abstractmethod
    def cancel(self, challenge_id: str, now: int) -> Challenge | None:
        """Make a pending challenge unusable for good, with one conditional write: it must be this app's, pending,
        not exhausted and unexpired, and it becomes EXPIRED as of ``now`` (stored, so no later check, resend or
        grace period reopens it). Its counters, buckets and budgets stay charged: a cancel is no refund.

        Returns the challenge as it is now, or None when there was nothing pending to cancel (unknown,
        another app's, verified, exhausted, expired or already cancelled).
        """

    @abstractmethod
    def claim(self, challenge_id: str, user_id: str, now: int, *, again: bool = True) -> Challenge:
        """Attribute a verified challenge to ``user_id``: idempotent for the same user, unless ``again`` is false
        (then only the first claim succeeds: a caller that issues a token per claim issues one per challenge).

        Raises
        ------
        ConflictError
            Unknown, not verified, claimed by another user (or already claimed, when ``again`` is false), or past
            its claim window.
        """


class FraudStore(ABC):
    """Blocks and safe lists of the fraud guard (the counts live with the challenges' writes)."""

    @abstractmethod
    def guard(self, app_id: str, now: int) -> Guard:
        """The blocks in force for ``app_id`` (its own and those for every app) and its safe list."""

    @abstractmethod
    def record_trip(self, app_id: str, trip: Trip, now: int, rules: Rules) -> Block:
        """Block a tripped bucket: 12 hours, doubled when it tripped within 7 days; an existing longer block
        stays. Returns the block in force."""

    @abstractmethod
    def blocks(self, app_id: str, now: int) -> list[Block]:
        """Blocks in force for ``app_id``, those for every app included."""

    @abstractmethod
    def put_block(self, block: Block) -> Block:
        """Store a manual block (it replaces a trip's block of the same bucket)."""

    @abstractmethod
    def delete_block(self, app_id: str, bucket: Bucket, now: int) -> bool:
        """Lift ``app_id``'s block of ``bucket`` and reset the bucket's counts and trip history; False when
        the bucket is not blocked."""

    @abstractmethod
    def safe_list(self, app_id: str) -> tuple[str, ...]:
        """The app's safe list."""

    @abstractmethod
    def put_safe_list(self, app_id: str, entries: tuple[str, ...]) -> tuple[str, ...]:
        """Replace the app's safe list."""


class IdentityRepository(ABC):
    """Authenticators, tracked attempts, known devices and used tokens."""

    @abstractmethod
    def get_authenticator(self, user_id: str) -> Authenticator | None: ...

    @abstractmethod
    def put_authenticator(self, authenticator: Authenticator) -> Authenticator:
        """Create or replace the user's SMS authenticator.

        The same number keeps its ID and ``created_at``; another number is a new authenticator with the new ID.
        """

    @abstractmethod
    def delete_authenticator(self, user_id: str, authenticator_id: str) -> bool:
        """Delete it if it has this ID; False when there was nothing to delete."""

    @abstractmethod
    def put_attempt(self, attempt: TrackedAttempt, *, seen_device: bool) -> None:
        """Store a tracked attempt and, when ``seen_device``, mark its device as seen for its action only.

        An ALLOW outcome proves nothing about the device, so it must not make the device known to the rules
        of other actions; a completed challenge (see :class:`VerifiedEffects`) makes it known for all.
        """

    @abstractmethod
    def get_attempt(self, attempt_id: str) -> TrackedAttempt | None: ...

    @abstractmethod
    def is_known_device(self, user_id: str, device_key: str, action: str) -> bool:
        """True when the device completed a challenge of the user, or was allowed in for this action."""

    @abstractmethod
    def token_used(self, token_id: str) -> bool:
        """True when a token with this ID was validated or spent as a step-up proof."""

    @abstractmethod
    def get_pointer(self, pointer_key: str) -> str | None:
        """The challenge ID stored under a pointer key (see :class:`ChallengeLink`)."""

    @abstractmethod
    def consume_token(self, token_id: str, expires_at: int, *, challenge_id: str | None = None) -> bool:
        """Record a token as used, and with ``challenge_id`` the challenge it proves too; False if either was used
        before (one conditional write, or one transaction of both)."""


class AppStore(ABC):
    """Apps and their API keys (otp_core.apps); every change is one conditional write or transaction."""

    @abstractmethod
    def get(self, app_id: str) -> AppRecord | None:
        """The record, deleted ones included (None: never created)."""

    @abstractmethod
    def list(self) -> builtins.list[AppRecord]:
        """Every live app."""

    @abstractmethod
    def create(self, record: AppRecord, audience: str, identity_provider: str | None = None) -> None:
        """Store a new app (ConflictError: the ID was ever used, or the audience or identity provider (issuer
        and audience, one string) is another app's)."""

    @abstractmethod
    def ensure(self, record: AppRecord) -> AppRecord:
        """The stored record of ``record.app_id``, storing ``record`` first if there is none."""

    @abstractmethod
    def update(
        self,
        old: AppRecord,
        name: str,
        settings: dict[str, Any],
        old_audience: str,
        audience: str,
        identity_provider: str | None = None,
    ) -> None:
        """Replace name and settings if ``old`` is still the stored version, reserving the new audience and
        identity provider (ConflictError: changed meanwhile, or a reservation is another app's)."""

    @abstractmethod
    def delete(self, app_id: str, now: int) -> None:
        """Mark the app deleted for good and revoke its keys (NotFoundError: no such live app)."""

    @abstractmethod
    def keys(self, app_id: str) -> builtins.list[ApiKey]:
        """The app's live keys."""

    @abstractmethod
    def add_key(self, key: ApiKey, *, capped: bool = True) -> bool:
        """Store a new key (ConflictError: 5 already; NotFoundError: no such live app)."""

    @abstractmethod
    def revoke(self, key: ApiKey, *, deleted: bool = False) -> bool:
        """Revoke a listed key; False when it was no longer listed."""

    @abstractmethod
    def grant(self, digest: str) -> KeyGrant | None:
        """What a key digest opens (revoked keys answer with ``revoked`` set)."""

    @abstractmethod
    def touch(self, app_id: str, key_id: str, now: int, every: int) -> None:
        """Record a key's last use, at most once per ``every`` seconds."""

    @abstractmethod
    def app_of_sid(self, sid: str) -> str | None:
        """The app a Twilio Service SID's digits name."""


class SmsSender(ABC):
    """Sends one SMS. Implementations wrap their SDK or HTTP errors in DeliveryFailedError."""

    @abstractmethod
    def send(self, sms: OutgoingSms) -> SentSms: ...


class DeliveryLog(ABC):
    """Records on a challenge what a provider's signed receipt reported of its SMS (never the body).

    Nothing is written when an SMS is sent: the challenge ID and the send number travel with the message (the
    provider's context, callback URL or body), so a receipt finds its challenge and send by itself.
    """

    @abstractmethod
    def record_outcome(
        self, challenge_id: str, provider: str, message_id: str | None, status: str, send: int | None, at: int
    ) -> Challenge | None:
        """Record a ``delivered`` / ``failed`` receipt of send ``send`` (None: a receipt that names no send), and
        count an undelivered SMS in its challenge's fraud buckets, in one write.

        Returns the challenge as it is now, or None when nothing was recorded: an unknown or expired challenge, a
        receipt about an earlier send, or one about a send whose outcome is already recorded (a replay).

        Raises
        ------
        DependencyError
            The store failed (the provider retries its callback).
        """


class ConversionFeedback(ABC):
    """Tells a provider that the code its SMS carried was verified (EUM's message feedback, Twilio's)."""

    @abstractmethod
    def converted(self, provider: str, message_id: str) -> None:
        """Best effort, within a short time budget: never raises, whatever the provider answers."""


class Signer(ABC):
    """Signs JWS input with a key that never leaves its key store."""

    key_id: str

    @abstractmethod
    def sign(self, message: bytes) -> bytes:
        """Return the raw ES256 signature (r || s, 64 bytes) of ``message``."""


class PublicKeySource(ABC):
    @abstractmethod
    def public_key_der(self, key_id: str) -> bytes:
        """DER SubjectPublicKeyInfo of a signing key."""
