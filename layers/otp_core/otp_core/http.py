"""The HTTP edge shared by every function: one resolver factory, strict body parsing, problem responses."""

from __future__ import annotations

import base64
import binascii
import json
import math
import sys
import traceback
from typing import Any, NoReturn, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel, ValidationError

from otp_core.errors import FieldError, InvalidRequestError, NotFoundError, OtpError, Problem, to_problem
from otp_core.models import ResponseModel
from otp_core.observability import logger

Model = TypeVar("Model", bound=BaseModel)
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_NO_STORE = {"Cache-Control": "no-store"}
_DOUBLE_MAX = int(sys.float_info.max)


def problem_response(problem: Problem) -> Response[str]:
    return Response(
        status_code=problem.status,
        content_type=PROBLEM_JSON,
        body=json.dumps(problem.body()),
        headers={**_NO_STORE, **problem.headers},
    )


def json_response(
    status: int, body: ResponseModel | dict[str, Any], headers: dict[str, str] | None = None
) -> Response[str]:
    payload = body.to_json() if isinstance(body, ResponseModel) else body
    return Response(status_code=status, content_type=JSON, body=json.dumps(payload), headers=headers or dict(_NO_STORE))


def make_resolver() -> APIGatewayRestResolver:
    """A REST API resolver whose every failure is an RFC 9457 problem response.

    Errors of the hierarchy map to their status and code; anything else is a bug, logged with its traceback
    and answered with a body that reveals nothing.
    """
    app = APIGatewayRestResolver(strip_prefixes=None)

    @app.exception_handler(OtpError)  # type: ignore[untyped-decorator]
    def _otp_error(error: OtpError) -> Response[str]:
        if error.status >= 500:
            logger.warning("request failed", code=error.code, cause=type(error.__cause__).__name__)
        return problem_response(to_problem(error))

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return problem_response(to_problem(NotFoundError("no such route")))

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _bug(error: Exception) -> Response[str]:
        # Exception messages can carry request values (numbers, codes): log where it failed, not what it said.
        frames = traceback.extract_tb(error.__traceback__)
        where = [f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}" for frame in frames[-5:]]
        logger.error("unhandled error", error_type=type(error).__name__, where=where)
        return problem_response(Problem(500, "INTERNAL_ERROR", "Internal error", "an unexpected error occurred"))

    return app


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


def loads_strict(text: str) -> Any:
    """``json.loads`` for request bodies: finite numbers and encodable strings only, at any depth.

    Raises
    ------
    ValueError
        Not JSON, ``NaN``/``Infinity``/``-Infinity``, a number that overflows a double, an integer too long
        for Python to convert, or a string holding an unpaired surrogate.
    RecursionError
        Nesting deeper than the interpreter allows.
    """
    document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_double_range_int)
    _check_strings(document)
    return document


def request_text(app: APIGatewayRestResolver) -> str | None:
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


def require_no_body(app: APIGatewayRestResolver, detail: str) -> None:
    """Refuse a body on an endpoint that takes none (an empty JSON object is tolerated).

    Raises
    ------
    InvalidRequestError
        A body other than nothing or ``{}``, or one that does not decode.
    """
    body = request_text(app)
    if body and body.strip() not in ("", "{}"):
        raise InvalidRequestError(detail)


def parse_body(app: APIGatewayRestResolver, model: type[Model]) -> Model:
    """Parse the request body strictly into ``model``.

    Raises
    ------
    InvalidRequestError
        Not a JSON object (including ``NaN``, ``Infinity`` or numbers overflowing a double anywhere in it), wrong
        types, missing or unknown fields; ``errors`` names each field.
    """
    raw = request_text(app)
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


def source_ip(app: APIGatewayRestResolver) -> str | None:
    """The caller's IP as API Gateway saw it, for the per-IP send cap of end-user endpoints."""
    return app.current_event.request_context.identity.source_ip or None


def principal(app: APIGatewayRestResolver) -> str:
    """The API key identity the authorizer attached to the request."""
    authorizer = app.current_event.request_context.authorizer
    value = authorizer.get("principalId") if authorizer else None
    return str(value or "anonymous")


def path_user_id(value: str) -> str:
    """A ``{userId}`` path parameter, URL-decoded (REST APIs pass paths percent-encoded) and checked like a
    body ``userId``.

    Raises
    ------
    InvalidRequestError
        Empty, longer than 128 characters, or holding control characters.
    """
    from urllib.parse import unquote

    user_id = unquote(value)
    if not 1 <= len(user_id) <= 128 or any(ord(char) < 0x20 or ord(char) == 0x7F for char in user_id):
        raise InvalidRequestError(
            "userId must be 1-128 characters without control characters",
            errors=[FieldError("userId", "1-128 characters, no control characters")],
        )
    return user_id
