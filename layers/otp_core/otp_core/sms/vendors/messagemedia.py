"""MessageMedia (Sinch) Messages API: submit one SMS, and read its signed delivery reports.

Reference: MessageMedia's OpenAPI document, https://github.com/messagemedia/documentation (spec/openapi.yaml:
Basic Authentication, Messages, Delivery Reports, Signature Key Management), the Messages SDK's endpoint page,
https://github.com/messagemedia/messages-python-sdk/blob/master/doc/controllers/messages.md, and MessageMedia's
webhook verification guides, https://github.com/messagemedia/enterprise-webhooks-ruby-sdk (index.rb; the PHP,
Node.js, Java and Python guides of the same name agree).

Request: ``POST https://api.messagemedia.com/v1/messages``, HTTP Basic auth (API key : API secret), JSON::

    {"messages": [{"content": "...", "destination_number": "+61491570156", "format": "SMS",
                   "source_number": "MyBrand", "source_number_type": "ALPHANUMERIC"}]}

``source_number`` is the request's alphanumeric sender ID where allowed (``source_number_type``
``ALPHANUMERIC``), else the configured number (``INTERNATIONAL``), else omitted (the account's default). When
the stack has a public callback URL the message also asks for delivery reports at
``<base>/v1/delivery-status/messagemedia``: ``"callback_url"``, ``"delivery_report": true`` and
``"metadata": {"challengeId": "...", "send": "0"}`` (metadata values are strings, and come back in each report).

Replies: ``202 Accepted`` with ``{"messages": [{"message_id", "status", ...}]}``; ``400`` with
``{"message", "details": [...]}`` for invalid requests. A 400 whose details name ``destination_number`` is a bad
number; one naming ``content``, or ``source_number`` when that was the request's sender ID, refuses this request
and does not count against the circuit; every other status is this provider failing.

Reports: MessageMedia POSTs each status change to the ``callback_url`` as JSON (``message_id``, ``status``,
``metadata``, ``delivery_report_id``, ``error_code``...). With a signature key enabled for the account (Signature
Key Management API: create one, keep its ``public_key``, enable it), each is signed: ``X-MessageMedia-Signature``
is the base64 RSA signature (PKCS #1 v1.5, with the key's digest, SHA224, SHA256 or SHA512; some requests name
it in ``X-MessageMedia-Digest-Type``) of the request line, the ``Date`` header and the raw body, concatenated
with nothing between them: ``"POST /v1/delivery-status/messagemedia HTTP/1.1" + "Wed, 18 Jul 2018 06:33:52 GMT"
+ body``. The request line's path is the callback URL's (the base URL's path included); without a configured
base URL, the path the request came in on. A report is refused unless it is so signed and its ``Date`` is within
``delivery_callback_tolerance_seconds`` of this service's clock. ``delivered`` is recorded as delivered;
``failed``, ``rejected`` and ``expired`` as failed; ``enroute``, ``submitted`` and other notifications (replies
carry no status) are progress and change nothing.

Secret (``messagemedia``): ``{"apiKey", "apiSecret", "sourceNumber"?, "webhookPublicKey"?}``.
``webhookPublicKey`` is the enabled signature key's ``public_key``, as the API returns it (base64 DER) or as PEM;
without it the stack has no MessageMedia report route.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from otp_core.errors import DependencyError, InvalidRequestError
from otp_core.observability import logger, tracer
from otp_core.records import OutgoingSms, SentSms, is_challenge_id
from otp_core.sms.callbacks import (
    DEFAULT_TOLERANCE_SECONDS,
    CallbackRequest,
    DeliveryCallback,
    DeliveryReport,
    bad_signature,
    signed_json,
    strict_token,
)
from otp_core.sms.delivery import DELIVERED, FAILED
from otp_core.sms.http import TransportError, json_body, post
from otp_core.sms.vendor import (
    ProviderError,
    VendorSender,
    bad_number,
    basic_auth,
    rejected_content,
    uses_request_sender,
)

CALLBACK_PATH: Final = "/v1/delivery-status/messagemedia"
SIGNATURE_HEADER: Final = "X-MessageMedia-Signature"
DIGEST_HEADER: Final = "X-MessageMedia-Digest-Type"
DATE_HEADER: Final = "Date"
# The digests a signature key may be created with (Signature Key Management: "SHA224, SHA256, SHA512").
DIGESTS: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = {
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA512": hashes.SHA512,
}
# MessageMedia's final statuses; enroute and submitted are progress reports.
OUTCOMES: Final[Mapping[str, str]] = {
    "delivered": DELIVERED,
    "failed": FAILED,
    "rejected": FAILED,
    "expired": FAILED,
}
MALFORMED_REPORT: Final = "the delivery report is malformed"
UNAVAILABLE: Final = "delivery status is unavailable; retry later"

# Base64 of an RSA signature: 256 bytes (2048-bit key) is 344 characters; the cap allows a 4096-bit key.
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{40,1000}={0,2}")
_MAX_SIGNATURE_LENGTH: Final = 1024
_DIGEST = re.compile(r"SHA(224|256|512)", re.IGNORECASE)
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# An HTTP date (RFC 9110 IMF-fixdate), ASCII only: "Wed, 18 Jul 2018 06:33:52 GMT".
_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (" + "|".join(_MONTHS) + r") ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
# What the signed request line's path may hold (a base URL's path percent-encoded as MessageMedia was given it).
_PATH = re.compile(r"/[A-Za-z0-9/._~%-]{0,1000}")
# MessageMedia message IDs are UUIDs.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_SEND = re.compile(r"0|[1-9][0-9]{0,8}")
_PEM_ARMOR = re.compile(r"-----(BEGIN|END) [A-Z ]+-----")
_MAX_BODY_BYTES: Final = 64 * 1024


class MessageMediaSender(VendorSender):
    """Sends through MessageMedia's Messages API."""

    name: ClassVar[str] = "messagemedia"
    default_base_url: ClassVar[str] = "https://api.messagemedia.com"

    @tracer.capture_method(capture_response=False)
    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        credentials = self.credentials()
        api_key = self.required(credentials, "apiKey")
        api_secret = self.required(credentials, "apiSecret")

        message: dict[str, Any] = {"content": sms.body, "destination_number": sms.to, "format": "SMS"}
        configured = self.optional(credentials, "sourceNumber")
        request_sender = uses_request_sender(sms)
        if request_sender:
            message["source_number"] = sms.sender_id
            message["source_number_type"] = "ALPHANUMERIC"
        elif configured:
            message["source_number"] = configured
            message["source_number_type"] = "INTERNATIONAL"
        if self._config.callback_base_url:
            message["callback_url"] = messagemedia_callback_url(self._config.callback_base_url)
            message["delivery_report"] = True
            message["metadata"] = {"challengeId": sms.challenge_id, "send": str(sms.send)}

        headers = {
            "Authorization": basic_auth(api_key, api_secret),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            reply = post(
                f"{self.base_url}/v1/messages",
                body=json_body({"messages": [message]}),
                headers=headers,
                timeout=timeout,
            )
        except TransportError as exc:
            raise ProviderError(self.name, exc.reason, ambiguous=exc.sent) from exc

        answer = reply.json()
        if reply.status in (200, 201, 202):
            return SentSms(provider=self.name, message_id=_message_id(answer))
        if reply.status == 400:
            details = _details(answer)
            if any("destination_number" in detail for detail in details):
                raise bad_number()
            named = [_named_field(detail) for detail in details]
            refused = {"content"} | ({"source_number", "source_number_type"} if request_sender else set())
            if named and all(field in refused for field in named):
                raise rejected_content(self.name)
        raise self.failure_for_status(reply.status)


def _message_id(answer: Any) -> str | None:
    messages = answer.get("messages") if isinstance(answer, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        value = messages[0].get("message_id")
        return value if isinstance(value, str) else None
    return None


def _details(answer: Any) -> list[str]:
    details = answer.get("details") if isinstance(answer, dict) else None
    return [str(detail) for detail in details] if isinstance(details, list) else []


def _named_field(detail: str) -> str:
    """The message field a detail such as ``"messages.0.source_number: not permitted"`` is about."""
    path, _, _ = detail.partition(":")
    return path.strip().rsplit(".", 1)[-1]


def messagemedia_callback_url(base_url: str) -> str:
    """The ``callback_url`` of each message (no query: the signed body's metadata carries the challenge)."""
    return f"{base_url.rstrip('/')}{CALLBACK_PATH}"


def signed_text(request_line: str, date: str, body: bytes) -> bytes:
    """What MessageMedia signs: the request line, the ``Date`` header and the raw body, with no separators."""
    return (request_line + date).encode("ascii") + body


@functools.lru_cache(maxsize=4)
def load_public_key(text: str) -> rsa.RSAPublicKey | None:
    """The RSA public key in ``text`` (PEM, or the bare base64 DER the key API returns); None when it holds none."""
    encoded = "".join(_PEM_ARMOR.sub("", text).split())
    try:
        key = serialization.load_der_public_key(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


def verify_messagemedia(
    public_key: rsa.RSAPublicKey,
    *,
    request_line: str,
    date: str | None,
    body: bytes,
    signature: str | None,
    digest: str | None = None,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Check a report's ``X-MessageMedia-Signature`` and the freshness of its ``Date``.

    Parameters
    ----------
    public_key:
        The account's enabled signature key.
    request_line:
        ``"POST <path> HTTP/1.1"``, the path the report was posted to.
    date, signature, digest:
        The ``Date``, ``X-MessageMedia-Signature`` and ``X-MessageMedia-Digest-Type`` header values (the digest
        None to accept any digest a key may have).
    body:
        The raw request body, exactly as received.
    now:
        Current epoch seconds.
    tolerance_seconds:
        How far ``Date`` may be from ``now``, either way; older reports are treated as replays.

    Returns
    -------
    bool
        True only for a fresh, correctly signed report; False for anything else, never an error.
    """
    date = strict_token(date, _DATE)
    at = _epoch_seconds(date)
    raw_signature = _decode_signature(signature)
    if date is None or at is None or raw_signature is None or abs(now - at) > tolerance_seconds:
        return False
    if digest is None:
        candidates = list(DIGESTS.values())
    else:
        named = strict_token(digest, _DIGEST)
        if named is None:
            return False
        candidates = [DIGESTS[named.upper()]]
    try:
        message = signed_text(request_line, date, body)
    except UnicodeEncodeError:
        return False
    for algorithm in candidates:
        try:
            public_key.verify(raw_signature, message, padding.PKCS1v15(), algorithm())
        except (InvalidSignature, ValueError):
            continue
        return True
    return False


def _epoch_seconds(date: str | None) -> int | None:
    found = _DATE.fullmatch(date) if date is not None else None
    if found is None:
        return None
    day, month, year, hour, minute, second = found.groups()
    try:
        at = datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError:  # 31 Feb, 25:00...
        return None
    return int(at.timestamp())


def _decode_signature(signature: str | None) -> bytes | None:
    if not isinstance(signature, str) or len(signature) > _MAX_SIGNATURE_LENGTH:
        return None
    signature = signature.strip(" \t")
    if not _SIGNATURE.fullmatch(signature):
        return None
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None


class MessageMediaCallback(DeliveryCallback):
    """Reads MessageMedia's delivery reports, verified with the account's signature key and the ``Date``."""

    credential: ClassVar[str] = "webhookPublicKey"

    def read(self, request: CallbackRequest, credential: str) -> DeliveryReport | None:
        """The report's outcome; None for a progress status or a notification without one (a reply).

        Raises
        ------
        UnauthorizedError
            The report is not one MessageMedia signed with the key, or its ``Date`` is missing or too old.
        InvalidRequestError
            It is signed, but is not a JSON object, or its metadata names no send of a challenge this service
            could have issued, or its ``message_id`` is not a MessageMedia message ID.
        DependencyError
            ``credential`` holds no RSA public key (the configuration is wrong; MessageMedia retries).
        """
        public_key = load_public_key(credential)
        if public_key is None:
            logger.warning("the messagemedia webhookPublicKey is not an RSA public key")
            raise DependencyError(UNAVAILABLE)
        body = request.signed_body()
        path = self._request_path(request)
        digest = request.header(DIGEST_HEADER)
        digest_given = DIGEST_HEADER.lower() in request.headers
        if request.query or path is None or len(body) > _MAX_BODY_BYTES or (digest_given and digest is None):
            # The callback URL this service sends has no query (API Gateway would not hand over the raw one signed);
            # a path, body or digest header that cannot be read cannot have been signed either.
            raise bad_signature()
        valid = verify_messagemedia(
            public_key,
            request_line=f"POST {path} HTTP/1.1",
            date=request.header(DATE_HEADER),
            body=body,
            signature=request.header(SIGNATURE_HEADER),
            digest=digest,
            now=self._config.clock.now(),
            tolerance_seconds=self._config.tolerance_seconds,
        )
        if not valid:
            raise bad_signature()

        report = _json_object(body)
        status = report.get("status")
        if status is not None and not isinstance(status, str):
            raise InvalidRequestError(MALFORMED_REPORT)
        outcome = OUTCOMES.get(status) if status is not None else None
        if outcome is None:
            return None
        challenge_id, send = _challenge(report.get("metadata"))
        message_id = report.get("message_id")
        if message_id is not None and (not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id)):
            raise InvalidRequestError(MALFORMED_REPORT)
        return DeliveryReport(challenge_id, message_id, outcome, send)

    def _request_path(self, request: CallbackRequest) -> str | None:
        """The path MessageMedia called: the callback URL's when the base URL is configured, else the request's."""
        if self._config.base_url:
            path = urlsplit(self._config.base_url).path.rstrip("/") + CALLBACK_PATH
        else:
            path = request.path
        return path if _PATH.fullmatch(path) else None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = signed_json(body)
    except (ValueError, RecursionError) as exc:  # not UTF-8 or JSON, a repeated name, deep nesting
        raise InvalidRequestError(MALFORMED_REPORT) from exc
    if not isinstance(document, dict):
        raise InvalidRequestError(MALFORMED_REPORT)
    return document


def _challenge(metadata: object) -> tuple[str, int | None]:
    """The challenge ID and send the message's metadata names (without ``send``: a message sent before it).

    Raises
    ------
    InvalidRequestError
        The metadata names no send of a challenge this service could have issued.
    """
    if not isinstance(metadata, dict):
        raise InvalidRequestError(MALFORMED_REPORT)
    challenge_id, send = metadata.get("challengeId"), metadata.get("send")
    if not isinstance(challenge_id, str) or not is_challenge_id(challenge_id):
        raise InvalidRequestError(MALFORMED_REPORT)
    if send is not None and (not isinstance(send, str) or not _SEND.fullmatch(send)):
        raise InvalidRequestError(MALFORMED_REPORT)
    return challenge_id, int(send) if send is not None else None


SENDER = MessageMediaSender
CALLBACK = MessageMediaCallback
