"""Twilio Verify v2 over this service's challenges: the four routes twilio-python calls for SMS.

``POST /Services/{ServiceSid}/Verifications`` starts a verification (or, for a number with one pending, sends
its code again, as Twilio does), ``GET`` and ``POST …/Verifications/{Sid}`` read and cancel one, and ``POST
…/VerificationCheck`` checks a code, by verification SID or by number. Bodies are form-encoded, answers are
Twilio's JSON resources and errors Twilio's ``{"code", "message", "more_info", "status"}`` with its numeric codes,
so twilio-python raises the ``TwilioRestException`` (``.code``, ``.status``) an integration already handles.

No rule lives here. A verification is one of the core's challenges (``VE`` + the challenge ID's 32 hex digits),
started, resent and checked by :class:`~otp_core.service.ChallengeStarter` and
:class:`~otp_core.service.CodeChecker` under the app's policy, so attempts, expiry, single use, the send caps
and cooldown, the lockout, the fraud and spend guards, test numbers and the app's isolation hold exactly as on
the native API. The pending verification of a number is found again through the core's pointer (a keyed,
opaque ``PTR#`` item written with the challenge, as signed-in phone verification does), and a cancel is the
core's one conditional write (:meth:`~otp_core.service.ChallengeRecords.cancel`).

What Twilio lets a caller choose and this service refuses, because it would weaken a rule: ``CustomCode`` (a
caller-chosen code), ``Status=approved`` (approving without a code skips the verification) and
``RiskCheck=disable`` (the fraud guard holds for every send). Every other field Twilio documents and this
service has no use for (``Amount``, ``Payee``, ``RateLimits``, ``TemplateSid``, ``CustomMessage``...) is ignored,
as unknown fields are.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

from otp_core.apps import KeyGrant
from otp_core.errors import (
    ConflictError,
    DeliveryFailedError,
    DependencyError,
    DestinationBlockedError,
    ForbiddenError,
    InvalidMessageTemplateError,
    InvalidPhoneNumberError,
    InvalidRequestError,
    NotFoundError,
    OtpError,
    RateLimitedError,
    UnauthorizedError,
    UnsupportedCountryError,
    UnsupportedNumberTypeError,
)
from otp_core.http import basic_credentials
from otp_core.messages import app_template, check_app_name, check_template
from otp_core.observability import logger
from otp_core.ports import IdentityRepository
from otp_core.records import Challenge, ChallengeLink, ChallengeState, is_challenge_id
from otp_core.service import ChallengeRecords, ChallengeStarter, CodeChecker, NewChallenge
from otp_core.settings import Policy
from otp_core.timefmt import rfc3339

# What the core records as the challenge's action: the facade sees only its own challenges.
ACTION: Final = "twilioVerify"
SMS: Final = "sms"
# Twilio's other channels: this service sends SMS only.
OTHER_CHANNELS: Final = frozenset({"call", "whatsapp", "email", "sna", "auto", "rcs", "totp", "voice"})
FORM: Final = "application/x-www-form-urlencoded"
MORE_INFO: Final = "https://www.twilio.com/docs/errors/{code}"
_SID = re.compile(r"(?P<prefix>VA|AC|VE)(?P<hex>[0-9a-f]{32})")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# The Android SMS Retriever hash, as the app setting androidAppHash takes it (otp_core.settings.Policy).
_APP_HASH = re.compile(r"[A-Za-z0-9+/]{11}")
# The Locale field, as the native API's locale (otp_core.models.base.Locale).
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{1,8}){0,4}")
_CODE = re.compile(r"[0-9]{4,10}")
_MAX_FIELDS = 64
# The form fields this module reads: a repeated one is named in the error, any other is not echoed.
_KNOWN_FIELDS = frozenset(
    {
        "To",
        "Channel",
        "Locale",
        "CustomFriendlyName",
        "CustomCode",
        "AppHash",
        "DeviceIp",
        "RiskCheck",
        "Status",
        "Code",
        "VerificationSid",
    }
)


# -- answers and errors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwilioAnswer:
    """One HTTP answer in Twilio's shape: a JSON resource, or an error document."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class TwilioError(Exception):
    """An error as Twilio answers it: HTTP status, numeric code, message (never a value of the request)."""

    def __init__(self, status: int, code: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def answer(self) -> TwilioAnswer:
        body = {"code": self.code, "message": self.message, "more_info": MORE_INFO.format(code=self.code)}
        return TwilioAnswer(self.status, {**body, "status": self.status}, self.headers)


def invalid(parameter: str, why: str | None = None) -> TwilioError:
    """Twilio's 60200: the message names the parameter, as Twilio's does (``Invalid parameter: To``)."""
    return TwilioError(400, 60200, f"Invalid parameter: {parameter}" + (f" ({why})" if why else ""))


def unauthorized() -> TwilioError:
    """Twilio's 401: never which of the account SID, the key or the Service SID was wrong."""
    return TwilioError(401, 20003, "Authenticate", headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})


def not_found() -> TwilioError:
    """Twilio's 404 (20404): an unknown, another app's, approved, canceled or expired verification."""
    return TwilioError(404, 20404, "The requested resource was not found")


def internal_error() -> TwilioError:
    return TwilioError(500, 20500, "Internal Server Error")


def _retry(error: RateLimitedError) -> dict[str, str]:
    return {"Retry-After": str(error.retry_after)}


def twilio_error(error: OtpError, *, checking: bool = False) -> TwilioError:
    """The Twilio error of a core error (``checking``: it came from a code check, whose limits are Twilio's
    check attempts, not its send attempts)."""
    if isinstance(error, RateLimitedError):
        if checking:
            # The number's lockout: Twilio's answer to more checks than it allows.
            return TwilioError(429, 60202, "Max check attempts reached", headers=_retry(error))
        # The per-number and per-IP caps, the resend cooldown, a lockout and the SMS budgets.
        return TwilioError(429, 60203, "Max send attempts reached", headers=_retry(error))
    if isinstance(error, DestinationBlockedError):
        return TwilioError(403, 60410, "Verification delivery attempt blocked")
    if isinstance(error, UnsupportedCountryError):
        return TwilioError(403, 60605, "Verification delivery attempt blocked (this country is not allowed)")
    if isinstance(error, UnsupportedNumberTypeError):
        return TwilioError(403, 60205, "SMS is not supported by this phone number's type")
    if isinstance(error, InvalidPhoneNumberError):
        return invalid("To", error.detail)
    if isinstance(error, InvalidRequestError | InvalidMessageTemplateError):
        fields = ", ".join(sorted({problem.field for problem in error.errors}))
        return invalid("Code" if checking else (fields or "request"), error.detail)
    if isinstance(error, DeliveryFailedError):
        # Twilio's "Downstream Carrier Error": every provider failed; nothing was charged to the caller's caps.
        return TwilioError(502, 60005, "Downstream Carrier Error: the SMS could not be sent; try again")
    if isinstance(error, ConflictError):
        # Two requests changed the same verification at once (a resend raced another).
        return TwilioError(429, 60212, "Too many concurrent requests for phone number")
    if isinstance(error, NotFoundError):
        return not_found()
    if isinstance(error, UnauthorizedError):
        return unauthorized()
    if isinstance(error, ForbiddenError):
        return TwilioError(403, 20403, "Forbidden")
    if isinstance(error, DependencyError):
        return TwilioError(503, 20503, "Service Unavailable: retry later")
    return internal_error()


# -- requests ----------------------------------------------------------------------------------------------


def parse_form(body: str | None, content_type: str | None) -> dict[str, str]:
    """A form-encoded body (UTF-8, ``&``-separated ``name=value`` pairs), strictly.

    Raises
    ------
    TwilioError
        60200 for another media type, a malformed pair, bytes that are not UTF-8 once percent-decoded, a
        field given twice, or more fields than any request of these routes has.
    """
    if content_type is not None and content_type.split(";")[0].strip().lower() != FORM:
        raise invalid("Content-Type", f"the body must be {FORM}")
    if not body:
        return {}
    try:
        pairs = parse_qsl(
            body,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FIELDS,
            separator="&",
        )
    except ValueError:  # UnicodeDecodeError is one; the messages quote the body, so they are not passed on
        raise invalid("body", "not a valid UTF-8 form-encoded body") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise invalid(name if name in _KNOWN_FIELDS else "body", "given more than once")
        form[name] = value
    return form


def _sid_digits(sid: str, prefix: str) -> str | None:
    matched = _SID.fullmatch(sid)
    return matched["hex"] if matched and matched["prefix"] == prefix else None


@dataclass(frozen=True)
class Service:
    """The Verify Service a request names (an app), as its answers name it."""

    service_sid: str
    account_sid: str
    # Where its resources live: ``<base>/twilio/v2/Services/<sid>`` (relative when the base is unknown).
    url: str


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the app, its policy and its Service."""

    app_id: str
    policy: Policy
    service: Service


class TwilioCredentials:
    """HTTP Basic as twilio-python sends it: the app's account SID as user name, one of the app's API keys as
    password, and the app's own Service SID in the path.

    Parameters
    ----------
    app_of_sid:
        The app whose Twilio SIDs have these 32 hex digits (None: no app's).
    identify:
        What a presented key is (``otp_core.app_admin.KeyAuthority.identify``: its digest looked up, the admin
        key compared in constant time); only an app key's grant opens these routes.
    policy:
        The app's policy (UnauthorizedError: the app was deleted).
    """

    def __init__(
        self,
        app_of_sid: Callable[[str], str | None],
        identify: Callable[[str], object],
        policy: Callable[[str], Policy],
    ) -> None:
        self._app_of_sid = app_of_sid
        self._identify = identify
        self._policy = policy

    def authenticate(self, authorization: str | None, service_sid: str, base_url: str) -> Caller:
        """The app of a request, or Twilio's 401 whatever part was wrong.

        Raises
        ------
        TwilioError
            401 (20003): no or malformed credentials, an unknown or revoked key, another app's key or account
            SID, a Service SID that is not the account's, or a deleted app.
        """
        credentials = basic_credentials(authorization)
        if credentials is None:
            raise unauthorized()
        account_sid, secret = credentials
        service_digits, account_digits = _sid_digits(service_sid, "VA"), _sid_digits(account_sid, "AC")
        if service_digits is None or account_digits is None or not secret:
            raise unauthorized()
        # Both lookups run whatever the other found, so the time taken says no more than the answer does.
        grant = self._identify(secret)
        app_id = self._app_of_sid(service_digits)
        same_sid = hmac.compare_digest(service_digits, account_digits)
        if not same_sid or app_id is None or not isinstance(grant, KeyGrant):
            raise unauthorized()
        if not hmac.compare_digest(grant.app_id.encode(), app_id.encode()):
            raise unauthorized()
        try:
            policy = self._policy(app_id)
        except UnauthorizedError:
            raise unauthorized() from None
        url = f"{base_url}/twilio/v2/Services/{service_sid}"
        return Caller(app_id, policy, Service(service_sid, account_sid, url))


# -- the use case ----------------------------------------------------------------------------------------------


class TwilioVerify:
    """The four routes over one app's use cases.

    Parameters
    ----------
    starter, checker, records:
        The app's challenge use cases (sending, checking, reading and cancelling).
    identities:
        Where the pointers to pending verifications are read.
    pointer_key:
        The keyed, opaque pointer key of a number's pending verification (one per app and number).
    """

    def __init__(
        self,
        starter: ChallengeStarter,
        checker: CodeChecker,
        records: ChallengeRecords,
        identities: IdentityRepository,
        pointer_key: Callable[[str], str],
    ) -> None:
        self._starter = starter
        self._checker = checker
        self._records = records
        self._identities = identities
        self._pointer_key = pointer_key

    # -- routes

    def create(self, caller: Caller, form: Mapping[str, str]) -> TwilioAnswer:
        """``POST …/Verifications``: send a code to ``To`` (201), or again to its pending verification."""
        to = _required(form, "To")
        channel = _required(form, "Channel")
        if channel != SMS:
            raise invalid("Channel", "only sms is available here" if channel in OTHER_CHANNELS else "unknown channel")
        if form.get("CustomCode"):
            raise invalid("CustomCode", "a code the caller chooses is refused: this service draws every code")
        if form.get("RiskCheck") == "disable":
            raise invalid("RiskCheck", "the fraud guard cannot be turned off for a request")
        locale = _optional(form, "Locale")
        if locale is not None and not _LOCALE.fullmatch(locale):
            raise invalid("Locale", "a BCP 47 language tag such as es or pt-BR")
        device_ip = _device_ip(_optional(form, "DeviceIp"))
        policy = caller.policy
        key = self._pointer_key(to)
        new = NewChallenge(to, ACTION, locale=locale, ip_address=device_ip, link=ChallengeLink(None, pointer_key=key))
        try:
            # The number's checks hold for a resend too (a policy change since the first send counts).
            self._starter.check(new, policy)
            pending = self._pending(self._identities.get_pointer(key))
            message_policy = _message_policy(policy, form, pending.locale if pending else locale)
            challenge = self._resend(pending, message_policy) if pending else None
            if challenge is None:
                challenge = self._starter.start(new, message_policy)
        except OtpError as error:
            raise twilio_error(error) from None
        return TwilioAnswer(201, self._verification(caller, challenge, "pending"))

    def fetch(self, caller: Caller, sid: str) -> TwilioAnswer:
        """``GET …/Verifications/{Sid}`` (a verification SID, or the number of its pending verification)."""
        try:
            challenge = self._named(sid)
        except OtpError as error:
            raise twilio_error(error) from None
        status = self._status(challenge)
        if challenge is None or status not in ("pending", "max_attempts_reached"):
            raise not_found()
        return TwilioAnswer(200, self._verification(caller, challenge, status))

    def update(self, caller: Caller, sid: str, form: Mapping[str, str]) -> TwilioAnswer:
        """``POST …/Verifications/{Sid}`` with ``Status=canceled``: the code stops working at once."""
        status = _required(form, "Status")
        if status == "approved":
            raise invalid(
                "Status",
                "approving without a code would skip the verification; check the code with VerificationCheck",
            )
        if status != "canceled":
            raise invalid("Status", "canceled is the only status a verification can be given")
        try:
            challenge = self._named(sid)
            cancelled = self._records.cancel(challenge.challenge_id) if challenge is not None else None
        except OtpError as error:
            raise twilio_error(error) from None
        if cancelled is None:
            raise not_found()  # approved, canceled, expired, exhausted or never this app's
        return TwilioAnswer(200, self._verification(caller, cancelled, "canceled"))

    def check(self, caller: Caller, form: Mapping[str, str]) -> TwilioAnswer:
        """``POST …/VerificationCheck``: check ``Code`` of the verification ``VerificationSid`` or ``To`` names."""
        code = _required(form, "Code")
        if not _CODE.fullmatch(code):
            raise invalid("Code", "4 to 10 digits")
        sid, to = _optional(form, "VerificationSid"), _optional(form, "To")
        if sid is None and to is None:
            raise invalid("To", "give To or VerificationSid")
        if sid is not None and _sid_digits(sid, "VE") is None:
            raise not_found()
        if sid is None and to is not None and not _E164.fullmatch(to):
            raise invalid("To", "an E.164 number such as +14155552671")
        try:
            challenge = self._named(sid if sid is not None else str(to))
        except OtpError as error:
            raise twilio_error(error) from None
        if challenge is None or (to is not None and challenge.phone_number != to):
            raise not_found()
        status = self._status(challenge)
        if status == "max_attempts_reached":
            raise TwilioError(429, 60202, "Max check attempts reached")
        if status != "pending":
            raise not_found()
        try:
            checked = self._checker.check_code(challenge.challenge_id, code, caller.policy)
        except OtpError as error:
            raise twilio_error(error, checking=True) from None
        if checked.verified:
            outcome = "approved"
        elif checked.failure_reason == "MAX_ATTEMPTS_EXCEEDED":
            raise TwilioError(429, 60202, "Max check attempts reached")
        elif checked.challenge is None or checked.challenge.state_at(self._records.now()) is not ChallengeState.PENDING:
            raise not_found()
        elif checked.attempts_remaining > 0:
            outcome = "pending"  # a wrong code, as Twilio answers it
        else:
            # The last allowed wrong code, or a concurrent request finished it first: the store tells which.
            outcome = self._after_last_attempt(challenge.challenge_id)
        return TwilioAnswer(200, self._check_resource(caller, challenge, outcome))

    # -- finding verifications

    def _named(self, sid: str) -> Challenge | None:
        """The verification a path or a check names: ``VE`` + 32 hex, or a number's pending one; only this
        facade's challenges of this app (another app's, or a native challenge, is as good as unknown)."""
        try:
            name = unquote(sid, errors="strict")
        except UnicodeDecodeError:
            return None
        digits = _sid_digits(name, "VE")
        if digits is not None:
            challenge_id = str(uuid.UUID(hex=digits))
        elif _E164.fullmatch(name):
            found = self._identities.get_pointer(self._pointer_key(name))
            if found is None:
                return None
            challenge_id = found
        else:
            return None
        challenge = self._starter.find(challenge_id) if is_challenge_id(challenge_id) else None
        return challenge if challenge is not None and challenge.action == ACTION else None

    def _pending(self, challenge_id: str | None) -> Challenge | None:
        """The number's verification the pointer names, while it is pending."""
        challenge = self._starter.find(challenge_id) if challenge_id else None
        return challenge if challenge is not None and self._status(challenge) == "pending" else None

    def _resend(self, pending: Challenge, policy: Policy) -> Challenge | None:
        """The pending verification's code sent again (cooldown, caps and guards apply), or None when it
        finished meanwhile (a new one is started instead, as Twilio does once a verification is gone)."""
        try:
            return self._starter.resend(pending.challenge_id, policy)
        except ConflictError:
            current = self._starter.find(pending.challenge_id)
            if current is not None and self._status(current) == "pending":
                raise  # it is still pending: another request resent it at the same moment
            return None

    def _after_last_attempt(self, challenge_id: str) -> str:
        current = self._starter.find(challenge_id)
        if current is not None and current.state_at(self._records.now()) is ChallengeState.FAILED:
            return "max_attempts_reached"
        raise not_found()

    def _status(self, challenge: Challenge | None) -> str:
        """Twilio's status of a challenge (what Twilio deletes, ``approved``, ``canceled``, ``expired``, is 404)."""
        if challenge is None:
            return "deleted"
        state = challenge.state_at(self._records.now())
        return {
            ChallengeState.PENDING: "pending",
            ChallengeState.FAILED: "max_attempts_reached",
            ChallengeState.VERIFIED: "approved",
            ChallengeState.CLAIMED: "approved",
        }.get(state, "expired")

    # -- resources

    def _verification(self, caller: Caller, challenge: Challenge, status: str) -> dict[str, Any]:
        """Twilio's Verification resource."""
        sid = verification_sid(challenge.challenge_id)
        now = self._records.now()
        sends = send_times(challenge, caller.policy.resend_cooldown_seconds, now)
        updated = challenge.verified_at if status == "approved" else now if status == "canceled" else None
        return {
            "sid": sid,
            "service_sid": caller.service.service_sid,
            "account_sid": caller.service.account_sid,
            "to": challenge.phone_number,
            "channel": SMS,
            "status": status,
            "valid": status == "approved",
            "lookup": {
                "carrier": {
                    "error_code": None,
                    "name": None,
                    "mobile_country_code": None,
                    "mobile_network_code": None,
                    "type": None,
                }
            },
            "amount": None,
            "payee": None,
            "send_code_attempts": [
                {
                    "attempt_sid": _attempt_sid(challenge.challenge_id, send),
                    "channel": SMS,
                    "time": rfc3339(at) if at is not None else None,
                }
                for send, at in enumerate(sends)
            ],
            "date_created": rfc3339(challenge.created_at),
            "date_updated": rfc3339(updated if updated is not None else _last(sends, challenge.created_at)),
            "sna": None,
            "url": f"{caller.service.url}/Verifications/{sid}",
        }

    def _check_resource(self, caller: Caller, challenge: Challenge, status: str) -> dict[str, Any]:
        """Twilio's VerificationCheck resource (its SID is the verification's)."""
        return {
            "sid": verification_sid(challenge.challenge_id),
            "service_sid": caller.service.service_sid,
            "account_sid": caller.service.account_sid,
            "to": challenge.phone_number,
            "channel": SMS,
            "status": status,
            "valid": status == "approved",
            "amount": None,
            "payee": None,
            "date_created": rfc3339(challenge.created_at),
            "date_updated": rfc3339(self._records.now()),
            "sna_attempts_error_codes": [],
        }


def verification_sid(challenge_id: str) -> str:
    """``VE`` and the challenge ID's 32 lower-case hex digits."""
    return "VE" + uuid.UUID(challenge_id).hex


def send_times(challenge: Challenge, cooldown_seconds: int, now: int) -> list[int | None]:
    """When each SMS of a challenge went out, as far as the core records it: the first at creation, the latest
    from the cooldown it started (``next_resend_at`` is that send's time plus the doubled cooldown); the core
    keeps no time of the sends between them (None)."""
    if challenge.resends == 0:
        return [challenge.created_at]
    latest = challenge.next_resend_at - cooldown_seconds * 2**challenge.resends
    latest = min(max(latest, challenge.created_at), now)
    return [challenge.created_at, *([None] * (challenge.resends - 1)), latest]


def _last(sends: list[int | None], default: int) -> int:
    known = [at for at in sends if at is not None]
    return known[-1] if known else default


def _attempt_sid(challenge_id: str, send: int) -> str:
    """A stable ``VL`` SID for one send of a challenge (nothing is stored for it)."""
    return "VL" + hashlib.sha256(f"{challenge_id}\x00{send}".encode()).hexdigest()[:32]


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise invalid(name, "required")
    return value


def _optional(form: Mapping[str, str], name: str) -> str | None:
    return form.get(name) or None  # an empty value is no value (twilio-python sends none for None)


def _device_ip(value: str | None) -> str | None:
    """``DeviceIp``: the end user's address, for the core's per-IP cap."""
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise invalid("DeviceIp", "an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise invalid("DeviceIp", "an IPv4 or IPv6 address")
    return str(address)


def _message_policy(policy: Policy, form: Mapping[str, str], locale: str | None) -> Policy:
    """The policy this message is rendered under: ``CustomFriendlyName`` as ``{app}`` and ``AppHash`` as the
    Android SMS Retriever hash, for this message only, when the message they make still fits one SMS part.

    Raises
    ------
    TwilioError
        60200: a name that is not 1-20 characters of the GSM 03.38 alphabet on one line, a hash that is not 11
        characters of ``[A-Za-z0-9+/]``, or a message that would no longer fit one part with them.
    """
    name, app_hash = _optional(form, "CustomFriendlyName"), _optional(form, "AppHash")
    if name is None and app_hash is None:
        return policy
    changes: dict[str, str] = {}
    if name is not None:
        try:
            check_app_name(name)
        except ValueError as exc:
            raise invalid("CustomFriendlyName", str(exc)) from None
        changes["app_name"] = name
    if app_hash is not None:
        if not _APP_HASH.fullmatch(app_hash):
            raise invalid("AppHash", "the app's 11-character hash")
        changes["android_app_hash"] = app_hash
    chosen = policy.model_copy(update=changes)
    try:
        check_template(
            app_template(chosen.templates, locale),
            app=chosen.app_name,
            code_length=chosen.code_length,
            minutes=max(1, math.ceil(chosen.code_ttl_seconds / 60)),
            android_app_hash=chosen.android_app_hash,
            web_otp_domain=chosen.web_otp_domain,
        )
    except InvalidMessageTemplateError:
        raise invalid(
            "AppHash" if app_hash is not None else "CustomFriendlyName",
            "the message would no longer fit one SMS part",
        ) from None
    return chosen


def serve(run: Callable[[], TwilioAnswer]) -> TwilioAnswer:
    """Run one route: its answer, or its error in Twilio's shape; anything unforeseen is a logged 500 that
    reveals nothing (the native routes' problem document would not be read by twilio-python)."""
    try:
        return run()
    except TwilioError as error:
        return error.answer()
    except OtpError as error:
        if error.status >= 500:
            logger.warning("request failed", code=error.code, cause=type(error.__cause__).__name__)
        return twilio_error(error).answer()
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)
        where = [f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}" for frame in frames[-5:]]
        logger.error("unhandled error", error_type=type(error).__name__, where=where)
        return internal_error().answer()
