"""Domain records: challenges, authenticators, tracked attempts and what a send or a verification writes.

Plain frozen dataclasses with no behaviour beyond what their own fields imply; the ports (``otp_core.ports``)
pass them between the use cases and the adapters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# The app the stack parameters define (a single-app stack's only app; see otp_core.apps).
DEFAULT_APP = "default"
# An operator's block for every app of the deployment (appId "*").
EVERY_APP = "*"

_CHALLENGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def is_challenge_id(value: str) -> bool:
    """True for IDs this service could have issued (UUID v4); anything else is treated like an unknown ID."""
    return bool(_CHALLENGE_ID.fullmatch(value))


class ChallengeState(StrEnum):
    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    CLAIMED = "CLAIMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Delivery:
    """What a provider's signed receipt reported of a challenge's SMS: the send it was about, the provider, its
    message ID and ``delivered`` or ``failed`` (``sent`` in records made before receipts named their send)."""

    status: str
    provider: str | None = None
    message_id: str | None = None
    send: int | None = None


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
    claimable_until: int | None = None
    claimed_by: str | None = None
    attempt_id: str | None = None
    # Set when an end user (client token, IdP token) started it: their sends are capped across numbers too.
    user_key: str | None = None
    # The authenticator an owner's challenge took its number from (None: not the owner's challenge). It draws
    # on the owner's allowance and lock, and a success counts only while that authenticator is still the
    # user's (a replaced or deleted number proves nothing any more).
    enrolled_as: str | None = None
    # For enrollment challenges (scope set): the ID of the authenticator the verification may replace, or None
    # when the user must still have none. A deleted or replaced authenticator so cancels pending enrollments.
    replaces: str | None = None
    # The step-up proof (client token ID and expiry) an enrollment change spends on verification.
    proof_id: str | None = None
    proof_expires_at: int | None = None
    # The number's ISO 3166 region, and the app whose fraud buckets counted this challenge (None: not counted,
    # as with the fraud guard off): its verification is counted in the same buckets, in the same write.
    region: str | None = None
    fraud_app: str | None = None
    # Sent to one of the app's test numbers: no provider, no budget, no bucket, never enrolled.
    test: bool = False
    # The last delivery receipt recorded on it (None: none arrived).
    delivery: Delivery | None = None

    @property
    def owner(self) -> bool:
        """True for a challenge by the owner of the enrolled number (it has the authenticator it came from)."""
        return self.enrolled_as is not None

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

    ``user_id``: the end user who started it (their sends are capped across numbers too); None for a pointer
    kept for a customer's server (the Twilio Verify facade), which no end user's cap should count.
    ``attempt_id``: the tracked attempt whose current challenge it becomes (client endpoints).
    ``pointer_key``: an opaque key under which it can be found again (signed-in phone verification, the Twilio
    Verify facade's pending verification of a number).
    """

    user_id: str | None
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
    # (user ID, authenticator ID) that must still be the user's authenticator (owner challenges).
    still_enrolled: tuple[str, str] | None = None
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
    # Which send of the challenge this is (0 the first, n the n-th resend): it travels with the message (the
    # provider's context, callback URL or body), so a delivery receipt names its send without a record of it.
    send: int = 0
    # When the code expires (epoch seconds): a provider that takes a time-to-live drops the SMS after that.
    expires_at: int | None = None
    # The number's ISO 3166 region, for per-country sender identities.
    region: str | None = None


@dataclass(frozen=True)
class SentSms:
    provider: str
    message_id: str | None
    # Provider attempts this send took (a failover spends one SMS per attempt on the budget).
    attempts: int = 1


class VerifyOutcome(StrEnum):
    WRONG = "WRONG"
    VERIFIED = "VERIFIED"
    EXHAUSTED = "EXHAUSTED"
    INVALID = "INVALID"
    # The code was right but the enrollment's condition failed (the user's authenticator changed): nothing changed.
    ENROLL_CONFLICT = "ENROLL_CONFLICT"
