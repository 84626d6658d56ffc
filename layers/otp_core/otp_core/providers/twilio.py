"""Twilio Programmable Messaging: create one Message resource.

Reference: https://www.twilio.com/docs/messaging/api/message-resource (Create a Message resource) and
https://www.twilio.com/docs/api/errors (error codes).

Request: ``POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP Basic auth
(Account SID : Auth Token), ``application/x-www-form-urlencoded`` body with ``To``, ``Body``, ``From`` and/or
``MessagingServiceSid``, and ``StatusCallback`` when the stack has a public callback URL. ``From`` is the
request's alphanumeric sender ID where Twilio allows one (not towards +1 numbers), else the configured number.

Replies: ``201 Created`` with the Message JSON (its ``sid`` is the message ID); errors are
``{"code", "message", "more_info", "status"}``. Codes that say the destination is invalid or cannot receive
SMS are a bad number. Codes that refuse the request's own sender ID, the text, or the destination's region
fail over without counting against the circuit (see :mod:`otp_core.providers.base`); everything else is this
provider failing.

Secret (``twilio``): ``{"accountSid", "authToken", "from"?, "messagingServiceSid"?}`` (``from`` or
``messagingServiceSid`` required).
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from otp_core.providers.base import (
    ProviderError,
    VendorSender,
    bad_number,
    basic_auth,
    rejected_content,
    rejected_destination,
    sender_for,
    uses_request_sender,
)
from otp_core.providers.http import TransportError, form_body, post
from otp_core.providers.signatures import twilio_callback_url
from otp_core.records import OutgoingSms, SentSms

# 21211 invalid 'To' number; 21612 'To' not reachable via SMS; 21614 'To' not a mobile number;
# 21635 'To' is a landline; 21610 the recipient replied STOP to this sender (sending it elsewhere would
# circumvent the opt-out, so it is final too).
BAD_NUMBER_CODES = frozenset({21211, 21610, 21612, 21614, 21635})
# 21612 also answers an alphanumeric 'From' towards a country that does not take one ("not reachable using
# the 'From'"): with the request's sender ID it is that sender's refusal, and another provider may deliver.
UNREACHABLE_CODE = 21612
# Refusals of the 'From': 21212 invalid From; 21606 From cannot send to this destination; 21659 From is not a
# Twilio number; 21661 From is not SMS-capable. The request's doing only when From was its sender ID.
SENDER_CODES = frozenset({21212, 21606, 21659, 21661})
# Refusals of the text: 21602 body required; 21617 body over 1600 characters; 21658 a parameter over its
# length limit; 30007 filtered by the carrier.
CONTENT_CODES = frozenset({21602, 21617, 21658, 30007})
# 21408: the account's geographic permissions do not include the 'To' number's country.
DESTINATION_CODES = frozenset({21408})


class TwilioSender(VendorSender):
    """Sends through Twilio's Messages resource."""

    name: ClassVar[str] = "twilio"
    default_base_url: ClassVar[str] = "https://api.twilio.com"

    def send_within(self, sms: OutgoingSms, timeout: float) -> SentSms:
        credentials = self.credentials()
        account_sid = self.required(credentials, "accountSid")
        auth_token = self.required(credentials, "authToken")
        service_sid = self.optional(credentials, "messagingServiceSid")
        sender = sender_for(sms, self.optional(credentials, "from"))
        if sender is None and service_sid is None:
            raise ProviderError(self.name, "config")

        form = {"To": sms.to, "Body": sms.body}
        if sender is not None:
            form["From"] = sender
        if service_sid is not None:
            form["MessagingServiceSid"] = service_sid
        if self._config.callback_base_url:
            form["StatusCallback"] = twilio_callback_url(self._config.callback_base_url, sms.challenge_id)

        url = f"{self.base_url}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        headers = {
            "Authorization": basic_auth(account_sid, auth_token),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        try:
            reply = post(url, body=form_body(form), headers=headers, timeout=timeout)
        except TransportError as exc:
            raise ProviderError(self.name, exc.reason, ambiguous=exc.sent) from exc

        document = reply.json()
        if reply.status in (200, 201):
            sid = document.get("sid") if isinstance(document, dict) else None
            return SentSms(provider=self.name, message_id=sid if isinstance(sid, str) else None)
        code = document.get("code") if isinstance(document, dict) else None
        if reply.status == 400:
            request_sender = uses_request_sender(sms)
            if code == UNREACHABLE_CODE and request_sender:
                raise rejected_content(self.name)
            if code in BAD_NUMBER_CODES:
                raise bad_number()
            if code in CONTENT_CODES or (code in SENDER_CODES and request_sender):
                raise rejected_content(self.name)
            if code in DESTINATION_CODES:
                raise rejected_destination(self.name)
        if code == 20429:
            raise ProviderError(self.name, "throttled")
        raise self.failure_for_status(reply.status)
