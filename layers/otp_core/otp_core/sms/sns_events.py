"""AWS End User Messaging SMS delivery events, as an Amazon SNS topic delivers them to a Lambda function.

The configuration set of the ``eum`` provider sends its text events to an SNS topic, and the topic invokes the
delivery-status function with ``{"Records": [{"EventSource": "aws:sns", "Sns": {...}}]}`` (:func:`sns_records`).
Anyone allowed to invoke the function could forge such an event, so each record's ``Sns`` object is verified as
a notification SNS signed (:class:`SnsSignatureVerifier`) before its ``Message``, the EUM event JSON, is read
(:class:`EumEventReader`).

Signatures (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html): ``Signature`` is
the base64 RSA signature (``SignatureVersion`` ``"1"``: SHA1withRSA, ``"2"``: SHA256withRSA) of
``Key\\nValue\\n`` for ``Message``, ``MessageId``, ``Subject`` (only when present and not null), ``Timestamp``,
``TopicArn`` and ``Type``, in that order, under the certificate at ``SigningCertUrl`` (``SigningCertURL`` in
HTTP deliveries), which must be an ``https`` URL of an SNS host ending in ``.pem``. The topic must be one of
this stack's and the timestamp recent (a captured notification cannot be replayed later).

Events (https://docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-format.html): the send
puts ``challengeId`` and ``send`` in the message's ``Context``, which EUM copies into each event's ``context``.
Delivered and failed event types are outcomes; queued, pending and sent are progress and record nothing.

Everything here reads untrusted input and is total: whatever an event holds, the only errors are
:class:`UnauthorizedError` (not signed by SNS for this stack), :class:`InvalidRequestError` (signed, but not an
event this service can read) and :class:`DependencyError` (the signing certificate could not be fetched, so the
invocation fails and is retried).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import ssl
import threading
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Final
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from otp_core.errors import DependencyError, InvalidRequestError
from otp_core.ports import Clock
from otp_core.records import is_challenge_id
from otp_core.sms.callbacks import DeliveryReport, bad_signature
from otp_core.sms.delivery import DELIVERED, FAILED

NOTIFICATION: Final = "Notification"
# The fields a Notification's signature covers, in the order of the string to sign (Subject only when set).
SIGNED_FIELDS: Final = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
# The certificate URL's field as Lambda spells it, then as HTTP/S deliveries do.
CERT_URL_FIELDS: Final = ("SigningCertUrl", "SigningCertURL")
# AWS's own validators (aws-php-sns-message-validator, the .NET SDK) accept exactly these hosts.
SNS_CERT_HOST: Final = re.compile(r"sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?")
DEFAULT_TOLERANCE_SECONDS: Final = 3600
FUTURE_SKEW_SECONDS: Final = 300
CERT_TIMEOUT_SECONDS: Final = 2.0
MAX_CERT_BYTES: Final = 64 * 1024
# SNS rotates its signing certificate rarely and uses one per region: a few entries cover every real case.
MAX_CACHED_CERTS: Final = 16

_HASHES: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = {"1": hashes.SHA1, "2": hashes.SHA256}
# ISO 8601 in UTC as SNS writes it ("2026-12-01T17:00:00.000Z"), ASCII digits only.
_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?Z")
# Base64 of an RSA signature: 256 bytes (2048-bit key) is 344 characters; the cap allows a 4096-bit key.
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{4,1000}={0,2}")
_MAX_URL_LENGTH: Final = 2048
# What a certificate URL may hold: no user part, query, fragment, backslash, space or non-ASCII character.
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/%+=,\-]+")
# The longest string field worth reading: an SNS message is at most 256 KiB.
_MAX_FIELD_LENGTH: Final = 256 * 1024


def _no_redirects_opener() -> urllib.request.OpenerDirector:
    """An opener for http(s) only that follows no redirect (a 3xx answer is an HTTPError) and uses no proxy."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def fetch_certificate(url: str) -> bytes:
    """The PEM at ``url``: a GET with a 2 s timeout, no redirects, at most 64 KiB.

    Only called with a URL the verifier accepted (``https`` on an SNS host, or the trusted local pattern).

    Raises
    ------
    DependencyError
        The certificate could not be fetched (the invocation is retried).
    """
    if urlsplit(url).scheme not in ("https", "http"):
        raise DependencyError("the SNS signing certificate is unavailable")
    request = urllib.request.Request(url, headers={"Accept": "application/x-pem-file"})  # noqa: S310 - http(s)
    try:
        with _no_redirects_opener().open(request, timeout=CERT_TIMEOUT_SECONDS) as response:
            if response.status != 200:
                raise DependencyError("the SNS signing certificate is unavailable")
            body: bytes = response.read(MAX_CERT_BYTES + 1)
    except (OSError, ValueError, HTTPException) as exc:  # URLError, HTTPError, timeouts and TLS errors are OSErrors
        raise DependencyError("the SNS signing certificate is unavailable") from exc
    if len(body) > MAX_CERT_BYTES:
        raise DependencyError("the SNS signing certificate is unavailable")
    return body


class SnsSignatureVerifier:
    """Checks that a record's ``Sns`` object is a Notification SNS signed for one of this stack's topics.

    Keep one per process: it caches the public keys of the certificates it fetched, by URL.

    Parameters
    ----------
    topic_arns:
        The topics whose notifications are accepted (any other TopicArn is refused).
    clock:
        Source of the current time, for the replay window.
    tolerance_seconds:
        How old a notification's Timestamp may be (SNS retries a failed delivery for up to an hour by default).
        It may be at most five minutes ahead of the clock.
    load_certificate:
        Fetches the PEM at a URL (default :func:`fetch_certificate`); it may raise :class:`DependencyError`.
    trusted_cert_url:
        When given, the certificate URL must match this pattern in full instead of being ``https`` on an SNS
        host (the local stack and tests serve their certificate from ``http://127.0.0.1:<port>/...pem``). The
        URL must still end in ``.pem``.
    """

    def __init__(
        self,
        *,
        topic_arns: Collection[str],
        clock: Clock,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        load_certificate: Callable[[str], bytes] | None = None,
        trusted_cert_url: re.Pattern[str] | None = None,
    ) -> None:
        self._topic_arns = frozenset(arn for arn in topic_arns if arn)
        self._clock = clock
        self._tolerance = tolerance_seconds
        self._load = load_certificate or fetch_certificate
        self._trusted = trusted_cert_url
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def verify(self, record_sns: Mapping[str, object]) -> None:
        """Return when ``record_sns`` is a notification SNS signed, recently, for one of the topics.

        Raises
        ------
        UnauthorizedError
            It is not (whatever is wrong with it: the answer never says what).
        DependencyError
            Its signing certificate could not be fetched or read.
        """
        if not isinstance(record_sns, Mapping):
            raise bad_signature()
        fields: dict[str, str | None] = {
            name: _string(record_sns.get(name)) for name in SIGNED_FIELDS if name != "Subject"
        }
        subject = record_sns.get("Subject")
        if subject is not None:
            fields["Subject"] = _string(subject)
        algorithm = _HASHES.get(_string(record_sns.get("SignatureVersion")) or "")
        signature = _string(record_sns.get("Signature"))
        cert_url = _cert_url(record_sns)
        if (
            any(value is None for value in fields.values())
            or fields["Type"] != NOTIFICATION
            or fields["TopicArn"] not in self._topic_arns
            or algorithm is None
            or signature is None
            or cert_url is None
            or not self._cert_url_allowed(cert_url, str(fields["TopicArn"]))
            or not self._recent(fields["Timestamp"])
        ):
            raise bad_signature()
        signed = _string_to_sign(fields)
        raw_signature = _decode_signature(signature)
        if signed is None or raw_signature is None:
            raise bad_signature()
        key = self._public_key(cert_url)
        try:
            key.verify(raw_signature, signed, padding.PKCS1v15(), algorithm())
        except InvalidSignature as exc:
            raise bad_signature() from exc

    def _cert_url_allowed(self, url: str, topic_arn: str) -> bool:
        if len(url) > _MAX_URL_LENGTH or not _URL_CHARS.fullmatch(url):
            return False
        try:
            parts = urlsplit(url)
            port = parts.port  # a malformed port raises ValueError
        except ValueError:
            return False
        if not parts.path.endswith(".pem") or parts.query or parts.fragment:
            return False
        if self._trusted is not None:
            return self._trusted.fullmatch(url) is not None
        return (
            parts.scheme == "https"
            and port is None
            and parts.username is None
            and parts.password is None
            and SNS_CERT_HOST.fullmatch(parts.hostname or "") is not None
            # SNS signs with a certificate of the topic's own region: sns.<region>.amazonaws.com[.cn] (the
            # pattern alone would also take a legacy S3 endpoint such as sns.s3-us-west-2.amazonaws.com).
            and (parts.hostname or "") in _regional_hosts(topic_arn)
            # The network location must be the bare host (hostname is lower-cased).
            and parts.netloc.lower() == parts.hostname
        )

    def _recent(self, timestamp: str | None) -> bool:
        at = _epoch_seconds(timestamp)
        if at is None:
            return False
        now = self._clock.now()
        return now - self._tolerance <= at <= now + FUTURE_SKEW_SECONDS

    def _public_key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            cached = self._keys.get(url)
        if cached is not None:
            return cached
        try:
            pem = self._load(url)
        except (OSError, ValueError, HTTPException) as exc:
            raise DependencyError("the SNS signing certificate is unavailable") from exc
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except (ValueError, TypeError) as exc:
            # The URL is on SNS's own host (or the trusted local one): what it served is its failure, not a forgery.
            raise DependencyError("the SNS signing certificate is unreadable") from exc
        now = datetime.fromtimestamp(self._clock.now(), UTC)
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey) or not (
            certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc
        ):
            raise bad_signature()
        with self._lock:
            if len(self._keys) >= MAX_CACHED_CERTS:
                self._keys.pop(next(iter(self._keys)))
            self._keys[url] = key
        return key


def _string(value: object) -> str | None:
    """``value`` when it is a string of a readable length, else None."""
    return value if isinstance(value, str) and len(value) <= _MAX_FIELD_LENGTH else None


def _regional_hosts(topic_arn: str) -> frozenset[str]:
    """SNS's certificate hosts for a topic ARN's region (``arn:aws:sns:<region>:<account>:<name>``)."""
    parts = topic_arn.split(":")
    region = parts[3].lower() if len(parts) == 6 and parts[0] == "arn" and parts[2] == "sns" else ""
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", region):
        return frozenset()
    return frozenset({f"sns.{region}.amazonaws.com", f"sns.{region}.amazonaws.com.cn"})


def _cert_url(record_sns: Mapping[str, object]) -> str | None:
    """The signing certificate's URL in either spelling; None when absent, not a string, or two that differ."""
    given = {name: record_sns.get(name) for name in CERT_URL_FIELDS if record_sns.get(name) is not None}
    values = {_string(value) for value in given.values()}
    if len(values) != 1:
        return None
    return values.pop()


def _string_to_sign(fields: Mapping[str, str | None]) -> bytes | None:
    """``Key\\nValue\\n`` for each signed field present, in order, as UTF-8; None when a value has no UTF-8 form."""
    text = "".join(f"{name}\n{fields[name]}\n" for name in SIGNED_FIELDS if name in fields)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (possible in an event's JSON) cannot be what SNS signed
        return None


def _decode_signature(signature: str) -> bytes | None:
    if not _SIGNATURE.fullmatch(signature):
        return None
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None


def _epoch_seconds(timestamp: str | None) -> int | None:
    """Whole epoch seconds of an SNS Timestamp (``2026-12-01T17:00:00.000Z``), None when it is not one."""
    found = _TIMESTAMP.fullmatch(timestamp) if timestamp is not None else None
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in found.groups())
    try:
        at = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:  # month 13, February 30...
        return None
    return int(at.timestamp())


# ------------------------------------------------------------------------------------------- events

DELIVERED_EVENTS: Final = frozenset({"TEXT_DELIVERED", "TEXT_SUCCESSFUL"})
FAILED_EVENTS: Final = frozenset(
    {
        "TEXT_BLOCKED",
        "TEXT_CARRIER_BLOCKED",
        "TEXT_PROTECT_BLOCKED",
        "TEXT_SPAM",
        "TEXT_INVALID",
        "TEXT_INVALID_MESSAGE",
        "TEXT_UNREACHABLE",
        "TEXT_CARRIER_UNREACHABLE",
        "TEXT_TTL_EXPIRED",
        "TEXT_UNKNOWN",
    }
)
PROGRESS_EVENTS: Final = frozenset({"TEXT_QUEUED", "TEXT_PENDING", "TEXT_SENT"})
OUTCOMES: Final[Mapping[str, str]] = {
    **dict.fromkeys(DELIVERED_EVENTS, DELIVERED),
    **dict.fromkeys(FAILED_EVENTS, FAILED),
}

MALFORMED_EVENT = "the delivery event is malformed"
# EUM message IDs (SendTextMessage's MessageId; PutMessageFeedback's pattern); the event types are upper snake.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_:/-]{1,64}")
_EVENT_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_SEND = re.compile(r"[0-9]{1,9}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")


@dataclass(frozen=True)
class EumReceipt:
    """A delivery event's outcome, with what the event says besides it (for logs and metrics).

    ``country`` is the destination's ISO 3166 alpha-2 code (upper case) when the event names a valid one;
    ``final`` is the event's ``isFinal`` (None when absent).
    """

    report: DeliveryReport
    event_type: str
    country: str | None = None
    final: bool | None = None


class EumEventReader:
    """Reads the EUM event JSON of a verified SNS notification's ``Message``."""

    def read(self, message: str) -> EumReceipt | None:
        """The outcome an event reports; None for a progress event (queued, pending, sent) or an event type that
        reports no text outcome (voice, media, RCS, or one EUM adds later): nothing to record.

        Raises
        ------
        InvalidRequestError
            The message is not an EUM event this service's sends produce: not a JSON object, no string
            ``eventType``, a ``messageId`` that is not an EUM message ID, a ``context.challengeId`` this service
            could not have issued, or a ``context.send`` that is not a number.
        """
        event = _json_object(message)
        event_type = event.get("eventType")
        message_id = event.get("messageId")
        context = event.get("context")
        if (
            not isinstance(event_type, str)
            or not _EVENT_TYPE.fullmatch(event_type)
            or not isinstance(message_id, str)
            or not _MESSAGE_ID.fullmatch(message_id)
            or not isinstance(context, dict)
        ):
            raise InvalidRequestError(MALFORMED_EVENT)
        challenge_id = context.get("challengeId")
        if not isinstance(challenge_id, str) or not is_challenge_id(challenge_id):
            raise InvalidRequestError(MALFORMED_EVENT)
        send = context.get("send")
        if send is not None and (not isinstance(send, str) or not _SEND.fullmatch(send)):
            raise InvalidRequestError(MALFORMED_EVENT)

        status = OUTCOMES.get(event_type)
        final = event.get("isFinal")
        if status is None or final is False:
            # A status the service may still change (a carrier's temporary error, an unknown that may clear, an
            # early success) is progress: only the final event of a send is its outcome.
            return None
        country = event.get("isoCountryCode")
        return EumReceipt(
            report=DeliveryReport(challenge_id, message_id, status, int(send) if send is not None else None),
            event_type=event_type,
            country=country.upper() if isinstance(country, str) and _COUNTRY.fullmatch(country) else None,
            final=final if isinstance(final, bool) else None,
        )


def _json_object(message: object) -> dict[str, object]:
    if not isinstance(message, str) or len(message) > _MAX_FIELD_LENGTH:
        raise InvalidRequestError(MALFORMED_EVENT)
    try:
        document = json.loads(message)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, over-long integers, deep nesting
        raise InvalidRequestError(MALFORMED_EVENT) from exc
    if not isinstance(document, dict):
        raise InvalidRequestError(MALFORMED_EVENT)
    return document


# ------------------------------------------------------------------------------------------- Lambda events

SNS_EVENT_SOURCE: Final = "aws:sns"


def sns_records(event: Mapping[str, object]) -> list[Mapping[str, object]] | None:
    """The ``Sns`` objects of an SNS-invoked Lambda event, in order; None when ``event`` is not one (API Gateway).

    An event is an SNS event when it has ``Records``; each record must then be ``{"EventSource": "aws:sns",
    "Sns": {...}}``. Each ``Sns`` object is still unverified: pass it to :meth:`SnsSignatureVerifier.verify`.

    Raises
    ------
    InvalidRequestError
        The event has ``Records`` but they are not SNS records (SNS never invokes the function so).
    """
    if not isinstance(event, Mapping) or "Records" not in event:
        return None
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidRequestError("the event's records are not SNS records")
    found: list[Mapping[str, object]] = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        if (
            not isinstance(record, Mapping)
            or record.get("EventSource") != SNS_EVENT_SOURCE
            or not isinstance(sns, Mapping)
        ):
            raise InvalidRequestError("the event's records are not SNS records")
        found.append(sns)
    return found
