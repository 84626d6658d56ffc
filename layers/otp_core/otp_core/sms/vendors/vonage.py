"""Vonage (Nexmo) SMS API: send one SMS, and read its signed delivery receipts.

Reference: https://developer.vonage.com/messaging/sms/code-snippets/send-an-sms (request),
https://developer.vonage.com/messaging/sms/guides/troubleshooting-sms and
https://developer.vonage.com/api-errors/sms (the ``status`` codes),
https://developer.vonage.com/messaging/sms/guides/delivery-receipts (the receipts) and
https://developer.vonage.com/getting-started/concepts/signing-messages (their signature).

Request: ``POST https://rest.nexmo.com/sms/json``, HTTP Basic auth (API key : API secret) as in Vonage's
example, ``application/x-www-form-urlencoded`` body with ``from``, ``to`` (E.164 digits without ``+``), ``text``,
``client-ref`` and ``type=unicode`` when the text is not plain GSM 03.38 (otherwise the handset would show it
garbled). ``from`` is the request's alphanumeric sender ID where allowed, else the configured sender. When the
stack has a public callback URL, ``client-ref`` is ``<challengeId>:<send>`` and ``callback`` is
``<base>/v1/delivery-status/vonage`` (the per-message receipt URL, which overrides the dashboard's; Vonage takes
at most 100 characters there, so a longer one is left out and receipts go to the dashboard's URL); otherwise
``client-ref`` is the challenge ID.

Replies: ``200`` with ``{"message-count", "messages": [{"status", "message-id", ...}]}``. A ``status`` other than
``"0"`` is an error even with HTTP 200: 6 (unrecognised number prefix), 7 (number barred) and 33 (number
de-activated) are a bad number; 1 (throttled), 5 (internal error) and 10 (too many binds) are transient;
12 (message too long) and 15 (invalid sender address, when it was the request's sender ID) refuse this
request and do not count against the circuit; every other code is a configuration or account problem at
Vonage. All but the bad-number codes fail over.

Receipts: Vonage sends each delivery receipt (DLR) as the dashboard's webhook format says: ``GET`` (query
parameters), ``POST`` (form body) or ``POST-JSON`` (a JSON object of strings). The delivery-status route takes
``POST``, so choose ``POST`` or ``POST-JSON``; all three are read. The fields are ``msisdn``, ``to``,
``network-code``, ``messageId``, ``price``, ``status``, ``scts``, ``err-code``, ``api-key``, ``client-ref``,
``message-timestamp`` and, with signed webhooks (enabled by Vonage support), ``timestamp``, ``nonce`` and ``sig``.
``sig`` is the hex signature, under the account's *signature secret* (not the API secret), of ``&name=value`` for
every other parameter in name order, each value with ``&`` and ``=`` replaced by ``_``: ``md5hash`` (the default)
is MD5 of that text followed by the secret, ``sha256``/``sha512`` its HMAC under the secret. A receipt is
refused unless it carries a correct signature and a ``timestamp`` within ``delivery_callback_tolerance_seconds``
of this service's clock. ``delivered`` is recorded as delivered; ``expired``, ``failed`` and ``rejected`` as
failed; ``accepted``, ``buffered``, ``unknown`` (and anything else) are progress and change nothing. The signed
``client-ref`` names the challenge and the send.

Secret (``vonage``): ``{"apiKey", "apiSecret", "from", "signatureSecret"?, "signatureMethod"?}``.
``signatureSecret`` (Dashboard, API settings) verifies the receipts; without it the stack has no Vonage receipt
route. ``signatureMethod`` is the dashboard's choice, ``md5hash`` (default), ``sha256`` or ``sha512``
(HMAC); :meth:`VonageCallback.read` holds a receipt to it when given it, and otherwise (the delivery-status use
case passes only the credential) tells the three apart by the signature's length (32, 64 or 128 hex digits).
Vonage's MD5 HMAC and SHA-1 HMAC methods are not supported.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl

from otp_core.errors import InvalidRequestError
from otp_core.observability import logger, tracer
from otp_core.records import OutgoingSms, SentSms, is_challenge_id
from otp_core.sms.callbacks import (
    DEFAULT_TOLERANCE_SECONDS,
    CallbackRequest,
    DeliveryCallback,
    DeliveryReport,
    bad_signature,
    signed_json,
    strict_token,
)
from otp_core.sms.delivery import DELIVERED, FAILED
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

CALLBACK_PATH: Final = "/v1/delivery-status/vonage"
# The SMS API reference: "callback ... Max 100 characters".
MAX_CALLBACK_LENGTH: Final = 100
SIGNATURE_PARAM: Final = "sig"
TIMESTAMP_PARAM: Final = "timestamp"
MD5HASH: Final = "md5hash"
# The signature methods read here: md5hash (no HMAC) and the HMACs by their digest.
HMAC_DIGESTS: Final[Mapping[str, str]] = {"sha256": "sha256", "sha512": "sha512"}
SIGNATURE_METHODS: Final = frozenset({MD5HASH, *HMAC_DIGESTS})
# Hex digits of each method's signature; the length names the method when the configured one is not known.
_METHOD_BY_LENGTH: Final[Mapping[int, str]] = {32: MD5HASH, 64: "sha256", 128: "sha512"}
# Vonage's final statuses; the others (accepted, buffered, unknown) are progress reports.
OUTCOMES: Final[Mapping[str, str]] = {
    "delivered": DELIVERED,
    "expired": FAILED,
    "failed": FAILED,
    "rejected": FAILED,
}
MALFORMED_RECEIPT: Final = "the delivery receipt is malformed"

_SIGNATURE = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# DLR parameter names (msisdn, network-code, messageId, client-ref...): ASCII, so that sorting them here orders
# them as Vonage does.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Vonage message IDs: 16 hex digits ("0B00000127FDBC63"), or a UUID.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_SEND = re.compile(r"0|[1-9][0-9]{0,8}")
# A receipt has about fifteen parameters; a request with far more, or far larger, cannot be one.
_MAX_FIELDS = 50
_MAX_BODY_BYTES = 16 * 1024

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
        if self._config.callback_base_url:
            form["client-ref"] = vonage_client_ref(sms.challenge_id, sms.send)
            callback = vonage_callback_url(self._config.callback_base_url)
            if len(callback) <= MAX_CALLBACK_LENGTH:
                form["callback"] = callback
            else:
                logger.warning("vonage callback URL over 100 characters, left out", length=len(callback))
        else:
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


def vonage_callback_url(base_url: str) -> str:
    """The per-message ``callback`` URL (no query: the signed ``client-ref`` carries the challenge)."""
    return f"{base_url.rstrip('/')}{CALLBACK_PATH}"


def vonage_client_ref(challenge_id: str, send: int) -> str:
    """The ``client-ref`` of one send of a challenge, which Vonage returns, signed, in its receipts."""
    return f"{challenge_id}:{send}"


def vonage_signature(secret: str, params: Mapping[str, str], method: str = MD5HASH) -> str:
    """Vonage's request signature (lower-case hex) of ``params`` (``sig`` excluded) under the signature secret.

    The signed text is ``&name=value`` for each parameter in name order, with ``&`` and ``=`` in the values
    replaced by ``_``; ``md5hash`` is MD5 of that text followed by the secret, the others HMAC under the secret.

    Raises
    ------
    ValueError
        ``method`` is not one of :data:`SIGNATURE_METHODS`.
    UnicodeEncodeError
        A value or the secret has no UTF-8 form (a lone surrogate).
    """
    text = "".join(
        f"&{name}={params[name].replace('&', '_').replace('=', '_')}"
        for name in sorted(params)
        if name != SIGNATURE_PARAM
    )
    data, key = text.encode("utf-8"), secret.encode("utf-8")
    if method == MD5HASH:
        # Vonage's default method: MD5 is its scheme (not a choice made here), keyed by the secret it appends.
        return hashlib.md5(data + key).hexdigest()  # noqa: S324
    if method not in HMAC_DIGESTS:
        raise ValueError(f"unsupported Vonage signature method: {method}")
    return hmac.new(key, data, HMAC_DIGESTS[method]).hexdigest()


def verify_vonage(
    secret: str,
    params: Mapping[str, str],
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    method: str | None = None,
) -> bool:
    """Check a receipt's ``sig`` and the freshness of its ``timestamp``.

    Parameters
    ----------
    secret:
        The account's signature secret.
    params:
        Every parameter of the receipt, ``sig`` included, one value each.
    now:
        Current epoch seconds.
    tolerance_seconds:
        How far ``timestamp`` may be from ``now``, either way; older receipts are treated as replays.
    method:
        The account's signature method; None to take the one the signature's length names.

    Returns
    -------
    bool
        True only for a fresh, correctly signed receipt; False for anything else, never an error.
    """
    signature = strict_token(params.get(SIGNATURE_PARAM), _SIGNATURE)
    timestamp = strict_token(params.get(TIMESTAMP_PARAM), _TIMESTAMP)
    if not secret or signature is None or timestamp is None:
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    method = method if method is not None else _METHOD_BY_LENGTH[len(signature)]
    if method not in SIGNATURE_METHODS:
        return False
    try:
        expected = vonage_signature(secret, params, method)
    except UnicodeEncodeError:
        # A lone surrogate (possible in a query or JSON value) has no UTF-8 form: it cannot be what Vonage signed.
        return False
    return hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("ascii"))


class VonageCallback(DeliveryCallback):
    """Reads Vonage's delivery receipts, verified with the account's signature secret and the timestamp."""

    credential: ClassVar[str] = "signatureSecret"
    signature_method_field: ClassVar[str | None] = "signatureMethod"

    def read(
        self, request: CallbackRequest, credential: str, signature_method: str | None = None
    ) -> DeliveryReport | None:
        """The receipt's outcome; None for a progress status.

        ``signature_method`` is the secret's ``signatureMethod`` when the caller has it: the receipt must then be
        signed with that method (an unknown one refuses every receipt).

        Raises
        ------
        UnauthorizedError
            The receipt is not one Vonage signed with ``credential``, or its timestamp is missing or too old.
        InvalidRequestError
            It is signed, but its ``client-ref`` names no send of a challenge this service could have issued, or
            its ``messageId`` is not a Vonage message ID.
        """
        params = _dlr_params(request)
        valid = verify_vonage(
            credential,
            params,
            now=self._config.clock.now(),
            tolerance_seconds=self._config.tolerance_seconds,
            method=signature_method,
        )
        if not valid:
            raise bad_signature()

        status = params.get("status")
        outcome = OUTCOMES.get(status) if status is not None else None
        if outcome is None:
            # Progress reports (accepted, buffered, unknown) and statuses Vonage may add change nothing.
            return None
        challenge_id, send = _client_ref(params.get("client-ref"))
        message_id = params.get("messageId")
        if message_id is not None and not _MESSAGE_ID.fullmatch(message_id):
            raise InvalidRequestError(MALFORMED_RECEIPT)
        return DeliveryReport(challenge_id, message_id, outcome, send)


def _dlr_params(request: CallbackRequest) -> dict[str, str]:
    """A receipt's parameters, one string each: the query of a GET, else the form or JSON object posted.

    Raises
    ------
    UnauthorizedError
        Parameters in both the query and the body, or in neither; a repeated or oddly named parameter; a value
        that is not one string; a body that is not UTF-8, too large, or not a form or JSON object of strings:
        none of them can be a receipt Vonage signed.
    """
    body = request.signed_body()
    if request.query:
        if body:
            raise bad_signature()
        return _unique(_query_pairs(request.query))
    if not body or len(body) > _MAX_BODY_BYTES:
        raise bad_signature()
    if body.lstrip()[:1] == b"{":
        return _unique(_json_pairs(body))
    return _unique(_form_pairs(body))


def _query_pairs(query: Mapping[object, object]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, values in query.items():
        if not isinstance(name, str) or not isinstance(values, list):
            raise bad_signature()
        for value in values:
            if not isinstance(value, str):
                raise bad_signature()
            pairs.append((name, value))
    return pairs


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=_MAX_FIELDS)
    except ValueError as exc:  # UnicodeDecodeError, a malformed pair, too many fields
        raise bad_signature() from exc


def _json_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        document = signed_json(body)
    except (ValueError, RecursionError) as exc:  # not UTF-8 or JSON, a repeated name, deep nesting
        raise bad_signature() from exc
    if not isinstance(document, dict):
        raise bad_signature()
    pairs: list[tuple[str, str]] = []
    for name, value in document.items():
        if not isinstance(value, str):
            # Vonage's JSON receipts hold strings only; a number or object would be signed in a form unknown here.
            raise bad_signature()
        pairs.append((name, value))
    return pairs


def _unique(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The parameters by name, each given once under an ASCII name (a repeated one is ambiguous)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params or not _NAME.fullmatch(name) or len(params) >= _MAX_FIELDS:
            raise bad_signature()
        params[name] = value
    return params


def _client_ref(value: str | None) -> tuple[str, int | None]:
    """The challenge ID and send a signed ``client-ref`` names (a bare challenge ID predates the send).

    Raises
    ------
    InvalidRequestError
        It names no send of a challenge this service could have issued.
    """
    challenge_id, separator, send = (value or "").partition(":")
    if not is_challenge_id(challenge_id) or (separator and not _SEND.fullmatch(send)):
        raise InvalidRequestError(MALFORMED_RECEIPT)
    return challenge_id, int(send) if separator else None


SENDER = VonageSender
CALLBACK = VonageCallback
