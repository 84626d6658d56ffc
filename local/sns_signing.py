"""Amazon SNS notifications signed like SNS signs them, for tests and the local stack.

A :class:`LocalSnsSigner` holds an RSA key and its self-signed certificate, serves the certificate's PEM from
``http://127.0.0.1:<port>/SimpleNotificationService-local.pem`` and signs notifications with the key; the
verifier (:class:`otp_core.sms.sns_events.SnsSignatureVerifier`) accepts that URL when given
:attr:`LocalSnsSigner.trusted_cert_url`. :func:`lambda_event` wraps signed records in the event SNS invokes a
Lambda function with, and :func:`eum_event` builds an End User Messaging delivery event (the notification's
``Message``).

The string to sign is written here from SNS's documentation, independently of the verifier:
``Key\\nValue\\n`` for Message, MessageId, Subject (when set), Timestamp, TopicArn and Type, signed with
SHA1withRSA (``SignatureVersion`` "1") or SHA256withRSA ("2").
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_PATH: Final = "/SimpleNotificationService-local.pem"
LOCAL_REGION: Final = "us-east-1"
LOCAL_ACCOUNT: Final = "123456789012"
# Valid whatever the clock of a test says (FakeClock's instants are in 2027).
_NOT_BEFORE: Final = datetime(2000, 1, 1, tzinfo=UTC)
_NOT_AFTER: Final = datetime(2099, 12, 31, tzinfo=UTC)
_HASHES: Final = {"1": hashes.SHA1, "2": hashes.SHA256}


def sns_timestamp(epoch_seconds: float) -> str:
    """An SNS ``Timestamp``: ISO 8601 UTC with milliseconds (``2026-12-01T17:00:00.000Z``)."""
    at = datetime.fromtimestamp(epoch_seconds, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def string_to_sign(notification: Mapping[str, object]) -> bytes:
    """What SNS signs for a Notification (Subject only when present and not null)."""
    text = ""
    for key in ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"):
        value = notification.get(key)
        if value is not None:
            text += f"{key}\n{value}\n"
    return text.encode("utf-8")


def new_certificate(key: rsa.RSAPrivateKey, common_name: str = "sns.local.test") -> x509.Certificate:
    """A self-signed certificate for ``key``, valid from 2000 to 2099."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .sign(key, hashes.SHA256())
    )


class LocalSnsSigner:
    """An SNS signing key, its certificate served on 127.0.0.1, and notifications signed with it.

    ``with LocalSnsSigner() as signer:`` starts and stops the server; :meth:`start` and :meth:`stop` do it by
    hand. :attr:`fetches` counts the certificate downloads served (a verifier caches the certificate).
    """

    def __init__(self, key: rsa.RSAPrivateKey | None = None) -> None:
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate = new_certificate(self.key)
        self.certificate_pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        self.fetches = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # --------------------------------------------------------------------------------- the server

    def start(self) -> LocalSnsSigner:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
            self._server.daemon_threads = True
            threading.Thread(target=self._server.serve_forever, name="local-sns-cert", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalSnsSigner:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local SNS certificate server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def cert_url(self) -> str:
        """The URL of the certificate's PEM (the notifications' ``SigningCertUrl``)."""
        return self.base_url + CERT_PATH

    @property
    def trusted_cert_url(self) -> re.Pattern[str]:
        """The pattern to pass as the verifier's ``trusted_cert_url``: this server's PEM URLs only."""
        return re.compile(re.escape(self.base_url) + r"/[A-Za-z0-9._-]+\.pem")

    def served(self) -> None:
        with self._lock:
            self.fetches += 1

    # --------------------------------------------------------------------------------- signing

    def sign_notification(
        self,
        message: str,
        topic_arn: str,
        *,
        version: str = "2",
        subject: str | None = None,
        timestamp: str | None = None,
        message_id: str | None = None,
        cert_url: str | None = None,
    ) -> dict[str, Any]:
        """The ``Sns`` object of a Lambda SNS record for ``message``, signed with this key.

        ``timestamp`` defaults to now (:func:`sns_timestamp`), ``message_id`` to a new UUID, ``cert_url`` to
        :attr:`cert_url` (the server must then be running). ``Subject`` is null when ``subject`` is None, as
        Lambda delivers it. ``version`` "1" signs with SHA1withRSA, "2" with SHA256withRSA.
        """
        notification: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": timestamp or sns_timestamp(time.time()),
            "SignatureVersion": version,
        }
        notification["Signature"] = self.signature(notification, version)
        notification["SigningCertUrl"] = cert_url or self.cert_url
        notification["UnsubscribeUrl"] = (
            f"https://sns.{LOCAL_REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic_arn}:{uuid.uuid4()}"
        )
        notification["MessageAttributes"] = {}
        return notification

    def signature(self, notification: Mapping[str, object], version: str = "2") -> str:
        """The base64 ``Signature`` of ``notification``'s signed fields (SHA-256 for "2", SHA-1 otherwise)."""
        algorithm = _HASHES.get(version, hashes.SHA1)()
        raw = self.key.sign(string_to_sign(notification), padding.PKCS1v15(), algorithm)
        return base64.b64encode(raw).decode("ascii")


def _handler_for(signer: LocalSnsSigner) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != CERT_PATH:
                self.send_error(404)
                return
            signer.served()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-pem-file")
            self.send_header("Content-Length", str(len(signer.certificate_pem)))
            self.end_headers()
            self.wfile.write(signer.certificate_pem)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read the counter, not the log."""

    return Handler


def topic_arn(name: str = "otp-sms-events") -> str:
    """An SNS topic ARN of the local account."""
    return f"arn:aws:sns:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{name}"


def lambda_event(*records: Mapping[str, Any]) -> dict[str, Any]:
    """The event SNS invokes a Lambda function with, one record per ``Sns`` object given."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{record.get('TopicArn', topic_arn())}:{uuid.uuid4()}",
                "Sns": dict(record),
            }
            for record in records
        ]
    }


_DESCRIPTIONS: Final = {
    "TEXT_DELIVERED": "Message has been accepted by phone",
    "TEXT_SUCCESSFUL": "Message has been accepted by phone carrier",
    "TEXT_QUEUED": "Message is queued for delivery",
    "TEXT_PENDING": "Message is pending delivery",
    "TEXT_SENT": "Message has been sent",
}
# Mobile country and network codes of one network per country (mcc and mnc are optional in events).
_NETWORKS: Final = {"NZ": ("530", "01"), "AU": ("505", "01"), "GB": ("234", "10"), "US": ("310", "800")}
_DESTINATIONS: Final = {"NZ": "+64211234567", "AU": "+61412345678", "GB": "+447700900123", "US": "+14255550156"}


def eum_event(
    challenge_id: str,
    send: int | None,
    event_type: str,
    message_id: str,
    country: str | None = "NZ",
    is_final: bool = True,
    *,
    at: float | None = None,
) -> str:
    """An End User Messaging SMS event's JSON, shaped like the documented example, for one of this service's sends.

    ``context`` carries ``challengeId`` and ``send`` (as strings: Context values are), or no ``send`` when it is
    None; ``isoCountryCode`` is left out when ``country`` is None. ``at`` (epoch seconds) defaults to now.
    """
    now_ms = int((time.time() if at is None else at) * 1000)
    status = event_type.removeprefix("TEXT_")
    context = {"challengeId": challenge_id}
    if send is not None:
        context["send"] = str(send)
    event: dict[str, Any] = {
        "eventType": event_type,
        "eventVersion": "1.0",
        "eventTimestamp": now_ms,
        "isFinal": is_final,
        "originationPhoneNumber": "OTP",
        "destinationPhoneNumber": _DESTINATIONS.get(country or "", "+14255550156"),
        "isInternationalSend": False,
    }
    if country is not None:
        event["isoCountryCode"] = country
    network = _NETWORKS.get(country or "")
    if network is not None:
        event["mcc"], event["mnc"] = network
    event.update(
        {
            "messageId": message_id,
            "messageRequestTimestamp": now_ms - 300,
            "messageEncoding": "GSM",
            "messageType": "TRANSACTIONAL",
            "messageStatus": status,
            "messageStatusDescription": _DESCRIPTIONS.get(event_type, f"Message status {status}"),
            "context": context,
            "totalMessageParts": 1,
            "totalMessagePrice": 0.09582,
            "totalCarrierFee": 0.0,
        }
    )
    return json.dumps(event)
