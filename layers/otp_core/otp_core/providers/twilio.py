"""Twilio Programmable Messaging: create one Message resource.

Reference: https://www.twilio.com/docs/messaging/api/message-resource (Create a Message resource) and
https://www.twilio.com/docs/api/errors (error codes).

Request: ``POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP Basic auth
(Account SID : Auth Token), ``application/x-www-form-urlencoded`` body with ``To``, ``Body``, ``From`` and/or
``MessagingServiceSid``, and ``StatusCallback`` when the stack has a public callback URL. ``From`` is the
request's alphanumeric sender ID where Twilio allows one (not towards +1 numbers), else the configured number.

Replies: ``201 Created`` with the Message JSON (its ``sid`` is the message ID); errors are
``{"code", "message", "more_info", "status"}``. Codes that say the destination is invalid or cannot receive
SMS are a bad number; everything else is this provider failing.

Secret (``twilio``): ``{"accountSid", "authToken", "from"?, "messagingServiceSid"?}`` (``from`` or
``messagingServiceSid`` required).
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from otp_core.ports import OutgoingSms, SentSms
from otp_core.providers.base import ProviderError, VendorSender, bad_number, basic_auth, sender_for
from otp_core.providers.http import TransportError, form_body, post
from otp_core.providers.signatures import twilio_callback_url

# 21211 invalid 'To' number; 21612 'To' not reachable via SMS; 21614 'To' not a mobile number;
# 21635 'To' is a landline; 21610 the recipient replied STOP to this sender (sending it elsewhere would
# circumvent the opt-out, so it is final too).
BAD_NUMBER_CODES = frozenset({21211, 21610, 21612, 21614, 21635})


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
        if reply.status == 400 and code in BAD_NUMBER_CODES:
            raise bad_number()
        if code == 20429:
            raise ProviderError(self.name, "throttled")
        raise self.failure_for_status(reply.status)
