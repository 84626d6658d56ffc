"""Modica Mobile Gateway REST API (v1, managed in Omni): send one SMS.

Reference: https://oss.modicagroup.com/docs/api/mobile-gateway-rest-v1.html (OpenAPI: POST /messages) and
https://oss.modicagroup.com/docs/es/integrations/api-documentation/rest-v1 (authentication, error codes).

Request: ``POST https://api.modicagroup.com/rest/gateway/messages``, HTTP Basic auth with the gateway
application's name and password (from Omni), ``Accept: application/vnd.modica.gateway.v1+json`` and JSON::

    {"destination": "+6421...", "content": "...", "reference": "<challengeId>", "mask": "MyBrand"}

``mask`` (the alphanumeric sender Modica shows instead of the source number) is the request's sender ID where
allowed, else the configured one; ``source`` is sent when the secret names a source number.

Replies: ``201 Created`` with the new message ID (a number, alone or in a list or object). Errors carry an
``error`` code (``send_failed``, ``invalid_json``, ``missing_attrib``, ``invalid_attrib``, ``broadcast_limit``)
and a description; ``invalid_attrib`` about the ``destination`` is a bad number; about the ``content``, or the
``mask`` when that was the request's sender ID, it refuses this request and does not count against the
circuit; everything else is this provider failing.

Secret (``modica``): ``{"applicationName", "password", "mask"?, "source"?}``.
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
    sender_for,
    uses_request_sender,
)

MEDIA_TYPE = "application/vnd.modica.gateway.v1+json"


class ModicaSender(VendorSender):
    """Sends through Modica's Mobile Gateway."""

    name: ClassVar[str] = "modica"
    default_base_url: ClassVar[str] = "https://api.modicagroup.com"

    @tracer.capture_method(capture_response=False)
    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        credentials = self.credentials()
        application = self.required(credentials, "applicationName")
        password = self.required(credentials, "password")

        document: dict[str, Any] = {"destination": sms.to, "content": sms.body, "reference": sms.challenge_id}
        mask = sender_for(sms, self.optional(credentials, "mask"))
        if mask is not None:
            document["mask"] = mask
        source = self.optional(credentials, "source")
        if source is not None:
            document["source"] = source

        headers = {
            "Authorization": basic_auth(application, password),
            "Content-Type": "application/json",
            "Accept": MEDIA_TYPE,
        }
        try:
            reply = post(
                f"{self.base_url}/rest/gateway/messages", body=json_body(document), headers=headers, timeout=timeout
            )
        except TransportError as exc:
            raise ProviderError(self.name, exc.reason, ambiguous=exc.sent) from exc

        answer = reply.json()
        if reply.status in (200, 201):
            return SentSms(provider=self.name, message_id=_message_id(answer))
        if isinstance(answer, dict) and answer.get("error") == "invalid_attrib":
            about = _attribute(answer)
            if about == "destination":
                raise bad_number()
            if about == "content" or (about == "mask" and uses_request_sender(sms)):
                raise rejected_content(self.name)
        raise self.failure_for_status(reply.status)


def _message_id(answer: Any) -> str | None:
    if isinstance(answer, list) and answer:
        answer = answer[0]
    if isinstance(answer, dict):
        answer = answer.get("id")
    if isinstance(answer, bool) or not isinstance(answer, int | str):
        return None
    return str(answer)


def _attribute(answer: dict[str, Any]) -> str | None:
    """The attribute an ``invalid_attrib`` error is about: ``destination``, ``content``, ``mask`` or None.

    Modica names the offending attribute in the description; those three can come from the caller.
    """
    description = str(answer.get("error_description", "")).lower()
    named = [attribute for attribute in ("destination", "content", "mask") if attribute in description]
    return named[0] if len(named) == 1 else None


SENDER = ModicaSender
