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
class SendQuota:
    """The counters one SMS send is charged to, with their caps and window ends (epoch seconds)."""

    number_key: str
    ip_key: str | None
    now: int


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


class ChallengeRepository(ABC):
    """Persistence of challenges and of the counters that limit them.

    Every state change is one conditional write: limits, attempts and transitions are enforced by the
    store's conditions, never by a value read earlier.
    """

    @abstractmethod
    def create(self, challenge: Challenge, quota: SendQuota) -> None:
        """Store a new challenge and charge one send to its quota, atomically.

        Raises
        ------
        RateLimitedError
            A send cap is reached or the number is locked out; nothing was written.
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
    def mark_verified(self, challenge: Challenge, code_hash: str, now: int) -> VerifyOutcome:
        """Turn a pending challenge into a verified one if ``code_hash`` is its hash, atomically.

        Returns VERIFIED, or EXHAUSTED / INVALID when another request got there first.

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


class SmsSender(ABC):
    """Sends one SMS. Implementations wrap their SDK or HTTP errors in DeliveryFailedError."""

    @abstractmethod
    def send(self, sms: OutgoingSms) -> SentSms: ...


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
