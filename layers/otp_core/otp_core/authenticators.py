"""Programmatic management of a user's SMS authenticator: enroll a number verified elsewhere, list, delete."""

from __future__ import annotations

import uuid

from otp_core.errors import InvalidPhoneNumberError, NotFoundError
from otp_core.observability import logger, mask_phone, tracer
from otp_core.ports import Clock, IdentityRepository
from otp_core.records import Authenticator
from otp_core.service import PhoneCheck
from otp_core.settings import Policy


class AuthenticatorEnroller:
    """Enroll, or replace, a user's SMS number verified elsewhere."""

    def __init__(self, identities: IdentityRepository, clock: Clock, phone_check: PhoneCheck) -> None:
        self._identities = identities
        self._clock = clock
        self._phone_check = phone_check

    @tracer.capture_method(capture_response=False)
    def enroll(self, user_id: str, phone_number: str, policy: Policy) -> Authenticator:
        """Enroll or replace the user's SMS number (another number is a new authenticator, with a new ID).

        Raises
        ------
        InvalidPhoneNumberError, UnsupportedCountryError, UnsupportedNumberTypeError
            The number fails the policy, or is one of the app's test numbers (never an authenticator).
        """
        self._phone_check(phone_number, policy)
        if policy.test_code(phone_number) is not None:
            raise InvalidPhoneNumberError("a test number cannot be enrolled as an authenticator")
        now = self._clock.now()
        stored = self._identities.put_authenticator(
            Authenticator(str(uuid.uuid4()), user_id, phone_number, verified_at=now, created_at=now)
        )
        logger.info("authenticator enrolled", phone_mask=mask_phone(phone_number))
        return stored


class AuthenticatorDirectory:
    """List and delete a user's SMS authenticators (no numbers are checked, so no libphonenumber here)."""

    def __init__(self, identities: IdentityRepository) -> None:
        self._identities = identities

    def list(self, user_id: str) -> list[Authenticator]:
        authenticator = self._identities.get_authenticator(user_id)
        return [authenticator] if authenticator else []

    @tracer.capture_method(capture_response=False)
    def delete(self, user_id: str, authenticator_id: str) -> None:
        """Raises NotFoundError when the user has no authenticator with this ID."""
        if not self._identities.delete_authenticator(user_id, authenticator_id):
            raise NotFoundError("no such authenticator for this user")
        logger.info("authenticator deleted")
