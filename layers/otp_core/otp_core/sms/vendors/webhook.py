"""Generic webhook provider: POST each SMS, signed, to the operator's own endpoint, and read its signed reports.

This provider's contract is defined here (there is no vendor page to cite); the README repeats it for
receivers.

Request: ``POST <url>`` with ``Content-Type: application/json`` and the body::

    {"to": "+6421...", "body": "...", "senderId": "MyBrand" | null, "challengeId": "...", "send": 0,
     "sentAt": "2026-11-21T22:10:00Z"}

plus ``X-Otp-Timestamp`` (epoch seconds) and ``X-Otp-Signature``: the hex HMAC-SHA256, under the shared
secret, of ``f"{timestamp}.{raw body}"``. Receivers recompute it over the raw bytes, compare in constant time and
refuse timestamps more than five minutes away from their clock (replays).

Replies: any 2xx accepts the message; a JSON ``{"messageId": "..."}`` in it is recorded. ``422`` (or ``400``) with
``{"code": "INVALID_PHONE_NUMBER"}`` says the number is bad (no failover); with ``{"code": "INVALID_SENDER_ID"}``
(for a request that had a ``senderId``) or ``{"code": "INVALID_MESSAGE"}`` it refuses this message's sender or
text: the next provider is tried, and the refusal does not count against this one's circuit. Any other status
is this provider failing. Delivery outcomes may be posted back to ``/v1/delivery-status/webhook`` as
``{"challengeId", "send"?, "messageId"?, "status": "delivered" | "failed"}`` (``send`` as the message had it:
0 for the first send, n for the n-th resend), signed the same way (the timestamp within
``delivery_callback_tolerance_seconds`` of this service's clock).

Secret (``webhook``): ``{"url", "secret"}``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from otp_core.http import parse_document
from otp_core.observability import tracer
from otp_core.records import OutgoingSms, SentSms, is_challenge_id
from otp_core.sms.callbacks import (
    DEFAULT_TOLERANCE_SECONDS,
    CallbackRequest,
    DeliveryCallback,
    DeliveryReport,
    bad_signature,
    strict_token,
)
from otp_core.sms.http import TransportError, json_body, post
from otp_core.sms.vendor import ProviderError, VendorSender, bad_number, rejected_content
from otp_core.timefmt import rfc3339

BAD_NUMBER_CODE = "INVALID_PHONE_NUMBER"
BAD_SENDER_CODE = "INVALID_SENDER_ID"
BAD_MESSAGE_CODE = "INVALID_MESSAGE"

TIMESTAMP_HEADER = "X-Otp-Timestamp"
SIGNATURE_HEADER = "X-Otp-Signature"
# Epoch seconds in ASCII digits only: str.isdigit() and int() also accept other scripts' digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Hex SHA-256 is 64 characters; upper case is accepted because some receivers' libraries emit it.
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


class WebhookSender(VendorSender):
    """POSTs each SMS to the configured URL with an HMAC signature."""

    name: ClassVar[str] = "webhook"
    default_base_url: ClassVar[str] = ""

    @tracer.capture_method(capture_response=False)
    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        credentials = self.credentials()
        # An endpoint override (local stack, tests) replaces the URL from the secret.
        url = self._config.base_url or self.required(credentials, "url")
        secret = self.required(credentials, "secret")

        now = self._config.clock.now()
        body = json_body(
            {
                "to": sms.to,
                "body": sms.body,
                "senderId": sms.sender_id,
                "challengeId": sms.challenge_id,
                "send": sms.send,
                "sentAt": rfc3339(now),
            }
        )
        timestamp = str(now)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(secret, timestamp, body),
        }
        try:
            reply = post(url, body=body, headers=headers, timeout=timeout)
        except TransportError as exc:
            raise ProviderError(self.name, exc.reason, ambiguous=exc.sent) from exc

        answer = reply.json()
        if 200 <= reply.status < 300:
            message_id = answer.get("messageId") if isinstance(answer, dict) else None
            return SentSms(provider=self.name, message_id=message_id if isinstance(message_id, str) else None)
        code = answer.get("code") if reply.status in (400, 422) and isinstance(answer, dict) else None
        if code == BAD_NUMBER_CODE:
            raise bad_number()
        if code == BAD_MESSAGE_CODE or (code == BAD_SENDER_CODE and sms.sender_id is not None):
            raise rejected_content(self.name)
        raise self.failure_for_status(reply.status)


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under the shared secret.

    Signing the timestamp with the body lets a receiver refuse old requests (replays) without keeping state.
    """
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_webhook(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Check a webhook request's signature and freshness.

    Parameters
    ----------
    secret:
        The shared secret.
    timestamp, signature:
        The ``X-Otp-Timestamp`` (epoch seconds) and ``X-Otp-Signature`` (hex) header values.
    body:
        The raw request body, exactly as received.
    now:
        Current epoch seconds.
    tolerance_seconds:
        How far the timestamp may be from ``now``, either way; older requests are treated as replays.

    Returns
    -------
    bool
        True only for a well-formed, fresh, correctly signed request; False for anything else, never an error.
    """
    timestamp = strict_token(timestamp, _TIMESTAMP)
    signature = strict_token(signature, _SIGNATURE)
    if not secret or timestamp is None or signature is None:
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = webhook_signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("ascii"))


def _challenge_id(value: str) -> str:
    if not is_challenge_id(value):
        raise ValueError("not a challenge ID this service issued")
    return value


class WebhookReport(BaseModel):
    """The webhook provider's delivery report."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    challenge_id: Annotated[str, AfterValidator(_challenge_id)] = Field(alias="challengeId")
    message_id: str | None = Field(default=None, alias="messageId", min_length=1, max_length=256)
    status: Literal["delivered", "failed"]
    send: Annotated[int, Field(ge=0, le=1_000_000, strict=True)] | None = None


class WebhookCallback(DeliveryCallback):
    """Reads the webhook provider's reports, verified with the shared secret and the timestamp."""

    credential: ClassVar[str] = "secret"

    def read(self, request: CallbackRequest, credential: str) -> DeliveryReport:
        body = request.signed_body()
        valid = verify_webhook(
            credential,
            timestamp=request.header(TIMESTAMP_HEADER),
            signature=request.header(SIGNATURE_HEADER),
            body=body,
            now=self._config.clock.now(),
            tolerance_seconds=self._config.tolerance_seconds,
        )
        if not valid:
            raise bad_signature()
        report = parse_document(body, WebhookReport)
        return DeliveryReport(report.challenge_id, report.message_id, report.status, report.send)


SENDER = WebhookSender
CALLBACK = WebhookCallback
