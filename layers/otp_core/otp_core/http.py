"""The HTTP edge shared by every function: a small router, strict body parsing, problem responses."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sys
import traceback
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from otp_core.errors import (
    FieldError,
    InvalidRequestError,
    NotFoundError,
    OtpError,
    Problem,
    UnauthorizedError,
    to_problem,
)
from otp_core.observability import logger

Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[..., "Response"]
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_NO_STORE = {"Cache-Control": "no-store"}
_DOUBLE_MAX = int(sys.float_info.max)
# A path parameter: the characters Powertools' resolver accepted (RFC 3986 unreserved, sub-delims and the
# percent-encoded rest), so routing answers exactly as before.
_PARAMETER = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
_PLACEHOLDER = re.compile(r"<(\w+)>")


class ToJson(Protocol):
    def to_json(self) -> dict[str, object]: ...


@dataclass
class Response:
    """A Lambda proxy response for API Gateway's REST API."""

    status_code: int
    body: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_proxy(self) -> dict[str, Any]:
        headers = dict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return {
            "statusCode": self.status_code,
            "body": self.body or "",
            "isBase64Encoded": False,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
        }


class Headers:
    """Request headers, looked up case-insensitively (HTTP header names are)."""

    def __init__(self, headers: Mapping[str, Any] | None) -> None:
        self._headers = {str(name).lower(): value for name, value in (headers or {}).items()}

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._headers.get(name.lower(), default)
        return value if isinstance(value, str) or value is None else default


class Identity:
    def __init__(self, identity: Mapping[str, Any]) -> None:
        source = identity.get("sourceIp")
        self.source_ip: str | None = source if isinstance(source, str) else None


class RequestContext:
    def __init__(self, context: Mapping[str, Any]) -> None:
        identity = context.get("identity")
        self.identity = Identity(identity if isinstance(identity, Mapping) else {})
        authorizer = context.get("authorizer")
        self.authorizer: Mapping[str, Any] | None = authorizer if isinstance(authorizer, Mapping) else None
        path = context.get("path")
        self.path: str | None = path if isinstance(path, str) else None
        domain, stage = context.get("domainName"), context.get("stage")
        self.domain_name: str | None = domain if isinstance(domain, str) else None
        self.stage: str | None = stage if isinstance(stage, str) else None


class Event:
    """The API Gateway REST proxy event of the current request (read only)."""

    def __init__(self, raw_event: Mapping[str, Any]) -> None:
        self.raw_event = raw_event
        self.headers = Headers(raw_event.get("headers"))
        context = raw_event.get("requestContext")
        self.request_context = RequestContext(context if isinstance(context, Mapping) else {})
        path = raw_event.get("path")
        self.path: str = path if isinstance(path, str) else "/"


class Router:
    """Routes an API Gateway REST event to the function's route; every failure is a problem response.

    A function serves one route (the delivery callbacks one with a ``<provider>`` parameter), so this is a
    list of compiled rules, not Powertools' event handler: its import alone cost each cold start about
    120 ms. Errors of the hierarchy map to their status and code; anything else is a bug, logged with where
    it happened and answered with a body that reveals nothing.
    """

    def __init__(self, cors: Callable[[Event], Collection[str]] | None = None) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._event: Event | None = None
        self._cors = cors
        self.lambda_context: Any = None

    def route(self, method: str, rule: str) -> Callable[[Handler], Handler]:
        # re.escape leaves "<" and ">" alone, so the placeholders survive it. API Gateway routes "/x/" to the
        # "/x" resource and keeps the slash in the path: trailing slashes match, as they did under Powertools.
        escaped = _PLACEHOLDER.sub(lambda m: f"(?P<{m.group(1)}>{_PARAMETER})", re.escape(rule))
        pattern = re.compile(escaped + "/*")

        def register(handler: Handler) -> Handler:
            self._routes.append((method, pattern, handler))
            return handler

        return register

    def get(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route("GET", rule)

    def post(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route("POST", rule)

    def delete(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route("DELETE", rule)

    def put(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route("PUT", rule)

    def patch(self, rule: str) -> Callable[[Handler], Handler]:
        return self.route("PATCH", rule)

    @property
    def current_event(self) -> Event:
        if self._event is None:
            raise RuntimeError("no request is being handled")
        return self._event

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        self._event, self.lambda_context = Event(event), context
        try:
            response = self._answer(event)
            if self._cors is not None:
                response.headers.update(_cors_headers(self._event, self._cors))
            return response.to_proxy()
        finally:
            self._event = None

    def _answer(self, event: Mapping[str, Any]) -> Response:
        try:
            return self._dispatch(event)
        except OtpError as error:
            if error.status >= 500:
                logger.warning("request failed", code=error.code, cause=type(error.__cause__).__name__)
            return problem_response(to_problem(error))
        except Exception as error:
            _log_bug(error)
            return problem_response(Problem(500, "INTERNAL_ERROR", "Internal error", "an unexpected error occurred"))

    def _dispatch(self, event: Mapping[str, Any]) -> Response:
        method = str(event.get("httpMethod") or "").upper()
        path = self.current_event.path
        for route_method, pattern, handler in self._routes:
            matched = pattern.fullmatch(path)
            if matched and route_method == method:
                return handler(**matched.groupdict())
        raise NotFoundError("no such route")


def _cors_headers(event: Event, allowed: Callable[[Event], Collection[str]]) -> dict[str, str]:
    """The CORS headers of an answer (see :mod:`otp_core.cors`) to a request whose readers ``allowed`` names: no
    allow header for a request without an ``Origin`` (no browser's cross-origin call), and a failure to find the
    origins only withholds them (the answer itself stands; the browser just may not read it)."""
    from otp_core import cors

    origin = event.headers.get("Origin")
    if origin is None:
        return {"Vary": "Origin"}
    try:
        origins = allowed(event)
    except Exception as error:
        if not isinstance(error, OtpError):
            _log_bug(error)
        origins = ()
    return cors.response_headers(origin, origins)


def _log_bug(error: Exception) -> None:
    # Exception messages can carry request values (numbers, codes): log where it failed, not what it said.
    frames = traceback.extract_tb(error.__traceback__)
    where = [f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}" for frame in frames[-5:]]
    logger.error("unhandled error", error_type=type(error).__name__, where=where)


def problem_response(problem: Problem) -> Response:
    return Response(
        status_code=problem.status,
        content_type=PROBLEM_JSON,
        body=json.dumps(problem.body()),
        headers={**_NO_STORE, **problem.headers},
    )


def json_response(status: int, body: ToJson | dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    payload = body if isinstance(body, dict) else body.to_json()
    return Response(status_code=status, content_type=JSON, body=json.dumps(payload), headers=headers or dict(_NO_STORE))


def make_resolver(cors: Callable[[Event], Collection[str]] | None = None) -> Router:
    """The router of one function (see :class:`Router`); ``cors`` gives the origins allowed to read a request's
    answer (the client routes'), and every answer then carries the CORS headers of :mod:`otp_core.cors`."""
    return Router(cors)


def _reject_constant(name: str) -> NoReturn:
    # NaN, Infinity and -Infinity are not JSON (RFC 8259), and NaN compares false with everything, so a
    # "greater than" check on it would silently pass.
    raise ValueError("non-finite numbers are not JSON")


def _double_range_int(literal: str) -> int:
    # The contract's numbers are doubles: an integer literal beyond a double's range is refused like 1e400.
    value = int(literal)
    if abs(value) > _DOUBLE_MAX:
        raise ValueError("number out of range")
    return value


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        # 1e400 is valid JSON syntax but overflows a double to infinity.
        raise ValueError("number out of range")
    return value


def _check_strings(document: Any) -> None:
    # "\ud800" is valid JSON syntax but decodes to a lone surrogate, which has no UTF-8 form: it would fail
    # later, deep in a hash, a key or a log line, instead of here as a 400 (RFC 7493, I-JSON, forbids it).
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            item.encode("utf-8")


def loads_strict(text: str, *, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """``json.loads`` for request bodies: finite numbers and encodable strings only, at any depth.

    ``object_pairs_hook`` builds each object from its key/value pairs, in order, as ``json.loads``'s does (a caller
    that refuses a key given twice raises a ``ValueError`` from it).

    Raises
    ------
    ValueError
        Not JSON, ``NaN``/``Infinity``/``-Infinity``, a number that overflows a double, an integer too long
        for Python to convert, or a string holding an unpaired surrogate; or what ``object_pairs_hook`` raised.
    RecursionError
        Nesting deeper than the interpreter allows.
    """
    document = json.loads(
        text,
        parse_constant=_reject_constant,
        parse_float=_finite_float,
        parse_int=_double_range_int,
        object_pairs_hook=object_pairs_hook,
    )
    _check_strings(document)
    return document


def request_text(app: Router) -> str | None:
    """The request body as text (base64 bodies decoded), or None when it has none.

    Raises
    ------
    InvalidRequestError
        A base64 body that does not decode, or bytes that are not UTF-8.
    """
    event = app.current_event.raw_event
    body = event.get("body")
    if body is None or body == "":
        return None
    if not isinstance(body, str):
        raise InvalidRequestError("the request body is not valid JSON")
    if event.get("isBase64Encoded") is not True:
        return body
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRequestError("the request body is not valid JSON") from exc


def require_no_body(app: Router, detail: str) -> None:
    """Refuse a body on an endpoint that takes none (an empty JSON object is tolerated).

    Raises
    ------
    InvalidRequestError
        A body other than nothing or ``{}``, or one that does not decode.
    """
    body = request_text(app)
    if body and body.strip() not in ("", "{}"):
        raise InvalidRequestError(detail)


def parse_body(app: Router, model: type[Model]) -> Model:
    """Parse the request body strictly into ``model``.

    Raises
    ------
    InvalidRequestError
        Not a JSON object (including ``NaN``, ``Infinity`` or numbers overflowing a double anywhere in it), wrong
        types, missing or unknown fields; ``errors`` names each field.
    """
    return parse_document(request_text(app), model)


def parse_document(raw: str | bytes | None, model: type[Model]) -> Model:
    """Parse a body already read (text, or bytes such as a verified callback's) strictly into ``model``.

    Raises
    ------
    InvalidRequestError
        As :func:`parse_body`; also for bytes that are not UTF-8.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequestError("the request body is not valid JSON") from exc
    if not raw:
        raise InvalidRequestError("the request body must be a JSON object")
    try:
        data = loads_strict(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequestError("the request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [FieldError(_field_name(e["loc"]), _message(e)) for e in exc.errors(include_input=False)]
        raise InvalidRequestError("the request body is invalid", errors=errors) from None


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(user name, password) of an HTTP Basic ``Authorization`` header, or None."""
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def source_ip(app: Router) -> str | None:
    """The caller's IP as API Gateway saw it, for the per-IP send cap of end-user endpoints."""
    return app.current_event.request_context.identity.source_ip or None


def principal(app: Router) -> str:
    """The API key identity the authorizer attached to the request."""
    authorizer = app.current_event.request_context.authorizer
    value = authorizer.get("principalId") if authorizer else None
    return str(value or "anonymous")


def caller_app(app: Router) -> str:
    """The app of the API key that authorised this request: the authorizer's context ``appId``, which API
    Gateway passes from the key's stored grant (a client can set no part of it).

    Raises
    ------
    UnauthorizedError
        The request carries no app (it did not come through the key authorizer).
    """
    authorizer = app.current_event.request_context.authorizer
    value = authorizer.get("appId") if authorizer else None
    if not isinstance(value, str) or not value:
        raise UnauthorizedError("the API key is not valid")
    return value


def caller_key(app: Router) -> str:
    """The API key (its key ID) that authorised this request, as the key authorizer named it."""
    authorizer = app.current_event.request_context.authorizer
    value = authorizer.get("keyId") if authorizer else None
    return value if isinstance(value, str) and value else principal(app)


def public_base_url(app: Router, configured: str) -> str | None:
    """The API's base URL for links to it: ``configured`` (a custom domain), else the stage URL this request
    came in at, ``https://<domainName>/<stage>`` as API Gateway names them (the stack's ApiUrl output).

    API Gateway sets both from the route it served, not from the client's Host header. None without either.
    """
    if configured:
        return configured.rstrip("/")
    context = app.current_event.request_context
    if not context.domain_name or not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", context.domain_name):
        return None
    stage = context.stage if context.stage and context.stage != "$default" else None
    if stage is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", stage):
        return None
    return f"https://{context.domain_name}" + (f"/{stage}" if stage else "")


def query_parameter(app: Router, name: str) -> str | None:
    """One query string parameter as API Gateway decoded it (None when absent)."""
    parameters = app.current_event.raw_event.get("queryStringParameters")
    value = parameters.get(name) if isinstance(parameters, Mapping) else None
    return value if isinstance(value, str) else None


def query_values(app: Router, name: str) -> list[str]:
    """Every value of a query string parameter, in order, as API Gateway decoded them (empty when absent).

    ``queryStringParameters`` keeps only the last of a repeated parameter (``?a=true&a=false`` reads ``false``), so a
    check that must see each value reads ``multiValueQueryStringParameters``; an event without it (a hand-made one)
    falls back to the single value.
    """
    event = app.current_event.raw_event
    multi = event.get("multiValueQueryStringParameters")
    if isinstance(multi, Mapping) and name in multi:
        values = multi[name]
        return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []
    single = query_parameter(app, name)
    return [] if single is None else [single]


def path_parameter(value: str, name: str) -> str:
    """A path parameter URL-decoded (REST APIs pass paths percent-encoded), strictly: bytes that are not UTF-8 are
    refused, not replaced with U+FFFD (which would make ``a%FF``, ``a%FE`` and ``a%C0`` one value).

    Raises
    ------
    InvalidRequestError
        The decoded bytes are not UTF-8; ``errors`` names ``name``.
    """
    from urllib.parse import unquote

    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise InvalidRequestError(
            f"{name} must be percent-encoded UTF-8",
            errors=[FieldError(name, "not percent-encoded UTF-8")],
        ) from None


def path_user_id(value: str) -> str:
    """A ``{userId}`` path parameter, URL-decoded strictly (see :func:`path_parameter`) and checked like a body
    ``userId``.

    Raises
    ------
    InvalidRequestError
        Not percent-encoded UTF-8, empty, longer than 128 characters, or holding control characters.
    """
    user_id = path_parameter(value, "userId")
    if not 1 <= len(user_id) <= 128 or any(ord(char) < 0x20 or ord(char) == 0x7F for char in user_id):
        raise InvalidRequestError(
            "userId must be 1-128 characters without control characters",
            errors=[FieldError("userId", "1-128 characters, no control characters")],
        )
    return user_id
