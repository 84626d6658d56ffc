"""Domain records and the small abstract ports the service talks to.

Adapters (DynamoDB, SNS, KMS, Secrets Manager) implement the ports; unit tests use in-memory fakes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum


class ChallengeState(StrEnum):
    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    CLAIMED = "CLAIMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Challenge:
    """A stored SMS challenge. ``state`` is the stored state; :meth:`state_at` derives the visible one."""

    challenge_id: str
    phone_number: str
    action: str
    user_id: str | None
    scope: str | None
    code_hash: str
    code_mask: str
    number_key: str
    ip_key: str | None
    message: str | None
    sender_id: str | None
    locale: str | None
    created_at: int
    expires_at: int
    max_attempts: int
    attempts: int = 0
    resends: int = 0
    next_resend_at: int = 0
    state: ChallengeState = ChallengeState.PENDING
    verified_at: int | None = None
    claimed_by: str | None = None
    attempt_id: str | None = None
    # Set when an end user (client token, IdP token) started it: their sends are capped across numbers too.
    user_key: str | None = None
    # A challenge by the owner of the enrolled number: it draws on the owner's allowance and lock.
    owner: bool = False
    # For enrollment challenges (scope set): the ID of the authenticator the verification may replace, or None
    # when the user must still have none. A deleted or replaced authenticator so cancels pending enrollments.
    replaces: str | None = None
    # The step-up proof (client token ID and expiry) an enrollment change spends on verification.
    proof_id: str | None = None
    proof_expires_at: int | None = None

    @property
    def code_length(self) -> int:
        """Digits of this challenge's code, fixed when it was created (the policy may change meanwhile)."""
        return len(self.code_mask)

    @property
    def attempts_remaining(self) -> int:
        if self.state is not ChallengeState.PENDING:
            return 0
        return max(0, self.max_attempts - self.attempts)

    def state_at(self, now: int) -> ChallengeState:
        """The state a caller sees at ``now``: expiry and exhaustion are derived, never stored."""
        if self.state is not ChallengeState.PENDING:
            return self.state
        if self.attempts >= self.max_attempts:
            return ChallengeState.FAILED
        if now >= self.expires_at:
            return ChallengeState.EXPIRED
        return ChallengeState.PENDING


@dataclass(frozen=True)
class Authenticator:
    """A user's SMS authenticator (one per user)."""

    authenticator_id: str
    user_id: str
    phone_number: str
    verified_at: int
    created_at: int


@dataclass(frozen=True)
class TrackedAttempt:
    """One tracked action of a user, the context client tokens are bound to."""

    attempt_id: str
    user_id: str
    action: str
    state: str
    device_key: str | None
    created_at: int
    expires_at: int
    challenge_id: str | None = None


@dataclass(frozen=True)
class ChallengeLink:
    """What a new challenge is attached to, written in the same transaction as the challenge.

    ``attempt_id``: the tracked attempt whose current challenge it becomes (client endpoints).
    ``pointer_key``: an opaque key under which it can be found again (signed-in phone verification).
    """

    user_id: str
    attempt_id: str | None = None
    pointer_key: str | None = None


@dataclass(frozen=True)
class VerifiedEffects:
    """State changes that happen in the same write as a successful verification."""

    enroll: Authenticator | None = None
    # The authenticator ID ``enroll`` replaces, or None when the user must still have none (checked in the write).
    replaces: str | None = None
    # A step-up proof (token ID, expiry) consumed by this verification: it authorises one enrollment change.
    consume_proof: tuple[str, int] | None = None
    attempt_id: str | None = None
    seen_device: tuple[str, str] | None = None  # (user ID, device key)


@dataclass(frozen=True)
class SendQuota:
    """The counters one SMS send is charged to, with their caps and window ends (epoch seconds)."""

    number_key: str
    ip_key: str | None
    now: int
    user_key: str | None = None
    # The send names the owner of the enrolled number (see otp_core.policy.send_counters).
    owner: bool = False


@dataclass(frozen=True)
class OutgoingSms:
    """One SMS to send. ``body`` holds the code: adapters never log it."""

    to: str
    body: str
    sender_id: str | None
    challenge_id: str


@dataclass(frozen=True)
class SentSms:
    provider: str
    message_id: str | None


class Clock(ABC):
    @abstractmethod
    def now(self) -> int:
        """Current time in whole epoch seconds."""


class SystemClock(Clock):
    def now(self) -> int:
        return int(time.time())


class VerifyOutcome(StrEnum):
    WRONG = "WRONG"
    VERIFIED = "VERIFIED"
    EXHAUSTED = "EXHAUSTED"
    INVALID = "INVALID"
    # The code was right but the enrollment's condition failed (the user's authenticator changed): nothing changed.
    ENROLL_CONFLICT = "ENROLL_CONFLICT"


class ChallengeRepository(ABC):
    """Persistence of challenges and of the counters that limit them.

    Every state change is one conditional write: limits, attempts and transitions are enforced by the
    store's conditions, never by a value read earlier.
    """

    @abstractmethod
    def create(self, challenge: Challenge, quota: SendQuota, link: ChallengeLink | None = None) -> None:
        """Store a new challenge, charge one send to its quota and write its ``link``, atomically.

        Raises
        ------
        RateLimitedError
            A send cap is reached or the number is locked out; nothing was written.
        ConflictError
            The linked tracked attempt no longer exists or belongs to another user.
        """

    @abstractmethod
    def get(self, challenge_id: str) -> Challenge | None:
        """Return the stored challenge, expired ones included, or None."""

    @abstractmethod
    def record_resend(self, challenge: Challenge, quota: SendQuota, next_resend_at: int) -> Challenge:
        """Count one resend of ``challenge`` (as read) and charge its quota, atomically.

        Raises
        ------
        RateLimitedError
            A send cap is reached or the number is locked out.
        ConflictError
            The challenge changed since it was read (verified, exhausted, resent concurrently).
        """

    @abstractmethod
    def refund_send(self, challenge: Challenge, quota: SendQuota, *, delete: bool) -> None:
        """Undo the charge of a send that could not be delivered (and the challenge when ``delete``)."""

    @abstractmethod
    def record_failure(self, challenge: Challenge, code_hash: str, now: int) -> VerifyOutcome:
        """Count one wrong code against the challenge and its number, atomically.

        Returns WRONG when the attempt was counted, EXHAUSTED when no attempt was left, INVALID when the
        challenge is no longer pending or has expired.

        Raises
        ------
        RateLimitedError
            The number is locked out.
        """

    @abstractmethod
    def mark_verified(
        self, challenge: Challenge, code_hash: str, now: int, effects: VerifiedEffects | None = None
    ) -> VerifyOutcome:
        """Turn a pending challenge into a verified one if ``code_hash`` is its hash, with ``effects``, atomically.

        Returns VERIFIED, EXHAUSTED / INVALID when another request got there first or a linked record
        (tracked attempt, step-up proof) is gone or expired, or ENROLL_CONFLICT when only the enrollment's
        expectation of the user's authenticator failed; in every case but VERIFIED nothing was written.

        Raises
        ------
        RateLimitedError
            The number is locked out.
        """

    @abstractmethod
    def claim(self, challenge_id: str, user_id: str, now: int) -> Challenge:
        """Attribute a verified challenge to ``user_id`` (idempotent for the same user).

        Raises
        ------
        ConflictError
            Unknown, not verified, claimed by another user, or past its claim window.
        """


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
    def consume_token(self, token_id: str, expires_at: int) -> bool:
        """Record a token as used; False if it was used before (one conditional write)."""


class SmsSender(ABC):
    """Sends one SMS. Implementations wrap their SDK or HTTP errors in DeliveryFailedError."""

    @abstractmethod
    def send(self, sms: OutgoingSms) -> SentSms: ...


class DeliveryLog(ABC):
    """Records on a challenge which provider accepted its SMS and the message ID (never the body)."""

    @abstractmethod
    def record_sent(self, challenge_id: str, sent: SentSms, at: int) -> None:
        """Best effort: the SMS is already out, so implementations log failures instead of raising."""


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
