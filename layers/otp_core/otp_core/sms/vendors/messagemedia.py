"""MessageMedia (Sinch) Messages API: submit one SMS.

Reference: MessageMedia's OpenAPI document, https://github.com/messagemedia/documentation (spec/openapi.yaml:
Basic Authentication, Messages, Delivery Reports) and the Messages SDK's endpoint page,
https://github.com/messagemedia/messages-python-sdk/blob/master/doc/controllers/messages.md.

Request: ``POST https://api.messagemedia.com/v1/messages``, HTTP Basic auth (API key : API secret), JSON::

    {"messages": [{"content": "...", "destination_number": "+61491570156", "format": "SMS",
                   "source_number": "MyBrand", "source_number_type": "ALPHANUMERIC"}]}

``source_number`` is the request's alphanumeric sender ID where allowed (``source_number_type``
``ALPHANUMERIC``), else the configured number (``INTERNATIONAL``), else omitted (the account's default).

Replies: ``202 Accepted`` with ``{"messages": [{"message_id", "status", ...}]}``; ``400`` with
``{"message", "details": [...]}`` for invalid requests. A 400 whose details name ``destination_number`` is a bad
number; one naming ``content``, or ``source_number`` when that was the request's sender ID, refuses this request
and does not count against the circuit; every other status is this provider failing.

Secret (``messagemedia``): ``{"apiKey", "apiSecret", "sourceNumber"?}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from otp_core.observability import tracer
from otp_core.records import OutgoingSms, SentSms
from otp_core.sms.http import TransportError, json_body, post
from otp_core.sms.vendor import (
    ProviderError,
    VendorSender,
    bad_number,
    basic_auth,
    rejected_content,
    uses_request_sender,
)


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


SENDER = MessageMediaSender
