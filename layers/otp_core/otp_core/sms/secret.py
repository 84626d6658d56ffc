"""The provider secret: one Secrets Manager secret holding every provider's credentials, parsed in one place.

The secret is a JSON object keyed by provider name (``{"twilio": {"accountSid": ...}, "webhook": {...}}``; see
each vendor module for its fields). Senders read it on every send and callbacks on every report, both through
the Powertools parameters cache, so a rotated secret is picked up when the cache refreshes it. A stack that
routes only to SNS never reads it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from otp_core.errors import DependencyError


class ProviderSecret:
    """Reads and parses the provider secret.

    Parameters
    ----------
    secret_id:
        Its name or ARN (``sms_provider_secret_id``); empty when the stack has none.
    read:
        Returns a secret's string by ID, cached (``otp_core.runtime.secret``); raises DependencyError when it
        cannot.
    """

    def __init__(self, secret_id: str, read: Callable[[str], str]) -> None:
        self._secret_id = secret_id
        self._read = read

    @property
    def configured(self) -> bool:
        """Whether the stack names a provider secret at all."""
        return bool(self._secret_id)

    def document(self) -> Mapping[str, Any]:
        """The whole secret: provider name -> that provider's credentials.

        Raises
        ------
        DependencyError
            No secret is configured, it cannot be read, or it is not a JSON object.
        """
        if not self._secret_id:
            raise DependencyError("no SMS provider secret is configured")
        try:
            value = json.loads(self._read(self._secret_id))
        except ValueError as exc:
            raise DependencyError("the SMS provider secret is not JSON") from exc
        if not isinstance(value, dict):
            raise DependencyError("the SMS provider secret is not a JSON object")
        return value

    def field(self, provider: str, key: str) -> str | None:
        """One non-empty string field of a provider's section, or None when the section or field is missing.

        Raises
        ------
        DependencyError
            As :meth:`document`.
        """
        section = self.document().get(provider)
        value = section.get(key) if isinstance(section, Mapping) else None
        return value if isinstance(value, str) and value else None
