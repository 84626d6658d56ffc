"""SMS through AWS End User Messaging SMS (``pinpoint-sms-voice-v2``): one ``SendTextMessage`` per message.

Reference: https://docs.aws.amazon.com/pinpoint/latest/apireference_smsvoicev2/API_SendTextMessage.html and
https://docs.aws.amazon.com/pinpoint/latest/apireference_smsvoicev2/API_PutMessageFeedback.html (the botocore
model ``pinpoint-sms-voice-v2/2022-03-31`` has the shapes, constraints and error reasons).

Request: ``SendTextMessage`` (``POST /``, ``X-Amz-Target: PinpointSMSVoiceV2.SendTextMessage``, JSON 1.0, SigV4
for ``sms-voice``), through a boto3 client the composition root builds with :func:`eum_client_config` (one
attempt: the failover sender retries across providers). The body has ``DestinationPhoneNumber``,
``MessageBody``, ``MessageType`` ``TRANSACTIONAL``, and:

- ``OriginationIdentity``: the configured identity for the number's country, else the one for ``*``, else the
  request's alphanumeric sender ID where one may be used (not towards +1 numbers), else none (the service
  picks one from the account);
- ``ConfigurationSetName``, ``ProtectConfigurationId`` and ``MaxPrice`` when configured;
- ``TimeToLive``: the code's remaining lifetime in seconds (clamped to the service's 5 s to 72 h), so the
  service drops an SMS whose code has expired;
- ``Context``: ``{"challengeId", "send"}``, copied by the service into every delivery event, so an event names
  its challenge and send without a record of the message;
- ``MessageFeedbackEnabled`` (when feedback is on: :meth:`EumSmsSender.feedback` reports a verified code as
  ``RECEIVED`` with ``PutMessageFeedback``; the service marks unreported messages failed after an hour), and
  ``DryRun`` only for a dry run (the service validates, neither sends nor charges).

Replies: ``{"MessageId"}``. Errors carry ``__type`` and, for most, a ``Reason`` (botocore merges it into the top
level of ``error.response``):

- ``ConflictException`` ``DESTINATION_PHONE_NUMBER_OPTED_OUT`` (the recipient replied STOP: sending it elsewhere
  would circumvent the opt-out), ``DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION``,
  ``DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE`` (this stack's own protect rules refuse the
  number), and a ``ValidationException`` naming ``DestinationPhoneNumber``: a bad number (no failover);
- ``ValidationException`` ``DESTINATION_COUNTRY_BLOCKED``, ``COUNTRY_NOT_ENABLED``,
  ``INVALID_IDENTITY_FOR_DESTINATION_COUNTRY``, ``INTERNATIONAL_SENDING_NOT_SUPPORTED`` and
  ``PRICE_OVER_THRESHOLD`` (another provider may be cheaper), and ``ConflictException``
  ``NO_ORIGINATION_IDENTITIES_FOUND`` and ``DESTINATION_PHONE_NUMBER_NOT_VERIFIED`` (a sandbox account sends
  only to its verified numbers): the account may not send to this destination (fails over without counting
  against the circuit);
- ``ValidationException`` ``SENDER_ID_NOT_REGISTERED``, ``SENDER_ID_NOT_SUPPORTED``,
  ``SENDER_ID_REQUIRES_REGISTRATION`` or naming ``OriginationIdentity``: the request's refusal when its own
  sender ID was sent, else this provider's misconfiguration (``config``); one naming ``MessageBody``: the
  text's refusal;
- ``ServiceQuotaExceededException`` ``MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT``: ``spend_limit`` (the account's
  own cap, not this service's budget; another provider may still send), any other quota ``throttled``;
  ``ThrottlingException`` ``throttled``; ``InternalServerException`` (and any 5xx) ``http_5xx``;
  ``AccessDeniedException`` (and a signature or credential error) ``auth``; ``ResourceNotFoundException``
  ``config`` (a configuration set, pool or protect configuration that does not exist); every other error
  ``rejected``;
- no answer: a read timeout (``timeout``) or dropped connection (``dropped``) is ambiguous (the message may
  still go out); a connect failure (``connect``) is not.

IAM: ``sms-voice:SendTextMessage`` on the origination identities (phone numbers, pools, sender IDs), the
configuration set and the protect configuration it sends with, and ``sms-voice:PutMessageFeedback`` on
``arn:${Partition}:sms-voice:${Region}:${Account}:message/*``. Like SNS, it takes its credentials from the
function's role, so it needs no section in the provider secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from otp_core.errors import InvalidPhoneNumberError
from otp_core.observability import logger, tracer
from otp_core.ports import Clock, SmsSender, SystemClock
from otp_core.records import OutgoingSms, SentSms
from otp_core.sms.vendor import (
    ProviderError,
    bad_number,
    rejected_content,
    rejected_destination,
    uses_request_sender,
)

if TYPE_CHECKING:
    from otp_core.settings import Settings

NAME = "eum"
# The identity for every country without its own entry.
ANY_COUNTRY = "*"
# The service's TimeToLive bounds, in seconds (its default is the maximum, 72 hours).
MIN_TTL_SECONDS = 5
MAX_TTL_SECONDS = 259_200
# TextMessageOriginationIdentity in the model; a sender ID outside it (a space) cannot be sent at all.
_IDENTITY = re.compile(r"[A-Za-z0-9_:/+-]{1,256}")
_ENTRY_KEY = re.compile(r"\*|[A-Z]{2}")

# ConflictException reasons that say the number cannot receive from anyone this stack would send through.
BAD_NUMBER_CONFLICTS = frozenset(
    {
        "DESTINATION_PHONE_NUMBER_OPTED_OUT",
        "DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION",
        "DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE",
    }
)
# Reasons that say this account may not send to the destination (though the number is fine).
DESTINATION_REASONS = frozenset(
    {
        "DESTINATION_COUNTRY_BLOCKED",
        "COUNTRY_NOT_ENABLED",
        "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY",
        "INTERNATIONAL_SENDING_NOT_SUPPORTED",
        "PRICE_OVER_THRESHOLD",
        "NO_ORIGINATION_IDENTITIES_FOUND",
        # A sandbox account sends only to its verified numbers: another provider may reach this one.
        "DESTINATION_PHONE_NUMBER_NOT_VERIFIED",
    }
)
SENDER_REASONS = frozenset({"SENDER_ID_NOT_REGISTERED", "SENDER_ID_NOT_SUPPORTED", "SENDER_ID_REQUIRES_REGISTRATION"})
# IAM's refusal, and the signature and credential errors every AWS JSON API can answer.
AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
    }
)
SPEND_LIMIT_REASON = "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"
# Not in the model's enum, but the name says what it means should the service ever send it.
INVALID_NUMBER_REASON = "INVALID_PHONE_NUMBER"
DESTINATION_FIELD = "DestinationPhoneNumber"
IDENTITY_FIELD = "OriginationIdentity"
BODY_FIELD = "MessageBody"


def parse_origination_identities(value: str) -> dict[str, str]:
    """``"US=arn:...:pool/pool-1;GB=MyBrand;*=pool-2"`` as ``{"US": ..., "GB": "MyBrand", "*": "pool-2"}``.

    Raises
    ------
    ValueError
        An entry is not ``KEY=identity`` with an ISO 3166 region (or ``*``) and a valid identity.
    """
    identities: dict[str, str] = {}
    for entry in value.split(";"):
        if not entry.strip():
            continue
        key, sep, identity = (part.strip() for part in entry.partition("="))
        if not sep or not _ENTRY_KEY.fullmatch(key) or not _IDENTITY.fullmatch(identity):
            raise ValueError("origination identities must be KEY=identity entries separated by ';'")
        identities[key] = identity
    return identities


@dataclass(frozen=True)
class EumConfig:
    """How :class:`EumSmsSender` sends.

    Parameters
    ----------
    origination_identities:
        ISO 3166 region (or ``*`` for every other) to the identity to send from: a phone number, sender ID,
        pool, or their ID or ARN (a shared resource needs the ARN).
    configuration_set:
        The configuration set whose event destinations get the delivery events (name or ARN), or None.
    protect_configuration_id:
        A protect configuration to apply on top of the account's default, or None.
    max_price:
        The most to pay for one message, in USD (``"0.05"``), or None for no cap.
    dry_run:
        Have the service validate each message without sending or charging it (a smoke test).
    feedback:
        Send with ``MessageFeedbackEnabled``, for :meth:`EumSmsSender.feedback`.
    clock:
        Source of the current time, for the time-to-live.
    """

    origination_identities: Mapping[str, str] = field(default_factory=dict)
    configuration_set: str | None = None
    protect_configuration_id: str | None = None
    max_price: str | None = None
    dry_run: bool = False
    feedback: bool = True
    clock: Clock = field(default_factory=SystemClock)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> EumConfig:
        """The configuration the ``eum_*`` settings describe (empty settings are unset)."""
        return cls(
            origination_identities=parse_origination_identities(settings.eum_origination_identities),
            configuration_set=settings.eum_configuration_set or None,
            protect_configuration_id=settings.eum_protect_configuration_id or None,
            max_price=settings.eum_max_price or None,
            dry_run=settings.eum_dry_run,
            clock=clock,
        )


def eum_client_config(timeout: float) -> Config:
    """The botocore configuration of the ``pinpoint-sms-voice-v2`` client: ``timeout`` seconds to connect and
    to read, and a single attempt (botocore would retry throttling and 5xx; the failover sender moves on to the
    next provider instead)."""
    return Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})


class EumSmsSender(SmsSender):
    """Sends with ``sms-voice:SendTextMessage``.

    Parameters
    ----------
    client:
        A boto3 ``pinpoint-sms-voice-v2`` client (see :func:`eum_client_config`).
    config:
        What to send with.
    """

    name: ClassVar[str] = NAME

    def __init__(self, client: Any, config: EumConfig) -> None:
        self._client = client
        self._config = config

    @tracer.capture_method(capture_response=False)
    def send(self, sms: OutgoingSms) -> SentSms:
        identity, own_sender = self._identity(sms)
        if own_sender and not _IDENTITY.fullmatch(identity or ""):
            # The request's sender ID cannot be an origination identity (a space): the service would refuse it.
            raise rejected_content(self.name)
        params = self._request(sms, identity)
        try:
            response = self._client.send_text_message(**params)
        except ClientError as exc:
            # Not chained: the service's message can quote the number, and a traceback would print it.
            raise self._failure(exc, own_sender=own_sender) from None
        except (HTTPClientError, BotoConnectionError) as exc:
            # Their messages name only the endpoint.
            raise _transport_failure(self.name, exc) from exc
        except BotoCoreError as exc:
            # Others (a refused parameter) can quote a value.
            raise _transport_failure(self.name, exc) from None
        message_id = response.get("MessageId") if isinstance(response, Mapping) else None
        return SentSms(provider=self.name, message_id=message_id if isinstance(message_id, str) else None)

    @tracer.capture_method(capture_response=False)
    def feedback(self, message_id: str) -> bool:
        """Report the message as received (its code was verified); False when that failed. Never raises."""
        try:
            self._client.put_message_feedback(MessageId=message_id, MessageFeedbackStatus="RECEIVED")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            logger.warning("message feedback failed", provider=self.name, error_code=str(code))
            return False
        except BotoCoreError as exc:
            logger.warning("message feedback failed", provider=self.name, error_code=type(exc).__name__)
            return False
        return True

    # -- the request ----------------------------------------------------------------------------------------

    def _identity(self, sms: OutgoingSms) -> tuple[str | None, bool]:
        """The origination identity to send from, and whether it is the request's own sender ID."""
        identities = self._config.origination_identities
        if sms.region and sms.region in identities:
            return identities[sms.region], False
        if ANY_COUNTRY in identities:
            return identities[ANY_COUNTRY], False
        if uses_request_sender(sms):
            return sms.sender_id, True
        return None, False

    def _request(self, sms: OutgoingSms, identity: str | None) -> dict[str, Any]:
        config = self._config
        params: dict[str, Any] = {
            "DestinationPhoneNumber": sms.to,
            "MessageBody": sms.body,
            "MessageType": "TRANSACTIONAL",
            "Context": {"challengeId": sms.challenge_id, "send": str(sms.send)},
        }
        if identity:
            params["OriginationIdentity"] = identity
        if config.configuration_set:
            params["ConfigurationSetName"] = config.configuration_set
        if config.protect_configuration_id:
            params["ProtectConfigurationId"] = config.protect_configuration_id
        if config.max_price:
            params["MaxPrice"] = config.max_price
        if sms.expires_at is not None:
            remaining = sms.expires_at - config.clock.now()
            params["TimeToLive"] = min(MAX_TTL_SECONDS, max(MIN_TTL_SECONDS, remaining))
        if config.feedback:
            params["MessageFeedbackEnabled"] = True
        if config.dry_run:
            params["DryRun"] = True
        return params

    # -- the replies ----------------------------------------------------------------------------------------

    def _failure(self, exc: ClientError, *, own_sender: bool) -> ProviderError | InvalidPhoneNumberError:
        """The outcome of a documented error (only its code, reason and field names are read: the rest of the
        answer can echo the number)."""
        response = exc.response
        code = response.get("Error", {}).get("Code")
        reason = response.get("Reason")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "ThrottlingException":
            return ProviderError(self.name, "throttled")
        if code == "ServiceQuotaExceededException":
            return ProviderError(self.name, "spend_limit" if reason == SPEND_LIMIT_REASON else "throttled")
        if code in AUTH_CODES or status in (401, 403):
            return ProviderError(self.name, "auth")
        if code == "ResourceNotFoundException":
            return ProviderError(self.name, "config")
        if code == "ConflictException":
            if reason in BAD_NUMBER_CONFLICTS:
                return bad_number()
            if reason in DESTINATION_REASONS:
                return rejected_destination(self.name)
        if code == "ValidationException":
            fields = _field_names(response.get("Fields"))
            if reason in DESTINATION_REASONS:
                return rejected_destination(self.name)
            if reason in SENDER_REASONS or IDENTITY_FIELD in fields:
                return rejected_content(self.name) if own_sender else ProviderError(self.name, "config")
            if reason == INVALID_NUMBER_REASON or DESTINATION_FIELD in fields:
                return bad_number()
            if BODY_FIELD in fields:
                return rejected_content(self.name)
        if code == "InternalServerException" or (isinstance(status, int) and status >= 500):
            return ProviderError(self.name, "http_5xx")
        # Any other refusal means the service did not accept the message, so it cannot have been delivered.
        return ProviderError(self.name, "rejected")


def _field_names(fields: object) -> frozenset[str]:
    """The ``Name`` of each entry of a ValidationException's ``Fields`` (never their messages)."""
    if not isinstance(fields, list):
        return frozenset()
    return frozenset(
        entry["Name"] for entry in fields if isinstance(entry, Mapping) and isinstance(entry.get("Name"), str)
    )


def _transport_failure(provider: str, exc: BotoCoreError) -> ProviderError:
    """No answer from the service: ambiguous when the request may have reached it."""
    if isinstance(exc, ReadTimeoutError):
        return ProviderError(provider, "timeout", ambiguous=True)
    if isinstance(exc, BotoConnectionError):
        # Refused, DNS, connect timeout, proxy or TLS: the request was never sent.
        return ProviderError(provider, "connect")
    if isinstance(exc, HTTPClientError):
        # The connection closed before an answer (ConnectionClosedError), or another failure mid-request.
        return ProviderError(provider, "dropped", ambiguous=True)
    # No credentials, a parameter botocore refuses, an unknown endpoint: never sent.
    return ProviderError(provider, "config")
