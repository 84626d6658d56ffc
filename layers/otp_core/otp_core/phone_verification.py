"""Phone verification for signed-in users: send a code to a number, validate it, enroll the number.

The user is identified by the customer's own access token (see ``otp_core.idp``); the pending challenge of a
(user, number) pair is found again through a keyed pointer written with the challenge, so validate needs only
the number and the passcode. No token is issued: a success makes the number the user's verified SMS
authenticator, in the same write that marks the challenge verified.
"""

from __future__ import annotations

from collections.abc import Callable

from otp_core.errors import ConflictError
from otp_core.models import ChallengeSent, PhoneSent, PhoneValidateResult
from otp_core.ports import ChallengeLink, IdentityRepository
from otp_core.service import ChallengeService

ACTION = "verifyPhoneNumber"


class PhoneVerificationService:
    """Send and validate for a signed-in subject.

    Parameters
    ----------
    challenges:
        The challenge service.
    identities:
        Where the pointers to pending challenges are read.
    pointer_key:
        Keyed, opaque identifier of a (subject, number) pair.
    """

    def __init__(
        self,
        challenges: ChallengeService,
        identities: IdentityRepository,
        pointer_key: Callable[[str, str], str],
    ) -> None:
        self._challenges = challenges
        self._identities = identities
        self._pointer_key = pointer_key

    def send(
        self,
        subject: str,
        phone_number: str,
        message: str | None,
        sender_id: str | None,
        ip_address: str | None = None,
    ) -> PhoneSent:
        """Send a code, or resend the pending one for the same number (cooldown and caps apply)."""
        key = self._pointer_key(subject, phone_number)
        pending = self._identities.get_pointer(key)
        if pending is not None:
            try:
                sent = self._challenges.resend(pending, user_id=subject)
            except ConflictError:
                pass  # finished or expired: start a new one below
            else:
                return _phone_sent(sent)
        sent, _ = self._challenges.start(
            phone_number,
            ACTION,
            user_id=subject,
            scope="update:authenticators",
            message=message,
            sender_id=sender_id,
            ip_address=ip_address,
            link=ChallengeLink(subject, pointer_key=key),
        )
        return _phone_sent(sent)

    def validate(self, subject: str, phone_number: str, passcode: str) -> PhoneValidateResult:
        """Check the passcode; on success the number becomes the subject's verified SMS authenticator."""
        challenge_id = self._identities.get_pointer(self._pointer_key(subject, phone_number))
        if challenge_id is None:
            return PhoneValidateResult(verified=False, failure_reason="CODE_INVALID_OR_EXPIRED", attempts_remaining=0)
        check = self._challenges.check_code(challenge_id, passcode, user_id=subject)
        if check.verified:
            return PhoneValidateResult(verified=True)
        return PhoneValidateResult.model_validate(
            {"verified": False, "failure_reason": check.failure_reason, "attempts_remaining": check.attempts_remaining}
        )


def _phone_sent(sent: ChallengeSent) -> PhoneSent:
    """No challenge ID here: the signed-in user's challenge is found by number, never by ID."""
    return PhoneSent.model_validate(sent.model_dump(include=set(PhoneSent.model_fields)))
