"""Twilio Programmable Messaging: create one Message resource, and read its signed status callbacks.

Reference: https://www.twilio.com/docs/messaging/api/message-resource (Create a Message resource),
https://www.twilio.com/docs/api/errors (error codes) and https://www.twilio.com/docs/usage/security
(request signatures).

Request: ``POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP Basic auth
(Account SID : Auth Token), ``application/x-www-form-urlencoded`` body with ``To``, ``Body``, ``From`` and/or
``MessagingServiceSid``, ``ProvideFeedback=true`` (the verify confirms the message with the Message Feedback
resource), and ``StatusCallback`` when the stack has a public callback URL. ``From`` is the
request's alphanumeric sender ID where Twilio allows one (not towards +1 numbers), else the configured number.

Replies: ``201 Created`` with the Message JSON (its ``sid`` is the message ID); errors are
``{"code", "message", "more_info", "status"}``. Codes that say the destination is invalid or cannot receive
SMS are a bad number. Codes that refuse the request's own sender ID, the text, or the destination's region
fail over without counting against the circuit (see :mod:`otp_core.sms.vendor`); everything else is this
provider failing.

Callbacks: Twilio posts the message's status, form-encoded, to the ``StatusCallback`` URL, signed with
``X-Twilio-Signature`` (base64 HMAC-SHA1, under the auth token, of the full URL followed by each POST parameter).
The challenge ID and the send number ride in that URL's query, so a callback cannot be redirected to another
challenge or send without breaking its signature. ``delivered`` and ``read`` are recorded as delivered,
``undelivered`` and ``failed`` as failed; every other status (``queued``, ``sending``, ``sent``...) is a progress
report and changes nothing.

Secret (``twilio``): ``{"accountSid", "authToken", "from"?, "messagingServiceSid"?}`` (``from`` or
``messagingServiceSid`` required).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import ClassVar
from urllib.parse import parse_qsl, quote, urlencode

from otp_core.observability import logger, tracer
from otp_core.records import OutgoingSms, SentSms, is_challenge_id
from otp_core.sms.callbacks import (
    CallbackRequest,
    DeliveryCallback,
    DeliveryReport,
    bad_signature,
    strict_token,
)
from otp_core.sms.http import TransportError, form_body, post
from otp_core.sms.vendor import (
    ProviderError,
    VendorSender,
    bad_number,
    basic_auth,
    rejected_content,
    rejected_destination,
    sender_for,
    uses_request_sender,
)

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

SIGNATURE_HEADER = "X-Twilio-Signature"
# Twilio's final statuses; the others (queued, sending, sent, ...) are progress reports.
OUTCOMES = {"delivered": "delivered", "read": "delivered", "undelivered": "failed", "failed": "failed"}
# Base64 of a 20-byte SHA-1 digest is 28 characters; the cap only bounds what is compared.
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{1,64}={0,2}")
# A send number as this service writes it into the callback URL, and a Message SID.
_SEND = re.compile(r"(0|[1-9][0-9]{0,5})")
_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-f]{32}")
# Twilio's status callbacks carry about twenty fields; a body with far more cannot be one.
_MAX_FORM_FIELDS = 100


class TwilioSender(VendorSender):
    """Sends through Twilio's Messages resource."""

    name: ClassVar[str] = "twilio"
    default_base_url: ClassVar[str] = "https://api.twilio.com"

    @tracer.capture_method(capture_response=False)
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
            form["StatusCallback"] = twilio_callback_url(self._config.callback_base_url, sms.challenge_id, sms.send)
        # Lets the verify confirm the message with the Message Feedback API (conversion feedback).
        form["ProvideFeedback"] = "true"

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

    def feedback(self, message_id: str, timeout: float = 1.0) -> bool:
        """Confirm that ``message_id`` converted (its code was verified): ``Outcome=confirmed`` to the Message
        Feedback resource. Best effort: False on any failure, never an exception.

        Reference: https://www.twilio.com/docs/messaging/api/message-feedback-resource
        """
        if not _MESSAGE_SID.fullmatch(message_id):
            return False
        try:
            credentials = self.credentials()
            account_sid = self.required(credentials, "accountSid")
            auth_token = self.required(credentials, "authToken")
            account, message = quote(account_sid, safe=""), quote(message_id, safe="")
            reply = post(
                f"{self.base_url}/2010-04-01/Accounts/{account}/Messages/{message}/Feedback.json",
                body=form_body({"Outcome": "confirmed"}),
                headers={
                    "Authorization": basic_auth(account_sid, auth_token),
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                timeout=timeout,
            )
        except (ProviderError, TransportError) as exc:
            logger.warning("conversion feedback failed", provider=self.name, reason=type(exc).__name__)
            return False
        if reply.status not in (200, 201):
            logger.warning("conversion feedback refused", provider=self.name, status=reply.status)
            return False
        return True


def twilio_callback_url(base_url: str, challenge_id: str, send: int | None = None) -> str:
    """The StatusCallback URL for one send of a challenge (the challenge ID and the send number in the query,
    which Twilio signs)."""
    return f"{base_url.rstrip('/')}/v1/delivery-status/twilio?{_callback_query(challenge_id, send)}"


def _callback_query(challenge_id: str, send: int | None) -> str:
    fields = {"challengeId": challenge_id} if send is None else {"challengeId": challenge_id, "send": str(send)}
    return urlencode(fields)


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 of the full URL followed by each POST parameter.

    Parameters are sorted by name and each name is directly followed by its value, as Twilio's helper
    libraries do (repeated names contribute each distinct value, sorted).
    """
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio(auth_token: str, *, url: str, params: Iterable[tuple[str, str]], signature: str | None) -> bool:
    """Check an ``X-Twilio-Signature`` header against the URL Twilio called and the form it posted.

    Twilio signatures carry no timestamp, so a captured callback could be posted again; that is harmless (a
    replay writes the outcome already recorded, for the same message ID). False for anything malformed, never
    an error.
    """
    presented = strict_token(signature, _SIGNATURE)
    if not auth_token or presented is None:
        return False
    try:
        expected = twilio_signature(auth_token, url, params)
    except UnicodeEncodeError:
        # A lone surrogate in the body or the URL (possible in an event's JSON) has no UTF-8 form: it cannot
        # be what Twilio signed.
        return False
    return hmac.compare_digest(expected.encode("ascii"), presented.encode("ascii"))


class TwilioCallback(DeliveryCallback):
    """Reads Twilio's status callbacks, verified with the account's auth token."""

    credential: ClassVar[str] = "authToken"

    def read(self, request: CallbackRequest, credential: str) -> DeliveryReport | None:
        query = request.query_values("challengeId", optional=("send",))
        challenge_id = query.get("challengeId") if query is not None else None
        if query is None or challenge_id is None or not is_challenge_id(challenge_id):
            # Only URLs this service generated are signed, and each carries a challenge ID it generated.
            raise bad_signature()
        sent = query.get("send")
        send = int(sent) if sent is not None and _SEND.fullmatch(sent) else None
        if sent is not None and send is None:
            raise bad_signature()
        params = _form(request.signed_body())
        if self._config.base_url:
            url = twilio_callback_url(self._config.base_url, challenge_id, send)
        else:
            # No public base URL configured: Twilio signed the URL this request came in on.
            url = f"{request.url()}?{_callback_query(challenge_id, send)}"
        if not verify_twilio(credential, url=url, params=params, signature=request.header(SIGNATURE_HEADER)):
            raise bad_signature()

        form: dict[str, list[str]] = {}
        for name, value in params:
            form.setdefault(name, []).append(value)
        statuses, sids = form.get("MessageStatus", []), form.get("MessageSid", [])
        outcome = OUTCOMES.get(statuses[0]) if len(statuses) == 1 else None
        if outcome is None or len(sids) > 1:
            # Progress reports, and anything Twilio does not send (a repeated status or SID), change nothing.
            return None
        return DeliveryReport(challenge_id, sids[0] if sids and sids[0] else None, outcome, send)


def _form(body: bytes) -> list[tuple[str, str]]:
    """The form Twilio posted, as (name, value) pairs in order.

    Raises
    ------
    UnauthorizedError
        The body is not UTF-8 or has more fields than a status callback: it cannot be one Twilio signed.
    """
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except ValueError as exc:  # UnicodeDecodeError included
        raise bad_signature() from exc


SENDER = TwilioSender
CALLBACK = TwilioCallback
