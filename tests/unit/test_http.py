"""The HTTP edge (otp_core.http): strict JSON bodies, whatever the client sends, through a real resolver."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from local.gateway import LambdaContext
from otp_core.errors import InvalidRequestError
from otp_core.http import (
    Response,
    json_response,
    loads_strict,
    make_resolver,
    parse_body,
    path_user_id,
    query_values,
)
from otp_core.settings import Settings
from tests.unit.conftest import World

EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "track.json").read_text())


class Anything(BaseModel):
    """A model that takes any JSON object, so only the JSON layer decides what is refused."""

    model_config = ConfigDict(extra="allow")


class Amount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: float


app = make_resolver()


@app.post("/v1/track")
def _echo() -> Response:
    return json_response(200, parse_body(app, Anything).model_dump())


@app.post("/v1/amount")
def _amount() -> Response:
    return json_response(200, parse_body(app, Amount).model_dump())


def _lambda_context() -> Any:
    return LambdaContext(  # the gateway's stand-in for the Lambda runtime's context
        function_name="test_http",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:test_http",
        aws_request_id="00000000-0000-4000-8000-000000000000",
    )


def call(body: str | None, *, path: str = "/v1/track", base64_encoded: bool = False) -> tuple[int, Any]:
    event = copy.deepcopy(EVENT)
    event["path"] = event["resource"] = path
    event["body"] = body
    event["isBase64Encoded"] = base64_encoded
    result = app.resolve(event, _lambda_context())
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


# -------------------------------------------------------------------------------- non-finite numbers


@pytest.mark.parametrize(
    "body",
    [
        '{"userId": "u", "score": NaN}',
        '{"userId": "u", "score": Infinity}',
        '{"userId": "u", "score": -Infinity}',
        '{"attributes": {"custom": {"amount": NaN}}}',
        '{"attributes": {"custom": {"list": [1, 2, [Infinity]]}}}',
        '{"score": 1e400}',
        '{"score": -1e400}',
        '{"attributes": {"custom": {"amount": 1.5e999}}}',
    ],
    ids=["nan", "infinity", "-infinity", "nested-nan", "nested-infinity", "overflow", "-overflow", "nested-overflow"],
)
def test_non_finite_numbers_are_an_invalid_request(body: str) -> None:
    # Given a body that Python's json module would accept, holding a number that is not finite
    # When it is parsed as a request body
    status, problem = call(body)

    # Then it is a 400 INVALID_REQUEST that says the body is not JSON and echoes nothing of it
    assert status == 400
    assert problem["code"] == "INVALID_REQUEST"
    assert problem["detail"] == "the request body is not valid JSON"
    assert "NaN" not in json.dumps(problem)
    assert "Infinity" not in json.dumps(problem)


def test_nan_cannot_slip_past_a_number_field() -> None:
    # Given a float field, which pydantic would otherwise fill with nan
    status, problem = call('{"amount": NaN}', path="/v1/amount")

    # Then the request is refused before validation
    assert (status, problem["code"]) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"amount": 1.5}', 1.5),
        ('{"amount": 1e308}', 1e308),
        ('{"amount": -2.5e-300}', -2.5e-300),
        ('{"amount": 42}', 42.0),
    ],
)
def test_finite_numbers_still_parse(body: str, expected: float) -> None:
    status, answer = call(body, path="/v1/amount")
    assert (status, answer) == (200, {"amount": expected})


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "[1e400]", '{"a": {"b": [NaN]}}'])
def test_loads_strict_refuses_what_json_loads_accepts(literal: str) -> None:
    # Given text the standard library parses into a non-finite float
    assert json.loads(literal) is not None
    # When parsed strictly, then it is refused
    with pytest.raises(ValueError, match="non-finite|out of range"):
        loads_strict(literal)


# -------------------------------------------------------------------------------- strings and encodings


@pytest.mark.parametrize(
    "body",
    ['{"userId": "\\ud800"}', '{"\\udfff": 1}', '{"attributes": {"custom": {"k": ["ok", "\\ud83d"]}}}'],
    ids=["value", "key", "nested"],
)
def test_an_unpaired_surrogate_is_an_invalid_request(body: str) -> None:
    # Given a JSON escape that decodes to half a UTF-16 pair (no UTF-8 form: it would fail later in a hash or
    # a key)
    status, problem = call(body)

    # Then it is refused here, as a 400
    assert (status, problem["code"]) == (400, "INVALID_REQUEST")


def test_a_paired_surrogate_escape_is_an_ordinary_character() -> None:
    status, answer = call('{"name": "\\ud83d\\ude00"}')
    assert (status, answer) == (200, {"name": "\U0001f600"})


@pytest.mark.parametrize(
    "body",
    ["!!not base64!!", base64.b64encode(b"\xff\xfe{}").decode(), "é"],
    ids=["not-base64", "not-utf8", "non-ascii"],
)
def test_an_undecodable_base64_body_is_an_invalid_request(body: str) -> None:
    # Given a body flagged base64 that does not decode to UTF-8 text
    status, problem = call(body, base64_encoded=True)

    # Then it is a 400, not a 500
    assert (status, problem["code"]) == (400, "INVALID_REQUEST")


def test_a_base64_body_is_decoded() -> None:
    status, answer = call(base64.b64encode(b'{"userId": "u-1"}').decode(), base64_encoded=True)
    assert (status, answer) == (200, {"userId": "u-1"})


@pytest.mark.parametrize("body", [None, "", "[]", '"text"', "{", "1" * 5000])
def test_anything_but_a_json_object_is_an_invalid_request(body: str | None) -> None:
    status, problem = call(body)
    assert (status, problem["code"]) == (400, "INVALID_REQUEST")


# -- the router ------------------------------------------------------------------------------------------------

router = make_resolver()


@router.get("/v1/things/<thingId>/parts/<partId>")
def _parts(thingId: str, partId: str) -> Response:  # noqa: N803 - path parameter names as routes spell them
    agent = router.current_event.headers.get("user-agent")
    return json_response(200, {"thing": thingId, "part": partId, "agent": agent})


@router.post("/v1/broken")
def _broken() -> Response:
    raise ValueError("secret 123456 leaked into an exception")


def route(method: str, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = {**copy.deepcopy(EVENT), "httpMethod": method, "path": path, "headers": headers or {}, "body": None}
    return router.resolve(event, None)


def test_the_router_passes_path_parameters_and_reads_headers_in_any_case():
    result = route("GET", "/v1/things/a%2Fb/parts/7", {"User-Agent": "probe/1"})

    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"thing": "a%2Fb", "part": "7", "agent": "probe/1"}
    assert result["multiValueHeaders"] == {"Cache-Control": ["no-store"], "Content-Type": ["application/json"]}


def test_a_trailing_slash_reaches_the_route_as_api_gateway_sends_it():
    # API Gateway routes "/x/" to the "/x" resource and keeps the slash in the event's path.
    for path in ("/v1/things/a/parts/7/", "/v1/things/a/parts/7//"):
        result = route("GET", path)
        assert result["statusCode"] == 200
        assert json.loads(result["body"])["part"] == "7"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/things/a/parts/7"),
        ("GET", "/v1/things/a/parts"),
        ("GET", "/v1/things/a/parts/7/x"),
        ("GET", "/"),
        ("GET", "/v1/things/a/parts/7\n"),
        ("GET", "//v1/things/a/parts/7"),
    ],
)
def test_anything_else_is_a_404_problem(method, path):
    result = route(method, path)

    assert result["statusCode"] == 404
    assert result["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    assert json.loads(result["body"])["code"] == "NOT_FOUND"


@router.get("/v1/query")
def _query() -> Response:
    return json_response(200, {"values": query_values(router, "a")})


def _query_event(single: dict[str, str] | None, multi: dict[str, list[str]] | None) -> dict[str, Any]:
    event = {**copy.deepcopy(EVENT), "httpMethod": "GET", "path": "/v1/query", "body": None}
    return {**event, "queryStringParameters": single, "multiValueQueryStringParameters": multi}


@pytest.mark.parametrize(
    ("single", "multi", "values"),
    [
        ({"a": "false"}, {"a": ["true", "false"]}, ["true", "false"]),  # API Gateway's ?a=true&a=false
        ({"a": "x"}, None, ["x"]),  # an event without the multi-value map
        ({"b": "x"}, {"b": ["x"]}, []),
        (None, None, []),
    ],
)
def test_query_values_reads_every_value_of_a_repeated_parameter(
    single: dict[str, str] | None, multi: dict[str, list[str]] | None, values: list[str]
) -> None:
    result = router.resolve(_query_event(single, multi), None)
    assert json.loads(result["body"]) == {"values": values}


def test_a_bug_is_a_500_that_reveals_nothing(capsys):
    result = route("POST", "/v1/broken")

    assert result["statusCode"] == 500
    assert json.loads(result["body"])["code"] == "INTERNAL_ERROR"
    assert "123456" not in result["body"] and "123456" not in capsys.readouterr().out


# -- path parameters -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("user-1", "user-1"),
        ("jos%C3%A9", "jos\u00e9"),
        ("%F0%9F%98%80", "\U0001f600"),
        ("jane%20doe%2B1%40example.com", "jane doe+1@example.com"),
        ("alias%EF%BF%BD", "alias\ufffd"),  # U+FFFD itself, percent-encoded as UTF-8
        ("100%", "100%"),  # a "%" that starts no escape is kept, as unquote keeps it
    ],
)
def test_path_user_id_decodes_percent_encoded_utf_8(raw: str, decoded: str) -> None:
    assert path_user_id(raw) == decoded


@pytest.mark.parametrize("raw", ["alias%FF", "alias%FE", "alias%C0", "alias%C3", "alias%C0%AF", "%ED%A0%80"])
def test_path_user_id_refuses_bytes_that_are_not_utf_8(raw: str) -> None:
    # Given bytes that lenient decoding turns into U+FFFD (so "alias%FF", "alias%FE"... would all be "alias\ufffd")
    # When the path parameter is read
    with pytest.raises(InvalidRequestError) as caught:
        path_user_id(raw)

    # Then it is refused, naming userId
    assert [error.field for error in caught.value.errors] == ["userId"]
    assert "UTF-8" in caught.value.detail


def _native_list(path: str, world: World, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from functions.list_authenticators import app as native
    from otp_core import runtime

    monkeypatch.setattr(runtime, "policy", lambda app_id="default": world.policy)
    monkeypatch.setattr(runtime, "authenticator_directory", lambda app_id="default": world.directory)
    event = json.loads((Path(__file__).resolve().parents[2] / "events" / "list_authenticators.json").read_text())
    event["path"] = path
    result: dict[str, Any] = native.lambda_handler(event, _lambda_context())
    return result


def test_a_native_route_reads_a_percent_encoded_utf_8_user_and_refuses_other_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a user whose ID is not ASCII, and one whose ID is the replacement character's
    world = World(Settings())
    world.enroller.enroll("jos\u00e9", "+14155552671", world.policy)
    world.enroller.enroll("alias\ufffd", "+14155552672", world.policy)

    # When the native route is called with the IDs percent-encoded as UTF-8, then with bytes that are not UTF-8
    found = _native_list("/v1/users/jos%C3%A9/authenticators", world, monkeypatch)
    refused = [_native_list(f"/v1/users/alias{byte}/authenticators", world, monkeypatch) for byte in ("%FF", "%C0")]

    # Then the first finds its user, and the others are a 400 naming userId, not another spelling of a user
    assert found["statusCode"] == 200
    listed = json.loads(found["body"])["authenticators"]
    assert [item["phoneMask"][-4:] for item in listed] == ["2671"]
    for answer in refused:
        assert answer["statusCode"] == 400
        problem = json.loads(answer["body"])
        assert problem["code"] == "INVALID_REQUEST"
        assert [error["field"] for error in problem["errors"]] == ["userId"]
