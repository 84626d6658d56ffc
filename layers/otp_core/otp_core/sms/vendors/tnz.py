"""TNZ REST API v2.04: send one SMS.

Reference: https://www.tnz.co.nz/Docs/RestAPI/ (API v2.04: URL, headers, "Send SMS") and
https://help.tnz.co.nz/help/tnz-api-errors (rejection messages).

Request: ``POST https://api.tnz.co.nz/api/v2.04/send/sms`` with ``Authorization: Basic <Auth Token>`` (the
token exported from the TNZ dashboard, sent as is), ``Content-Type: application/json; encoding='utf-8'`` and::

    {"MessageData": {"Message": "...", "Destinations": [{"Recipient": "+6421000001"}],
                     "Reference": "<challengeId>", "FromNumber": "MyBrand"}}

``FromNumber`` is the request's alphanumeric sender ID where allowed, else the configured one, else omitted.

Replies: ``200`` with ``{"Result": "Success", "MessageID": "..."}``; failures carry ``"Result": "Failed"`` and
an ``ErrorMessage`` (a string or a list). TNZ documents its rejections only as those messages, so the one that
means "no valid mobile number in Destinations" is the bad-number signal. Note TNZ validates the token after
accepting the call (failures are e-mailed to the account), so ``Success`` means queued, not authorised.

Secret (``tnz``): ``{"authToken", "fromNumber"?}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from otp_core.observability import tracer
from otp_core.records import OutgoingSms, SentSms
from otp_core.sms.http import TransportError, json_body, post
from otp_core.sms.vendor import ProviderError, VendorSender, bad_number, sender_for

_NO_VALID_DESTINATION = "could not find any valid destination"


class TnzSender(VendorSender):
    """Sends through TNZ's REST API."""

    name: ClassVar[str] = "tnz"
    default_base_url: ClassVar[str] = "https://api.tnz.co.nz"

    @tracer.capture_method(capture_response=False)
    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        credentials = self.credentials()
        token = self.required(credentials, "authToken")

        message: dict[str, Any] = {
            "Message": sms.body,
            "Destinations": [{"Recipient": sms.to}],
            "Reference": sms.challenge_id,
        }
        sender = sender_for(sms, self.optional(credentials, "fromNumber"))
        if sender is not None:
            message["FromNumber"] = sender

        headers = {
            "Authorization": f"Basic {token}",
            "Content-Type": "application/json; encoding='utf-8'",
            "Accept": "application/json; encoding='utf-8'",
        }
        try:
            reply = post(
                f"{self.base_url}/api/v2.04/send/sms",
                body=json_body({"MessageData": message}),
                headers=headers,
                timeout=timeout,
            )
        except TransportError as exc:
            raise ProviderError(self.name, exc.reason, ambiguous=exc.sent) from exc

        answer = reply.json()
        result = answer.get("Result") if isinstance(answer, dict) else None
        if reply.status == 200 and result == "Success":
            message_id = answer.get("MessageID")
            return SentSms(provider=self.name, message_id=message_id if isinstance(message_id, str) else None)
        if result == "Failed" and _NO_VALID_DESTINATION in _errors(answer):
            raise bad_number()
        if reply.status == 200:
            # A 200 that is not "Success" is a refusal of this request, not an outage.
            raise ProviderError(self.name, "rejected")
        raise self.failure_for_status(reply.status)


def _errors(answer: Any) -> str:
    value = answer.get("ErrorMessage") if isinstance(answer, dict) else None
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    return str(value or "").lower()


SENDER = TnzSender
