"""Bird (formerly MessageBird) Channels API: send one message over an SMS channel.

Reference: https://docs.bird.com/api/channels-api/api-reference/messaging (Send a message) and
https://docs.bird.com/api/channels-api/supported-channels/programmable-sms/sending-sms-messages.

Request: ``POST https://api.bird.com/workspaces/{workspaceId}/channels/{channelId}/messages`` with
``Authorization: AccessKey <key>`` and a JSON body::

    {"receiver": {"contacts": [{"identifierKey": "phonenumber", "identifierValue": "+6421..."}]},
     "body": {"type": "text", "text": {"text": "..."}},
     "reference": "<challengeId>"}

The sender is the channel's: Bird binds a number or an alphanumeric sender to each SMS channel, so the
request's ``senderId`` cannot be applied per message (configure a channel per sender instead).

Replies: ``202 Accepted`` with the message (``id``, ``status: "accepted"``). A 400/422 validation error
about the ``receiver`` (or an ``invalid_recipient`` error type) is a bad number; one about the ``body`` (the
text) refuses this request and does not count against the circuit; every other status is this provider
failing.

Secret (``bird``): ``{"accessKey", "workspaceId", "channelId"}``.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from otp_core.observability import tracer
from otp_core.records import OutgoingSms, SentSms
from otp_core.sms.http import TransportError, json_body, post
from otp_core.sms.vendor import ProviderError, VendorSender, bad_number, rejected_content


class BirdSender(VendorSender):
    """Sends through a Bird SMS channel."""

    name: ClassVar[str] = "bird"
    default_base_url: ClassVar[str] = "https://api.bird.com"

    @tracer.capture_method(capture_response=False)
    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        credentials = self.credentials()
        access_key = self.required(credentials, "accessKey")
        workspace = quote(self.required(credentials, "workspaceId"), safe="")
        channel = quote(self.required(credentials, "channelId"), safe="")

        document = {
            "receiver": {"contacts": [{"identifierKey": "phonenumber", "identifierValue": sms.to}]},
            "body": {"type": "text", "text": {"text": sms.body}},
            "reference": sms.challenge_id,
        }
        headers = {
            "Authorization": f"AccessKey {access_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        url = f"{self.base_url}/workspaces/{workspace}/channels/{channel}/messages"
        try:
            reply = post(url, body=json_body(document), headers=headers, timeout=timeout)
        except TransportError as exc:
            raise ProviderError(self.name, exc.reason, ambiguous=exc.sent) from exc

        answer = reply.json()
        if reply.status in (200, 201, 202):
            message_id = answer.get("id") if isinstance(answer, dict) else None
            return SentSms(provider=self.name, message_id=message_id if isinstance(message_id, str) else None)
        if reply.status in (400, 422):
            error, fields = _validation_error(answer)
            recipient = "invalid_recipient" in (error.get("type"), error.get("code"))
            if recipient or any(field.startswith("receiver") for field in fields):
                raise bad_number()
            if fields and all(field.startswith("body") for field in fields):
                raise rejected_content(self.name)
        raise self.failure_for_status(reply.status)


def _validation_error(answer: Any) -> tuple[dict[str, Any], list[str]]:
    """The error object of a validation reply and the request fields it names (``receiver...``, ``body...``).

    The receiver and the body are the caller-supplied parts of the request; any other field is this adapter's
    or this account's doing.
    """
    if not isinstance(answer, dict):
        return {}, []
    nested = answer.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else answer
    details = error.get("details")
    fields: list[str] = []
    if isinstance(details, dict):
        fields = [str(key) for key in details]
    elif isinstance(details, list):
        fields = [str(d.get("param") or d.get("field") or "") for d in details if isinstance(d, dict)]
    return error, fields


SENDER = BirdSender
