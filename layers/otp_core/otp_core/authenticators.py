"""Programmatic management of a user's SMS authenticator: enroll a number verified elsewhere, list, delete."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from otp_core.errors import NotFoundError
from otp_core.models import AuthenticatorList, AuthenticatorView
from otp_core.observability import logger, mask_phone
from otp_core.ports import Authenticator, Clock, IdentityRepository
from otp_core.settings import Settings
from otp_core.timefmt import rfc3339


def authenticator_view(authenticator: Authenticator) -> AuthenticatorView:
    return AuthenticatorView(
        authenticator_id=authenticator.authenticator_id,
        phone_mask=mask_phone(authenticator.phone_number),
        verified_at=rfc3339(authenticator.verified_at),
        created_at=rfc3339(authenticator.created_at),
    )


class AuthenticatorService:
    """Programmatic management of a user's SMS authenticator (numbers verified elsewhere)."""

    def __init__(
        self,
        settings: Settings,
        identities: IdentityRepository,
        clock: Clock,
        phone_check: Callable[[str, Settings], str] | None = None,
    ) -> None:
        self._settings = settings
        self._identities = identities
        self._clock = clock
        self._phone_check = phone_check

    def enroll(self, user_id: str, phone_number: str) -> AuthenticatorView:
        """Enroll or replace the user's SMS number.

        Raises
        ------
        InvalidPhoneNumberError, UnsupportedCountryError, UnsupportedNumberTypeError
            The number fails the policy.
        """
        if self._phone_check is None:
            raise RuntimeError("enroll needs a phone_check")
        self._phone_check(phone_number, self._settings)
        now = self._clock.now()
        stored = self._identities.put_authenticator(
            Authenticator(str(uuid.uuid4()), user_id, phone_number, verified_at=now, created_at=now)
        )
        logger.info("authenticator enrolled", phone_mask=mask_phone(phone_number))
        return authenticator_view(stored)

    def list(self, user_id: str) -> AuthenticatorList:
        authenticator = self._identities.get_authenticator(user_id)
        return AuthenticatorList(authenticators=[authenticator_view(authenticator)] if authenticator else [])

    def delete(self, user_id: str, authenticator_id: str) -> None:
        """Raises NotFoundError when the user has no authenticator with this ID."""
        if not self._identities.delete_authenticator(user_id, authenticator_id):
            raise NotFoundError("no such authenticator for this user")
        logger.info("authenticator deleted")
