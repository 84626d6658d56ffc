"""What every HTTP vendor adapter shares: its error, its configuration and the sender-ID rule.

A vendor adapter turns one :class:`~otp_core.ports.OutgoingSms` into the one HTTP request its vendor documents,
and reads the reply into exactly one of three outcomes:

- a :class:`~otp_core.ports.SentSms` (the vendor accepted the message),
- :class:`~otp_core.errors.InvalidPhoneNumberError` (the vendor documented the number as invalid or unreachable:
  no other provider will do better, so the failover sender stops and the caller gets a 400),
- :class:`ProviderError` (this provider did not take the message: the failover sender tries the next one).

A :class:`ProviderError` says whose fault the refusal was. Most are the provider's (down, slow, throttled,
misconfigured) and count towards its circuit breaker. A documented refusal of *this request* (the end user's
sender ID, the text, or a destination this account may not send to) is not: the provider answered properly,
and counting it would let one caller with a bad sender ID open the circuit for everyone. Those carry a reason
in :data:`REQUEST_REFUSALS` and ``counts_against_circuit`` False.

Adapters never log or put into an error anything the vendor answered: replies can echo the number or the body.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from otp_core.errors import DeliveryFailedError, InvalidPhoneNumberError
from otp_core.ports import Clock, SmsSender, SystemClock
from otp_core.records import OutgoingSms, SentSms

# The text a caller sees; the reason stays in logs and metrics.
UNAVAILABLE_DETAIL = "the SMS could not be sent; retry later"
BAD_NUMBER_DETAIL = "the SMS provider rejected this phone number"

# The provider refused the request's sender ID or text (another provider may use another sender, or count
# the text differently).
REJECTED_CONTENT = "rejected_content"
# The provider's account may not send to this destination (a country not enabled), though the number is fine.
REJECTED_DESTINATION = "rejected_destination"
REQUEST_REFUSALS = frozenset({REJECTED_CONTENT, REJECTED_DESTINATION})


class ProviderError(DeliveryFailedError):
    """One provider could not take the message; another provider may.

    It is a :class:`~otp_core.errors.DeliveryFailedError`, so a caller that uses an adapter on its own still
    refunds the send and answers 502.

    Parameters
    ----------
    provider:
        The adapter's name (``twilio``, ``bird``...).
    reason:
        A short fixed token for logs and metrics (``timeout``, ``connect``, ``http_5xx``, ``throttled``,
        ``auth``, ``config``, ``rejected``, ``rejected_content``, ``rejected_destination``...), never vendor text.
    ambiguous:
        True when the request reached the vendor and no answer came back (a read timeout or a dropped
        connection): the message may still be delivered. See :mod:`otp_core.sms.routing` for why that
        still fails over.
    """

    def __init__(self, provider: str, reason: str, *, ambiguous: bool = False) -> None:
        super().__init__(UNAVAILABLE_DETAIL)
        self.provider = provider
        self.reason = reason
        self.ambiguous = ambiguous

    @property
    def counts_against_circuit(self) -> bool:
        """Whether this failure says something about the provider's health (False for a refusal of the request).

        Derived from ``reason`` so that no adapter can name a request refusal and still open the circuit.
        """
        return self.reason not in REQUEST_REFUSALS


def rejected_content(provider: str) -> ProviderError:
    """The provider refused this request's sender ID or text: fail over, but do not count it as a failure."""
    return ProviderError(provider, REJECTED_CONTENT)


def rejected_destination(provider: str) -> ProviderError:
    """The provider's account may not send to this destination: fail over, but do not count it as a failure."""
    return ProviderError(provider, REJECTED_DESTINATION)


def bad_number() -> InvalidPhoneNumberError:
    """The error for a number the vendor documented as invalid or unreachable (a 400 to the caller)."""
    return InvalidPhoneNumberError(BAD_NUMBER_DETAIL)


Credentials = Mapping[str, Any]


@dataclass(frozen=True)
class VendorConfig:
    """How the factory configures an adapter.

    Parameters
    ----------
    load_credentials:
        Returns the whole provider secret (a JSON object keyed by provider name, see
        :class:`~otp_core.sms.secret.ProviderSecret`); called on every send, so a rotated secret is picked up
        when the parameters cache refreshes it.
    timeout:
        Default per-attempt timeout in seconds, used when :meth:`VendorSender.send` is called directly.
    base_url:
        Replaces the vendor's documented base URL (scheme, host, port and optional path prefix); for the local
        stack and tests, which point adapters at fakes on 127.0.0.1.
    callback_base_url:
        Public base URL of this stack's API, for status callbacks (``.../v1/delivery-status/<provider>``);
        empty for none.
    clock:
        Source of the current time (the webhook stamps it on each message).
    """

    load_credentials: Callable[[], Mapping[str, Any]]
    timeout: float = 3.0
    base_url: str | None = None
    callback_base_url: str = ""
    clock: Clock = field(default_factory=SystemClock)


class VendorSender(SmsSender, ABC):
    """An SMS sender that talks HTTP to one vendor, with a caller-chosen timeout per attempt.

    Subclasses set ``name`` and ``default_base_url`` and implement :meth:`send_within`.
    """

    name: ClassVar[str]
    default_base_url: ClassVar[str]

    def __init__(self, config: VendorConfig) -> None:
        self._config = config

    @property
    def base_url(self) -> str:
        return (self._config.base_url or self.default_base_url).rstrip("/")

    def send(self, sms: OutgoingSms) -> SentSms:
        return self.send_within(sms, self._config.timeout)

    @abstractmethod
    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        """Send ``sms`` with at most ``timeout`` seconds per network operation.

        Raises
        ------
        InvalidPhoneNumberError
            The vendor documented the number as invalid or unreachable.
        ProviderError
            This vendor cannot take the message now (down, slow, throttled, misconfigured).
        """

    # -- helpers for subclasses --------------------------------------------------------------------------

    def credentials(self) -> Credentials:
        """This provider's section of the secret.

        Raises
        ------
        ProviderError
            The secret cannot be read or has no object for this provider (reason ``config``).
        """
        try:
            secret = self._config.load_credentials()
        except Exception as exc:
            # A secret that cannot be read is this provider's configuration problem; the next one may need none.
            raise ProviderError(self.name, "config") from exc
        section = secret.get(self.name) if isinstance(secret, Mapping) else None
        if not isinstance(section, Mapping):
            raise ProviderError(self.name, "config")
        return section

    def required(self, credentials: Credentials, key: str) -> str:
        """A non-empty string field of the credentials, or a ``config`` :class:`ProviderError`."""
        value = credentials.get(key)
        if not isinstance(value, str) or not value:
            raise ProviderError(self.name, "config")
        return value

    @staticmethod
    def optional(credentials: Credentials, key: str) -> str | None:
        value = credentials.get(key)
        return value if isinstance(value, str) and value else None

    def failure_for_status(self, status: int) -> ProviderError:
        """The generic failover error for an HTTP status the vendor did not document as a bad number."""
        if status == 429:
            return ProviderError(self.name, "throttled")
        if status in (401, 403):
            return ProviderError(self.name, "auth")
        if status >= 500:
            return ProviderError(self.name, "http_5xx")
        # Any other refusal means the vendor did not accept the message, so it cannot have been delivered.
        return ProviderError(self.name, "rejected")


def basic_auth(user: str, password: str) -> str:
    """An ``Authorization`` header value for HTTP Basic authentication."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def alphanumeric_allowed(phone_number: str) -> bool:
    """Whether an alphanumeric sender ID may be used towards ``phone_number``.

    Carriers in the North American Numbering Plan (+1: US, Canada and the Caribbean) do not deliver messages
    from alphanumeric senders; there the adapter uses the account's configured number instead.
    """
    return not phone_number.startswith("+1")


def uses_request_sender(sms: OutgoingSms) -> bool:
    """Whether an adapter that honours sender IDs sends ``sms`` from the request's own sender ID.

    A sender refusal is the request's doing only then; a refusal of the configured sender is this provider's
    misconfiguration and counts against it.
    """
    return bool(sms.sender_id) and alphanumeric_allowed(sms.to)


def sender_for(sms: OutgoingSms, fallback: str | None) -> str | None:
    """The sender to use: the request's alphanumeric sender ID where allowed, else the configured one."""
    if uses_request_sender(sms):
        return sms.sender_id
    return fallback
