"""Generic webhook provider: POST each SMS, signed, to the operator's own endpoint.

This provider's contract is defined here (there is no vendor page to cite); the README repeats it for
receivers.

Request: ``POST <url>`` with ``Content-Type: application/json`` and the body::

    {"to": "+6421...", "body": "...", "senderId": "MyBrand" | null, "challengeId": "...",
     "sentAt": "2026-11-21T22:10:00Z"}

plus ``X-Otp-Timestamp`` (epoch seconds) and ``X-Otp-Signature``: the hex HMAC-SHA256, under the shared
secret, of ``f"{timestamp}.{raw body}"``. Receivers recompute it over the raw bytes, compare in constant time and
refuse timestamps more than five minutes away from their clock (replays).

Replies: any 2xx accepts the message; a JSON ``{"messageId": "..."}`` in it is recorded. ``422`` (or ``400``) with
``{"code": "INVALID_PHONE_NUMBER"}`` says the number is bad (no failover); with ``{"code": "INVALID_SENDER_ID"}``
(for a request that had a ``senderId``) or ``{"code": "INVALID_MESSAGE"}`` it refuses this message's sender or
text: the next provider is tried, and the refusal does not count against this one's circuit. Any other status
is this provider failing. Delivery outcomes may be posted back to ``/v1/delivery-status/webhook`` as
``{"challengeId", "messageId"?, "status": "delivered" | "failed"}``, signed the same way.

Secret (``webhook``): ``{"url", "secret"}``.
"""

from __future__ import annotations

from typing import ClassVar

from otp_core.providers.base import ProviderError, VendorSender, bad_number, rejected_content
from otp_core.providers.http import TransportError, json_body, post
from otp_core.providers.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_signature
from otp_core.records import OutgoingSms, SentSms
from otp_core.timefmt import rfc3339

BAD_NUMBER_CODE = "INVALID_PHONE_NUMBER"
BAD_SENDER_CODE = "INVALID_SENDER_ID"
BAD_MESSAGE_CODE = "INVALID_MESSAGE"


class WebhookSender(VendorSender):
    """POSTs each SMS to the configured URL with an HMAC signature."""

    name: ClassVar[str] = "webhook"
    default_base_url: ClassVar[str] = ""

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
