"""Phone verification for signed-in users: send a code to a number, validate it, enroll the number.

The user is identified by the customer's own access token (see ``otp_core.idp``); the pending challenge of a
(user, number) pair is found again through a keyed pointer written with the challenge, so validate needs only
the number and the passcode. No token is issued: a success makes the number the user's verified SMS
authenticator when the user has none, in the same write that marks the challenge verified. A user who has
one keeps it: replacing a second factor needs proof of the current one, which an access token is not.
"""

from __future__ import annotations

from collections.abc import Callable

from otp_core.errors import ConflictError
from otp_core.models import ChallengeSent, PhoneSent, PhoneValidateResult
from otp_core.phone import require_canonical
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
            message=message,
            sender_id=sender_id,
            ip_address=ip_address,
            link=ChallengeLink(subject, pointer_key=key),
            end_user=True,  # the text and sender ID come from an end user: the stricter rules apply
        )
        return _phone_sent(sent)

    def validate(self, subject: str, phone_number: str, passcode: str) -> PhoneValidateResult:
        """Check the passcode; on success the number becomes the subject's SMS authenticator only if the
        subject has none (an access token alone is no proof of the current second factor).

        Raises
        ------
        InvalidPhoneNumberError
            ``phone_number`` is not a canonical E.164 number.
        """
        require_canonical(phone_number)
        challenge_id = self._identities.get_pointer(self._pointer_key(subject, phone_number))
        if challenge_id is None:
            return PhoneValidateResult(verified=False, failure_reason="CODE_INVALID_OR_EXPIRED", attempts_remaining=0)
        check = self._challenges.check_code(challenge_id, passcode, user_id=subject, enroll_if_unenrolled=True)
        if check.verified:
            return PhoneValidateResult(verified=True, enrolled=check.enrolled)
        return PhoneValidateResult.model_validate(
            {"verified": False, "failure_reason": check.failure_reason, "attempts_remaining": check.attempts_remaining}
        )


def _phone_sent(sent: ChallengeSent) -> PhoneSent:
    """No challenge ID here: the signed-in user's challenge is found by number, never by ID."""
    return PhoneSent.model_validate(sent.model_dump(include=set(PhoneSent.model_fields)))
