"""Vonage (Nexmo) SMS API: send one SMS.

Reference: https://developer.vonage.com/messaging/sms/code-snippets/send-an-sms (request),
https://developer.vonage.com/messaging/sms/guides/troubleshooting-sms and
https://developer.vonage.com/api-errors/sms (the ``status`` codes).

Request: ``POST https://rest.nexmo.com/sms/json``, HTTP Basic auth (API key : API secret) as in Vonage's
example, ``application/x-www-form-urlencoded`` body with ``from``, ``to`` (E.164 digits without ``+``), ``text``,
``client-ref`` (the challenge ID) and ``type=unicode`` when the text is not plain GSM 03.38 (otherwise the
handset would show it garbled). ``from`` is the request's alphanumeric sender ID where allowed, else the
configured sender.

Replies: ``200`` with ``{"message-count", "messages": [{"status", "message-id", ...}]}``. A ``status`` other than
``"0"`` is an error even with HTTP 200: 6 (unrecognised number prefix), 7 (number barred) and 33 (number
de-activated) are a bad number; 1 (throttled), 5 (internal error) and 10 (too many binds) are transient;
12 (message too long) and 15 (invalid sender address, when it was the request's sender ID) refuse this
request and do not count against the circuit; every other code is a configuration or account problem at
Vonage. All but the bad-number codes fail over.

Secret (``vonage``): ``{"apiKey", "apiSecret", "from"}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from otp_core.observability import tracer
from otp_core.records import OutgoingSms, SentSms
from otp_core.sms.http import TransportError, form_body, post
from otp_core.sms.vendor import (
    ProviderError,
    VendorSender,
    bad_number,
    basic_auth,
    rejected_content,
    sender_for,
    uses_request_sender,
)

BAD_NUMBER_STATUSES = frozenset({"6", "7", "33"})
TRANSIENT_STATUSES = frozenset({"1", "5", "10"})
MESSAGE_TOO_LONG = "12"
INVALID_SENDER = "15"

# GSM 03.38 basic character set and its extension table (escaped characters still encode as GSM-7).
_GSM_CHARS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "^{}\\[~]|€\f"
)


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent with the default GSM 7-bit alphabet."""
    return all(char in _GSM_CHARS for char in text)


class VonageSender(VendorSender):
    """Sends through Vonage's SMS API."""

    name: ClassVar[str] = "vonage"
    default_base_url: ClassVar[str] = "https://rest.nexmo.com"

    @tracer.capture_method(capture_response=False)
    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        credentials = self.credentials()
        api_key = self.required(credentials, "apiKey")
        api_secret = self.required(credentials, "apiSecret")
        sender = sender_for(sms, self.optional(credentials, "from"))
        if sender is None:
            raise ProviderError(self.name, "config")

        form = {"from": sender.removeprefix("+"), "to": sms.to.removeprefix("+"), "text": sms.body}
        form["client-ref"] = sms.challenge_id
        if not is_gsm7(sms.body):
            form["type"] = "unicode"
        headers = {
            "Authorization": basic_auth(api_key, api_secret),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        try:
            reply = post(f"{self.base_url}/sms/json", body=form_body(form), headers=headers, timeout=timeout)
        except TransportError as exc:
            raise ProviderError(self.name, exc.reason, ambiguous=exc.sent) from exc

        if reply.status != 200:
            raise self.failure_for_status(reply.status)
        message = _first_message(reply.json())
        if message is None:
            # HTTP 200 but no readable status: Vonage may or may not have queued it.
            raise ProviderError(self.name, "unreadable", ambiguous=True)
        status = str(message.get("status"))
        if status == "0":
            message_id = message.get("message-id")
            return SentSms(provider=self.name, message_id=message_id if isinstance(message_id, str) else None)
        if status in BAD_NUMBER_STATUSES:
            raise bad_number()
        if status in TRANSIENT_STATUSES:
            raise ProviderError(self.name, "throttled" if status == "1" else "unavailable")
        if status == MESSAGE_TOO_LONG or (status == INVALID_SENDER and uses_request_sender(sms)):
            raise rejected_content(self.name)
        raise ProviderError(self.name, f"status_{status}" if status.isdigit() and len(status) <= 3 else "rejected")


def _first_message(answer: Any) -> dict[str, Any] | None:
    messages = answer.get("messages") if isinstance(answer, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], dict) and "status" in messages[0]:
        return messages[0]
    return None


SENDER = VonageSender
