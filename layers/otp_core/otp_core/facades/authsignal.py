"""The Authsignal facade: Authsignal's server and client APIs for SMS, at ``<base>/authsignal/v1``.

Existing integrations of the Authsignal SDKs (``authsignal`` for Python, ``@authsignal/node``, ``@authsignal/browser``
and the mobile SDKs) change their API URL and keep their code. This module reads their requests (the camelCase keys
the JavaScript SDKs send and the snake_case keys Python callers write), checks their credentials (HTTP Basic with an
API key of the app as user name and an empty password on server routes, ``Bearer <client token>`` on client routes),
calls the use cases of the core, and shapes the answers and errors as the SDKs parse them: exactly
``Content-Type: application/json``, errors ``{"error", "errorCode", "errorDescription"}`` (``@authsignal/node`` reads
``error``, ``authsignal`` for Python ``errorCode``, the browser SDK detects an error by the ``error`` key and calls
``onTokenExpired`` on ``errorCode: "expired_token"``).

It has no rule of its own: every request is validated by the native wire models and decided by the native use cases
(attempts, expiry, single use, send caps, lockout, fraud guard, budgets, apps, test numbers). What Authsignal offers
and this service does not (other factors, caller-chosen idempotency keys, skipping verification, changing a tracked
action's state, storing user attributes) is refused with a 400 that says so; unknown fields are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import unquote

from otp_core import http, runtime
from otp_core.errors import (
    FieldError,
    InvalidRequestError,
    NotFoundError,
    OtpError,
    UnauthorizedError,
)
from otp_core.observability import mask_phone
from otp_core.records import Authenticator, Challenge, TrackedAttempt, is_challenge_id
from otp_core.timefmt import rfc3339

if TYPE_CHECKING:
    from pydantic import BaseModel

    from otp_core.settings import Policy

    Model = TypeVar("Model", bound=BaseModel)

PREFIX: Final = "/authsignal/v1"
SMS: Final = "SMS"
JSON: Final = "application/json"
_NO_STORE: Final = {"Cache-Control": "no-store"}
# What a masked number shows: its last four digits, as every native answer (phoneMask), behind a fixed-width mask
# that tells nothing of the number's length.
_MASK: Final = "******"

# Authsignal's states of an action; this service's rules decide three of them, and a verified code a fourth.
ACTION_STATES: Final = frozenset(
    {
        "ALLOW",
        "BLOCK",
        "CHALLENGE_REQUIRED",
        "CHALLENGE_SUCCEEDED",
        "CHALLENGE_FAILED",
        "REVIEW_REQUIRED",
        "REVIEW_SUCCEEDED",
        "REVIEW_FAILED",
    }
)

# The errorCode of a native error code (the rest answer the native code in lower case).
_ERROR_CODES: Final = {
    "INVALID_REQUEST": "invalid_request",
    "INVALID_PHONE_NUMBER": "invalid_request",
    "UNSUPPORTED_COUNTRY": "invalid_request",
    "UNSUPPORTED_NUMBER_TYPE": "invalid_request",
    "INVALID_MESSAGE_TEMPLATE": "invalid_request",
    "UNAUTHORIZED": "unauthorized",
    "RATE_LIMITED": "too_many_requests",
    "SEND_BUDGET_EXCEEDED": "too_many_requests",
}
# Client routes: a refused client token is one to replace, and the browser SDK calls onTokenExpired on this code.
EXPIRED_TOKEN: Final = "expired_token"  # noqa: S105 - an error code, no secret

# The client routes of the other factors (their path segments), refused with a 400 that names the factor.
_CLIENT_FACTORS: Final = {
    "passkey": "PASSKEY",
    "security-key": "SECURITY_KEY",
    "totp": "AUTHENTICATOR_APP",
    "email-otp": "EMAIL_OTP",
    "email-magic-link": "EMAIL_MAGIC_LINK",
    "push": "PUSH",
    "qr-code": "QR_CODE",
    "whatsapp": "WHATSAPP",
    "device": "DEVICE",
    "web": "PASSKEY",
}

# A key in snake_case (lower-case words joined by single underscores), the Python callers' spelling of a field.
_SNAKE_CASE: Final = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
# A key an error may repeat: a field name, never arbitrary input.
_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

_VALIDATE_FAILURES: Final = {
    "TOKEN_INVALID_OR_EXPIRED": "the token is invalid or expired",
    "TOKEN_ALREADY_USED": "the token was already validated; a token validates once",
    "ACTION_MISMATCH": "the token is for another action",
    "CHALLENGE_NOT_COMPLETED": "the action's challenge was not completed",
    "USER_MISMATCH": "the token is for another user",
}


# ------------------------------------------------------------------------------------------------ answers


def answer(payload: Mapping[str, Any] | list[dict[str, Any]], status: int = 200) -> http.Response:
    """An Authsignal answer: JSON with exactly ``Content-Type: application/json`` (the Python SDK compares it)."""
    return http.Response(status, body=json.dumps(payload), content_type=JSON, headers=dict(_NO_STORE))


def error_body(code: str, description: str) -> dict[str, str]:
    """Authsignal's error shape; ``error`` repeats the code (``@authsignal/node`` reads it as the code)."""
    return {"error": code, "errorCode": code, "errorDescription": description}


def error_code(native: str, *, client: bool = False) -> str:
    """Authsignal's ``errorCode`` for a native error code."""
    if client and native == "UNAUTHORIZED":
        return EXPIRED_TOKEN
    return _ERROR_CODES.get(native, native.lower())


def authsignal_proxy(proxy: dict[str, Any], *, client: bool = False) -> dict[str, Any]:
    """Rewrite a problem response of the router (every error, unknown routes and bugs included) into
    Authsignal's error shape, keeping its status and headers (``Retry-After``, CORS, ``Cache-Control``).

    ``client``: a client route's answer, whose 401 is ``expired_token`` (on server routes it is ``unauthorized``,
    with a ``WWW-Authenticate: Basic`` challenge).
    """
    headers: dict[str, list[str]] = proxy.get("multiValueHeaders") or {}
    if headers.get("Content-Type", [None])[-1] != http.PROBLEM_JSON:
        return proxy
    try:
        problem = json.loads(proxy.get("body") or "{}")
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    found = problem.get("code")
    native = found if isinstance(found, str) else "INTERNAL_ERROR"
    description = str(problem.get("detail") or "the request failed")
    fields = problem.get("errors")
    if isinstance(fields, list) and fields:
        described = "; ".join(
            f"{item.get('field')}: {item.get('message')}" for item in fields if isinstance(item, dict)
        )
        description = f"{description} ({described})"
    status = int(proxy.get("statusCode") or 500)
    headers = dict(headers)
    headers["Content-Type"] = [JSON]
    if status == 401 and not client:
        headers["WWW-Authenticate"] = ['Basic realm="authsignal"']
    return {
        **proxy,
        "body": json.dumps(error_body(error_code(native, client=client), description)),
        "multiValueHeaders": headers,
    }


# ------------------------------------------------------------------------------------------------ requests


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__("a key is given twice")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of a repeated key silently: {"phoneNumber": A, "phoneNumber": B} would be B here
    # and, to a proxy or log that reads the first, A.
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKeyError(key)
        found[key] = value
    return found


def request_body(app: http.Router) -> dict[str, Any]:
    """The request's JSON object with camelCase keys (snake_case keys converted, ``null`` values dropped as the
    Python SDK drops them); no body is an empty object.

    Raises
    ------
    InvalidRequestError
        Not JSON (non-finite numbers and lone surrogates included), not an object, a key given twice in one object
        (at any depth), or one field twice (in both spellings) with two values.
    """
    text = http.request_text(app)
    if text is None or not text.strip():
        return {}
    try:
        document = http.loads_strict(text, object_pairs_hook=_unique_keys)
    except _DuplicateKeyError as exc:
        if _PLAIN_KEY.fullmatch(exc.key):
            raise InvalidRequestError(
                f"{exc.key} is given twice", errors=[FieldError(exc.key, "given twice")]
            ) from None
        raise InvalidRequestError("the request body gives a key twice in one object") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidRequestError("the request body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    return camel_keys(document)


def camel_keys(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with its top-level keys in camelCase (``phone_number`` -> ``phoneNumber``); nested objects
    (``custom``) keep theirs, since they are the caller's own data.

    Raises
    ------
    InvalidRequestError
        A field given in both spellings with different values.
    """
    found: dict[str, Any] = {}
    for key, value in document.items():
        if value is None:
            continue
        name = _camel(key)
        if name in found and found[name] != value:
            raise InvalidRequestError(f"{name} is given twice", errors=[FieldError(name, "given twice")])
        found[name] = value
    return found


def _camel(key: str) -> str:
    # Only real snake_case is another spelling of a field: phone__number or phone_Number would otherwise also be
    # phoneNumber, and stay unknown fields instead.
    if not _SNAKE_CASE.fullmatch(key):
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _native(model: type[Model], fields: Mapping[str, Any], rename: Mapping[str, str] | None = None) -> Model:
    """``fields`` parsed by the native wire model: the same checks as the native API, field errors named as the
    Authsignal request names them (``rename``: native name -> Authsignal name)."""
    try:
        return http.parse_document(json.dumps(dict(fields)), model)
    except InvalidRequestError as exc:
        if not rename:
            raise
        errors = [FieldError(_renamed(error.field, rename), error.message) for error in exc.errors]
        raise InvalidRequestError(exc.detail, errors=errors) from None


def _renamed(field: str, rename: Mapping[str, str]) -> str:
    head, dot, rest = field.partition(".")
    return rename.get(head, head) + dot + rest


@contextmanager
def _named_as_sent(rename: Mapping[str, str]) -> Iterator[None]:
    """A native use case's errors with their fields named as the Authsignal request names them (``rename``: native
    name -> Authsignal name), described anew when one is renamed: the native description names the native field
    ("code must be 6 digits" of a ``verificationCode``)."""
    try:
        yield
    except InvalidRequestError as exc:
        errors = [FieldError(_renamed(error.field, rename), error.message) for error in exc.errors]
        if errors == exc.errors:
            raise
        detail = "; ".join(_described(error.field, error.message) for error in errors)
        raise InvalidRequestError(detail, errors=errors) from None


def _refuse(body: Mapping[str, Any], refused: Mapping[str, str]) -> None:
    for name, why in refused.items():
        if name in body:
            raise InvalidRequestError(f"{name} is not supported: {why}", errors=[FieldError(name, why)])


def _string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > 256:
        why = "required" if value is None else "must be a string of 1-256 characters"
        raise InvalidRequestError(_described(name, why), errors=[FieldError(name, why)])
    return value


def _described(name: str, why: str) -> str:
    # "challengeId is required", "challengeId must be a string..." (a field error's message, as a sentence).
    return f"{name} is {why}" if why == "required" else f"{name} {why}"


def _optional_string(body: Mapping[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _string(body, name)


def _method_name(value: object) -> str:
    """A verification method as an error may repeat it (a name, never arbitrary input)."""
    text = value if isinstance(value, str) else ""
    return text if text and len(text) <= 32 and text.replace("_", "").isalnum() and text.isupper() else "this method"


def sms_only(value: object, *, field: str = "verificationMethod", required: bool = True) -> None:
    """Refuse every verification method but SMS.

    Raises
    ------
    InvalidRequestError
        ``value`` is not ``"SMS"`` (or is missing when ``required``).
    """
    if value is None and not required:
        return
    if value is None:
        raise InvalidRequestError(f"{field} is required", errors=[FieldError(field, "required")])
    if value != SMS:
        name = _method_name(value)
        raise InvalidRequestError(
            f"{name} is not available: this service verifies by SMS only",
            errors=[FieldError(field, "only SMS is supported")],
        )


def _sms_channel(body: Mapping[str, Any]) -> None:
    channel = body.get("smsChannel")
    if channel is None or channel in ("DEFAULT", "SMS"):
        return
    what = "WhatsApp is" if channel == "WHATSAPP" else "this channel is"
    raise InvalidRequestError(
        f"{what} not available: this service sends SMS only",
        errors=[FieldError("smsChannel", "only DEFAULT (SMS) is supported")],
    )


def _masked(phone_number: str) -> str:
    return _MASK + mask_phone(phone_number)


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: only for reading a token this service just issued, or for refusing one
    early (never for accepting it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, RecursionError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


# ------------------------------------------------------------------------------------------------ credentials


@dataclass(frozen=True)
class Caller:
    """The app a server request acts for (the app of its API key) and the policy it runs under."""

    app_id: str
    policy: Policy


def basic_key(authorization: str | None) -> str:
    """The API key of an ``Authorization: Basic`` header (``<key>:``, the key as user name, no password).

    Raises
    ------
    UnauthorizedError
        No Basic header, or one that does not decode to a user name and an empty password.
    """
    credentials = http.basic_credentials(authorization)
    if credentials is None or credentials[1] or not credentials[0]:
        raise UnauthorizedError("use HTTP Basic with the app's API key as user name and an empty password")
    return credentials[0]


def server_caller(authorization: str | None) -> Caller:
    """The app whose live API key an ``Authorization: Basic`` header carries (the key names the app), looked up by
    its digest as the key authorizer does; the admin key is no credential here.

    Raises
    ------
    UnauthorizedError
        No key, an unknown, revoked or admin key, or the key's app was deleted.
    """
    from otp_core.apps import KeyGrant

    grant = runtime.key_authority().identify(basic_key(authorization))
    if not isinstance(grant, KeyGrant):
        raise UnauthorizedError("the API key is not valid")
    return Caller(grant.app_id, runtime.policy(grant.app_id))


@dataclass(frozen=True)
class ClientSession:
    """A client request: the app its client token names, that app's policy, and the token's verified claims."""

    app_id: str
    policy: Policy
    claims: dict[str, Any]


def client_session(authorization: str | None) -> ClientSession:
    """The client token of an ``Authorization: Bearer`` header, verified as its app's (the native client check).

    Raises
    ------
    UnauthorizedError
        No token, or a forged, expired or foreign one (answered as ``expired_token``).
    """
    app_id, policy = runtime.client_app(authorization)
    claims = runtime.client_flows(app_id).authenticate(authorization, policy)
    return ClientSession(app_id, policy, claims)


# ------------------------------------------------------------------------------------------------ track, validate

_TRACK_ATTRIBUTES: Final = ("phoneNumber", "ipAddress", "userAgent", "deviceId", "redirectUrl", "custom")
_TRACK_REFUSED: Final = {
    "idempotencyKey": "this service names each tracked action itself; use the idempotencyKey of the answer",
    "challengeId": "a challenge completes only the action it was started for, through the client routes",
}


def _track_scope(value: object) -> None:
    # The token may read the user's authenticators (Authsignal's default scope); a scope that lets the client add,
    # update or remove one without a challenge would weaken the enrollment rules, so it is refused.
    if value is None or (isinstance(value, str) and set(value.split()) <= {"read:authenticators"}):
        return
    raise InvalidRequestError(
        "scope is not supported: a client token changes an enrolled number only after a challenge to it",
        errors=[FieldError("scope", "only read:authenticators")],
    )


def track(caller: Caller, user_id: str, action: str, body: Mapping[str, Any], base_url: str | None) -> dict[str, Any]:
    """``POST /users/{userId}/actions/{action}``: the native track (``POST /v1/track``).

    ``idempotencyKey`` is the tracked attempt's ID (the client token's ``trk``), ``url`` the hosted page.
    """
    from otp_core import replies
    from otp_core.models import TrackRequest

    _refuse(body, _TRACK_REFUSED)
    _track_scope(body.get("scope"))
    attributes = {name: body[name] for name in _TRACK_ATTRIBUTES if name in body}
    path = {"userId": http.path_user_id(user_id), "action": http.path_parameter(action, "action")}
    request = _native(TrackRequest, {**path, "attributes": attributes})
    tracked = runtime.tracker(caller.app_id).track(
        caller.policy,
        user_id=request.user_id,
        action=request.action,
        attributes=request.attributes.model_dump(by_alias=True, exclude_none=True),
        device_id=request.attributes.device_id,
        phone_number=request.attributes.phone_number,
        redirect_url=request.attributes.redirect_url,
    )
    native = replies.track_result(tracked, base_url)
    found: dict[str, Any] = {
        "state": tracked.state,
        "idempotencyKey": _unverified_claims(tracked.token).get("trk"),
        "token": tracked.token,
        "isEnrolled": tracked.enrolled,
        "enrolledVerificationMethods": list(native.enrolled_verification_methods),
        "allowedVerificationMethods": [SMS],
    }
    if native.url is not None:
        found["url"] = native.url
    if tracked.enrolled:
        found["defaultVerificationMethod"] = SMS
    return found


def validate(caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /validate``: the native validate (a token validates once), with Authsignal's optional ``userId``
    check: a token whose subject is another user is refused before it is looked at, so it is not spent."""
    from otp_core.models import ValidateRequest

    request = _native(ValidateRequest, {name: body[name] for name in ("token", "action") if name in body})
    user_id = _optional_string(body, "userId")
    unverified = _unverified_claims(request.token)
    if user_id is not None and unverified and unverified.get("sub") != user_id:
        return _invalid("USER_MISMATCH")
    validation = runtime.token_validator(caller.app_id).validate(request.token, request.action, caller.policy)
    claims = validation.claims
    found: dict[str, Any] = {"isValid": validation.valid}
    if claims is not None:
        found.update(_token_view(claims, succeeded=validation.valid))
    if not validation.valid:
        found.update(_invalid(validation.failure_reason or "TOKEN_INVALID_OR_EXPIRED"))
    return found


def _invalid(reason: str) -> dict[str, Any]:
    return {"isValid": False, "error": _VALIDATE_FAILURES.get(reason, reason), "failureReason": reason}


def _token_view(claims: Mapping[str, Any], *, succeeded: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "state": claims.get("state"),
        "userId": claims.get("sub"),
        "action": claims.get("act"),
        "actionCode": claims.get("act"),
        # The tracked action's ID; a token of a server challenge (claim) is named by its challenge, as its
        # challenge answer named it.
        "idempotencyKey": claims.get("trk") or claims.get("chl"),
    }
    if claims.get("chl"):
        view["challengeId"] = claims["chl"]
        view["verificationMethod"] = SMS
    if succeeded and isinstance(claims.get("iat"), int):
        view["stateUpdatedAt"] = rfc3339(claims["iat"])
    return {name: value for name, value in view.items() if value is not None}


# ------------------------------------------------------------------------------------------------ actions


def _attempt(caller: Caller, user_id: str, action: str, key: str) -> tuple[str, TrackedAttempt]:
    user = http.path_user_id(user_id)
    attempt_id = http.path_parameter(key, "idempotencyKey")
    action_code = http.path_parameter(action, "action")
    attempt = runtime.identities(caller.app_id).get_attempt(attempt_id) if is_challenge_id(attempt_id) else None
    if attempt is None or attempt.user_id != user or attempt.action != action_code:
        raise NotFoundError("no such action for this user")
    return user, attempt


def _action_view(caller: Caller, attempt: TrackedAttempt) -> dict[str, Any]:
    view: dict[str, Any] = {
        "state": attempt.state,
        "createdAt": rfc3339(attempt.created_at),
        "idempotencyKey": attempt.attempt_id,
        "userId": attempt.user_id,
        "actionCode": attempt.action,
    }
    if attempt.state == "CHALLENGE_SUCCEEDED":
        view["verificationMethod"] = SMS
        verified = _verified_at(caller, attempt.challenge_id)
        if verified is not None:
            view["stateUpdatedAt"] = rfc3339(verified)
    else:
        view["stateUpdatedAt"] = view["createdAt"]  # the state the rules decided at track
    return view


def _verified_at(caller: Caller, challenge_id: str | None) -> int | None:
    if challenge_id is None:
        return None
    try:
        return runtime.challenge_records(caller.app_id).get(challenge_id).verified_at
    except NotFoundError:
        return None


def get_action(caller: Caller, user_id: str, action: str, key: str) -> dict[str, Any]:
    """``GET /users/{userId}/actions/{action}/{idempotencyKey}``: the tracked attempt (its state and dates)."""
    _, attempt = _attempt(caller, user_id, action, key)
    return _action_view(caller, attempt)


def update_action(caller: Caller, user_id: str, action: str, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``PATCH /users/{userId}/actions/{action}/{idempotencyKey}``: only the state the action already has.

    This service has no way to change a tracked action's state: the rules decide it at track and only a verified
    code completes it (REVIEW_* states have no equivalent here); so any other state is refused, and nothing
    changes.
    """
    state = body.get("state")
    if not isinstance(state, str) or state not in ACTION_STATES:
        why = "required" if state is None else "must be one of " + ", ".join(sorted(ACTION_STATES))
        raise InvalidRequestError(_described("state", why), errors=[FieldError("state", why)])
    _, attempt = _attempt(caller, user_id, action, key)
    if state != attempt.state:
        raise InvalidRequestError(
            "a tracked action's state cannot be changed here: the rules decide it at track, and only a verified "
            "code completes it (refuse the action in your own code instead; its token validates only if it "
            "succeeded)",
            errors=[FieldError("state", f"the action is {attempt.state}")],
        )
    return _action_view(caller, attempt)


# ------------------------------------------------------------------------------------------------ users


def _user_view(authenticators: list[Authenticator]) -> dict[str, Any]:
    current = authenticators[0] if authenticators else None
    view: dict[str, Any] = {
        "isEnrolled": current is not None,
        "enrolledVerificationMethods": [SMS] if current else [],
        "allowedVerificationMethods": [SMS],
        "phoneNumberVerified": current is not None,
        "emailVerified": False,
    }
    if current is not None:
        view["defaultVerificationMethod"] = SMS
        view["phoneNumber"] = _masked(current.phone_number)
    return view


def get_user(caller: Caller, user_id: str) -> dict[str, Any]:
    """``GET /users/{userId}``: whether the user has an SMS authenticator, and its number masked; an unknown user
    is a user without one."""
    return _user_view(runtime.authenticator_directory(caller.app_id).list(http.path_user_id(user_id)))


_USER_REFUSED: Final = {
    name: f"this service keeps no {what} of users"
    for name, what in (
        ("email", "e-mail address"),
        ("emailVerified", "e-mail address"),
        ("username", "user name"),
        ("displayName", "display name"),
        ("custom", "custom data (send it with each track instead)"),
        ("locale", "locale (send it with each challenge instead)"),
    )
}


def update_user(caller: Caller, user_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``PATCH /users/{userId}``: the one user attribute this service has, the SMS number. ``phoneNumber`` with
    ``phoneNumberVerified: true`` enrolls it, or replaces the user's number, as a number verified elsewhere (the
    native ``POST /v1/users/{userId}/authenticators``); every other attribute is refused."""
    user = http.path_user_id(user_id)
    _refuse(body, _USER_REFUSED)
    sms_only(body.get("defaultVerificationMethod"), field="defaultVerificationMethod", required=False)
    verified = body.get("phoneNumberVerified")
    if "phoneNumber" in body and verified is not True:
        raise InvalidRequestError(
            "phoneNumber needs phoneNumberVerified: true: this service keeps a number only as a verified SMS "
            "authenticator (or verify it with a challenge and scope add:authenticators)",
            errors=[FieldError("phoneNumberVerified", "must be true with phoneNumber")],
        )
    if verified is not None and "phoneNumber" not in body:
        raise InvalidRequestError(
            "phoneNumberVerified goes with phoneNumber", errors=[FieldError("phoneNumber", "required")]
        )
    found: dict[str, Any] = {"userId": user}
    if "phoneNumber" in body:
        from otp_core.models import EnrollAuthenticatorRequest

        request = _native(EnrollAuthenticatorRequest, {"verificationMethod": SMS, "phoneNumber": body["phoneNumber"]})
        enrolled = runtime.authenticator_enroller(caller.app_id).enroll(user, request.phone_number, caller.policy)
        found["phoneNumber"] = _masked(enrolled.phone_number)
    else:
        current = runtime.authenticator_directory(caller.app_id).list(user)
        if current:
            found["phoneNumber"] = _masked(current[0].phone_number)
    return found


def delete_user(caller: Caller, user_id: str, actions: Iterable[str]) -> dict[str, Any]:
    """``DELETE /users/{userId}``: delete the user's SMS authenticator (the native delete; it cancels the user's
    pending enrollments). Tracked actions cannot be deleted here (they expire with their tokens), so
    ``?actions=true`` is refused; ``actions`` holds every value of the query parameter, and any ``true`` among
    them refuses (``?actions=true&actions=false`` must not delete as the last value alone would)."""
    user = http.path_user_id(user_id)
    if any(value.lower() == "true" for value in actions):
        raise InvalidRequestError(
            "actions=true is not supported: this service cannot delete tracked actions; they expire with their tokens",
            errors=[FieldError("actions", "only false")],
        )
    directory = runtime.authenticator_directory(caller.app_id)
    for authenticator in directory.list(user):
        try:
            directory.delete(user, authenticator.authenticator_id)
        except NotFoundError:
            continue  # deleted or replaced meanwhile
    return {"success": True}


# ------------------------------------------------------------------------------------------------ authenticators


def authenticator_view(authenticator: Authenticator) -> dict[str, Any]:
    """An Authsignal user authenticator: an SMS one, its number masked."""
    return {
        "userId": authenticator.user_id,
        "userAuthenticatorId": authenticator.authenticator_id,
        "verificationMethod": SMS,
        "createdAt": rfc3339(authenticator.created_at),
        "verifiedAt": rfc3339(authenticator.verified_at),
        "phoneNumber": _masked(authenticator.phone_number),
        "isDefault": True,
    }


def list_authenticators(caller: Caller, user_id: str) -> list[dict[str, Any]]:
    """``GET /users/{userId}/authenticators``: the bare array the SDKs index."""
    listed = runtime.authenticator_directory(caller.app_id).list(http.path_user_id(user_id))
    return [authenticator_view(authenticator) for authenticator in listed]


def enroll_authenticator(caller: Caller, user_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /users/{userId}/authenticators`` ``{"verificationMethod": "SMS", "phoneNumber"}``: the native
    enrollment of a number verified elsewhere (``isDefault`` needs nothing: a user has one authenticator)."""
    from otp_core.models import EnrollAuthenticatorRequest

    user = http.path_user_id(user_id)
    sms_only(body.get("verificationMethod"))
    request = _native(EnrollAuthenticatorRequest, {"verificationMethod": SMS, "phoneNumber": body.get("phoneNumber")})
    enrolled = runtime.authenticator_enroller(caller.app_id).enroll(user, request.phone_number, caller.policy)
    return {"authenticator": authenticator_view(enrolled)}


def delete_authenticator(caller: Caller, user_id: str, authenticator_id: str) -> dict[str, Any]:
    """``DELETE /users/{userId}/authenticators/{userAuthenticatorId}``: the native delete (404 when unknown)."""
    user, named = http.path_user_id(user_id), http.path_parameter(authenticator_id, "userAuthenticatorId")
    runtime.authenticator_directory(caller.app_id).delete(user, named)
    return {"success": True}


# ------------------------------------------------------------------------------------- challenge, verify, claim

# The native name of the code a verify sends, and Authsignal's.
_CODE: Final = {"code": "verificationCode"}
_CHALLENGE_REFUSED: Final = {
    "idempotencyKey": "this service names each challenge itself; use the challengeId of the answer",
    "challengeId": "start a new challenge; a challenge's code is sent again only by the client routes",
}


def _challenge_scope(value: object) -> str | None:
    if value is None:
        return None
    scopes = set(value.split()) if isinstance(value, str) else set()
    if scopes == {"add:authenticators"}:
        return "add:authenticators"
    if scopes and scopes <= {"add:authenticators", "update:authenticators"}:
        # update:authenticators enrolls the number for a user who has none, or replaces the user's number.
        return "update:authenticators"
    raise InvalidRequestError(
        "scope must be add:authenticators, update:authenticators or both",
        errors=[FieldError("scope", "add:authenticators and/or update:authenticators")],
    )


def challenge(caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /challenge``: the native ``POST /v1/challenges`` (an SMS challenge without a tracked action).

    ``expiresAt`` is in Unix seconds, as Authsignal answers; ``idempotencyKey`` is the challenge ID (the token its
    claim issues validates with it).
    """
    from otp_core.models import CreateChallengeRequest

    sms_only(body.get("verificationMethod"), required=False)
    _sms_channel(body)
    _refuse(body, _CHALLENGE_REFUSED)
    fields = {name: body[name] for name in ("phoneNumber", "action", "userId", "locale", "ipAddress") if name in body}
    scope = _challenge_scope(body.get("scope"))
    if scope is not None:
        fields["scope"] = scope
    request = _native(CreateChallengeRequest, fields)
    created = runtime.challenge_starter(caller.app_id).create(
        caller.policy,
        action=request.action,
        phone_number=request.phone_number,
        user_id=request.user_id,
        scope=request.scope,
        locale=request.locale,
        ip_address=request.ip_address,
    )
    return {
        "challengeId": created.challenge_id,
        "expiresAt": created.expires_at,
        "idempotencyKey": created.challenge_id,
    }


def verify(caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /verify`` ``{"challengeId", "verificationCode"}``: the native code check (attempts, expiry, single use,
    lockout); its token comes from ``/claim``."""
    from otp_core.models import VerifyChallengeRequest

    challenge_id = _string(body, "challengeId")
    request = _native(VerifyChallengeRequest, {"code": body.get("verificationCode")}, _CODE)
    with _named_as_sent(_CODE):
        check = runtime.code_checker(caller.app_id).check_code(challenge_id, request.code, caller.policy)
    if not check.verified or check.challenge is None:
        return {"isVerified": False, "failureReason": check.failure_reason}
    return {"isVerified": True, "verificationMethod": SMS, "phoneNumber": check.challenge.phone_number}


def claim(caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /claim`` ``{"challengeId", "userId"}``: the native claim, and the token ``/validate`` then accepts
    once. A challenge is claimed here once, in one conditional write (a second claim, the same user's too, is a
    409): one claim, one token. Validation does not rely on it: ``/validate`` spends the challenge with the token,
    so of all the tokens a challenge produced (a claim's, a native verify's, a client verify's) one validates."""
    from otp_core.models import ClaimChallengeRequest

    if body.get("skipVerificationCheck") not in (None, False):
        raise InvalidRequestError(
            "skipVerificationCheck is not supported: a challenge is claimed only after its code was verified",
            errors=[FieldError("skipVerificationCheck", "only false")],
        )
    challenge_id = _string(body, "challengeId")
    request = _native(ClaimChallengeRequest, {name: body[name] for name in ("userId",) if name in body})
    # One conditional write: only the first claim succeeds, so a challenge issues one token here.
    claimed = runtime.challenge_records(caller.app_id).claim(challenge_id, request.user_id, again=False)
    return {"token": _claim_token(caller, claimed, request.user_id), "verificationMethod": SMS}


def _claim_token(caller: Caller, claimed: Challenge, user_id: str) -> str:
    # The native server verify's token, for the claiming user, alive no longer than the claim window.
    verifier = runtime.challenge_verifier(caller.app_id)
    return verifier.token_for(claimed, caller.policy, user_id=user_id, not_after=claimed.claimable_until)


# ------------------------------------------------------------------------------------------------ client routes


def client_enroll(session: ClientSession, body: Mapping[str, Any], ip_address: str | None) -> dict[str, Any]:
    """``POST /client/user-authenticators/sms`` ``{"phoneNumber"}``: the native client enroll.

    The number becomes an authenticator only when its code is verified (the verify answer's ``userAuthenticator``
    carries its ID); until then the pending enrollment is named by its challenge, so ``userAuthenticatorId`` (which
    the mobile SDKs require) is the challenge ID.
    """
    from otp_core.models import ClientEnrollRequest

    _sms_channel(body)
    request = _native(ClientEnrollRequest, {name: body[name] for name in ("phoneNumber",) if name in body})
    sent = runtime.client_flows(session.app_id).enroll(session.claims, request.phone_number, session.policy, ip_address)
    return {"userAuthenticatorId": sent.challenge_id, "userId": session.claims["sub"], "challengeId": sent.challenge_id}


def client_challenge(session: ClientSession, body: Mapping[str, Any], ip_address: str | None) -> dict[str, Any]:
    """``POST /client/challenge/sms``: the native client challenge (a reload inside the cooldown sends nothing)."""
    _sms_channel(body)
    sent = runtime.client_flows(session.app_id).challenge(session.claims, session.policy, ip_address)
    return {"challengeId": sent.challenge_id}


def client_verify(session: ClientSession, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /client/verify/sms`` ``{"verificationCode"}``: the native client verify; ``accessToken`` is the
    CHALLENGE_SUCCEEDED client token (the browser SDK uses it from then on), and an enrollment's verify answers
    the new ``userAuthenticator``."""
    from otp_core.models import VerifyChallengeRequest

    request = _native(VerifyChallengeRequest, {"code": body.get("verificationCode")}, _CODE)
    with _named_as_sent(_CODE):
        verification = runtime.client_flows(session.app_id).verify(session.claims, request.code, session.policy)
    check = verification.check
    if not check.verified or verification.token is None:
        return {"isVerified": False, "failureReason": check.failure_reason}
    found: dict[str, Any] = {"isVerified": True, "accessToken": verification.token}
    if check.enrolled:
        listed = runtime.authenticator_directory(session.app_id).list(str(session.claims["sub"]))
        if listed:
            found["userAuthenticator"] = authenticator_view(listed[0])
    return found


def unsupported_client_route(segments: Iterable[str]) -> OtpError:
    """The error of a client route this service does not have: a 400 naming the factor for another factor's
    route (passkeys, TOTP, e-mail, push...), else a 404."""
    for segment in segments:
        try:
            name = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            continue  # bytes that are not UTF-8 name no factor
        factor = _CLIENT_FACTORS.get(name.lower())
        if factor is not None:
            return InvalidRequestError(f"{factor} is not available: this service verifies by SMS only")
    return NotFoundError("no such route")
