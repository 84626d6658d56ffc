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
from otp_core.observability import tracer
from otp_core.phone import require_canonical
from otp_core.ports import IdentityRepository
from otp_core.records import Challenge, ChallengeLink
from otp_core.service import ChallengeStarter, CodeCheck, CodeChecker, NewChallenge
from otp_core.settings import Policy

ACTION = "verifyPhoneNumber"


class PhoneVerificationService:
    """Send and validate for a signed-in subject.

    Parameters
    ----------
    starter, checker:
        Send challenges and check codes.
    identities:
        Where the pointers to pending challenges are read.
    pointer_key:
        Keyed, opaque identifier of a (subject, number) pair.
    """

    def __init__(
        self,
        starter: ChallengeStarter,
        checker: CodeChecker,
        identities: IdentityRepository,
        pointer_key: Callable[[str, str], str],
    ) -> None:
        self._starter = starter
        self._checker = checker
        self._identities = identities
        self._pointer_key = pointer_key

    @tracer.capture_method(capture_response=False)
    def send(
        self,
        subject: str,
        phone_number: str,
        policy: Policy,
        *,
        message: str | None = None,
        sender_id: str | None = None,
        ip_address: str | None = None,
    ) -> Challenge:
        """Send a code, or resend the pending one for the same number (cooldown and caps apply).

        The request's number, text and sender ID are checked either way: a resend must not be a way around
        the end user's text rules.
        """
        key = self._pointer_key(subject, phone_number)
        new = NewChallenge(
            phone_number,
            ACTION,
            user_id=subject,
            message=message,
            sender_id=sender_id,
            ip_address=ip_address,
            link=ChallengeLink(subject, pointer_key=key),
            end_user=True,  # the text and sender ID come from an end user: the stricter rules apply
        )
        self._starter.check(new, policy)
        pending = self._identities.get_pointer(key)
        if pending is not None:
            try:
                return self._starter.resend(pending, policy, user_id=subject)
            except ConflictError:
                pass  # finished or expired: start a new one below
        return self._starter.start(new, policy)

    @tracer.capture_method(capture_response=False)
    def validate(self, subject: str, phone_number: str, passcode: str, policy: Policy) -> CodeCheck:
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
            return CodeCheck(False, "CODE_INVALID_OR_EXPIRED", 0, None)
        return self._checker.check_code(challenge_id, passcode, policy, user_id=subject, enroll_if_unenrolled=True)
