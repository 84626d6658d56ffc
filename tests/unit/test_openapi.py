"""GET /v1/openapi.json: the OpenAPI 3.1 document describes exactly the template's routes, with their credentials,
models and problem answers, and only its own function loads it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from functions.openapi import app as openapi_function
from local.gateway import LambdaContext
from local.template import Template
from otp_core import models
from otp_core.openapi import ROUTES, SECURITY_SCHEMES, VERSION, document

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return document()


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(ROOT / "template.yaml")


# Routes of the template the document leaves out: the local stack's own, and the compatibility facades (the
# vendors' APIs, documented by the vendors; the contract's "API description").
NOT_DESCRIBED = ("/_local", "/authsignal/", "/twilio/")


def template_routes(template: Template) -> dict[tuple[str, str], str | None]:
    """(METHOD, path) -> authorizer of every native API route of template.yaml (:data:`NOT_DESCRIBED` left out)."""
    return {(r.method, r.path): r.authorizer for r in template.routes if not r.path.startswith(NOT_DESCRIBED)}


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def missing_from(spec: dict[str, Any], routes: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return routes - set(operations(spec))


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` itself, or what its ``$ref`` (``#/components/...``) points to."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def expected_security(key: tuple[str, str], authorizer: str | None) -> list[dict[str, list[str]]]:
    """The credential the contract's Authentication section names for a route the template declares."""
    path = key[1]
    if authorizer == "AdminKeyAuthorizer":
        return [{"adminKey": []}]
    if authorizer == "ApiKeyAuthorizer":
        return [{"apiKey": []}]
    # Routes without the key authorizer check their token themselves, or are public.
    if path.startswith("/v1/client/") and key[0] != "OPTIONS":  # a CORS preflight carries no credential
        return [{"clientToken": []}]
    if path.startswith("/v1/verification/"):
        return [{"userAccessToken": []}]
    return []


# ------------------------------------------------------------------------------------------ the document


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    # When the document is checked against the OpenAPI 3.1 specification (and its JSON Schema dialect)
    validate(spec)

    # Then it is one, of the contract's version, and JSON as it is served
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"] == {**spec["info"], "title": "SMS OTP", "version": "1.1"}
    contract = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert f"# HTTP API contract, v{VERSION}\n" in contract
    assert json.loads(json.dumps(spec)) == spec


def test_every_template_route_is_in_the_document(spec: dict[str, Any], template: Template) -> None:
    # Given the routes of template.yaml
    routes = set(template_routes(template))
    assert ("GET", "/v1/openapi.json") in routes

    # Then the document has each of them, with its method
    assert not missing_from(spec, routes), sorted(missing_from(spec, routes))


def test_a_template_route_missing_from_the_document_is_found(spec: dict[str, Any], template: Template) -> None:
    # Given a template with one route more than the document describes
    routes = set(template_routes(template)) | {("GET", "/v1/hosted/missing")}

    # Then the check names that route, and only it
    assert missing_from(spec, routes) == {("GET", "/v1/hosted/missing")}
    # And so does it for a known path with a method the document lacks
    assert missing_from(spec, {("PUT", "/v1/health")}) == {("PUT", "/v1/health")}


def test_every_path_of_the_document_is_a_template_route(spec: dict[str, Any], template: Template) -> None:
    # Given the document's operations
    described = set(operations(spec))

    # Then each is a route of template.yaml (no facade, no /_local route) and the route table has no duplicate
    assert described == set(template_routes(template))
    assert not any(path.startswith(("/_local", "/authsignal", "/twilio")) for _, path in described)
    assert len({(route.method, route.path) for route in ROUTES}) == len(ROUTES)
    assert len({route.operation_id for route in ROUTES}) == len(ROUTES)


def test_each_route_names_the_credential_of_its_authorizer(spec: dict[str, Any], template: Template) -> None:
    # Given each route's authorizer in the template
    found = operations(spec)
    for key, authorizer in template_routes(template).items():
        # Then its operation requires the contract's credential for it (public routes: none)
        assert found[key]["security"] == expected_security(key, authorizer), key

    # And the four schemes are HTTP bearer credentials
    schemes = spec["components"]["securitySchemes"]
    assert set(schemes) == {"apiKey", "clientToken", "userAccessToken", "adminKey"} == set(SECURITY_SCHEMES)
    assert all((scheme["type"], scheme["scheme"]) == ("http", "bearer") for scheme in schemes.values())
    assert schemes["clientToken"]["bearerFormat"] == schemes["userAccessToken"]["bearerFormat"] == "JWT"
    public = {key for key, operation in found.items() if operation["security"] == []}
    assert public == {
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/v1/health"),
        ("GET", "/v1/openapi.json"),
        ("GET", "/v1/hosted/challenge"),
        ("GET", "/v1/hosted/challenge.js"),
        ("GET", "/v1/hosted/challenge.css"),
        ("GET", "/v1/hosted/sms-otp.js"),
        ("OPTIONS", "/v1/client/sms/enroll"),
        ("OPTIONS", "/v1/client/sms/challenge"),
        ("OPTIONS", "/v1/client/sms/verify"),
        ("POST", "/v1/delivery-status/{provider}"),
    }


def test_every_error_answer_is_a_problem_and_every_route_lists_its_credentials_errors(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == PROBLEM_FIELDS
    field_error = resolve(spec, problem["properties"]["errors"]["items"])
    assert set(field_error["required"]) == {"field", "message"}

    for key, operation in operations(spec).items():
        responses = {int(status): resolve(spec, answer) for status, answer in operation["responses"].items()}
        # Then exactly one success status, and every other status is an RFC 9457 problem
        assert len([status for status in responses if status < 400]) == 1, key
        for status, answer in responses.items():
            if status < 400:
                continue
            assert set(answer["content"]) == {"application/problem+json"}, (key, status)
            assert answer["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        # And every route may be throttled (with Retry-After) or unavailable
        assert {429, 503} <= set(responses), key
        assert responses[429]["headers"]["Retry-After"]["required"] is True
        # And a route with a credential answers 401, an admin route 403 for an app's key
        if operation["security"]:
            assert 401 in responses, key
        if key[1].startswith("/v1/admin/"):
            assert 403 in responses, key


@pytest.mark.parametrize(
    ("key", "statuses"),
    [
        (("POST", "/v1/challenges"), {201, 400, 401, 403, 409, 429, 502, 503}),
        (("POST", "/v1/challenges/{challengeId}/verify"), {200, 400, 401, 429, 503}),
        (("POST", "/v1/challenges/{challengeId}/resend"), {200, 400, 401, 403, 409, 429, 502, 503}),
        (("POST", "/v1/challenges/{challengeId}/claim"), {200, 400, 401, 409, 429, 503}),
        (("GET", "/v1/challenges/{challengeId}"), {200, 401, 404, 429, 503}),
        (("POST", "/v1/client/sms/challenge"), {200, 400, 401, 403, 409, 429, 502, 503}),
        (("POST", "/v1/verification/sms/send"), {202, 400, 401, 403, 429, 502, 503}),
        (("POST", "/v1/delivery-status/{provider}"), {204, 400, 401, 404, 429, 503}),
        (("DELETE", "/v1/admin/apps/{appId}"), {204, 400, 401, 403, 404, 409, 429, 503}),
        (("GET", "/v1/health"), {200, 429, 503}),
    ],
)
def test_routes_list_the_statuses_of_the_contract(
    spec: dict[str, Any], key: tuple[str, str], statuses: set[int]
) -> None:
    assert {int(status) for status in operations(spec)[key]["responses"]} == statuses


def test_bodies_and_answers_are_the_handlers_models(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for route in ROUTES:
        operation = operations(spec)[(route.method, route.path)]
        success = operation["responses"][str(route.success)]
        if route.response is None:
            assert "content" not in success, route.operation_id
        else:
            # A JSON answer of the route's model (or of a schema written for an answer no model describes); the
            # hosted page's HTML, script and style in their own media types
            assert success["content"] == {
                route.media_type: {"schema": {"$ref": f"#/components/schemas/{route.response}"}}
            }
            assert (route.media_type == "application/json") is not route.path.startswith("/v1/hosted/")
            assert route.response in schemas
        body = operation.get("requestBody")
        assert (body is None) is (route.request is None), route.operation_id
        if route.request in schemas:
            assert body is not None
            # A model's body is JSON, required unless every field is optional and the handler takes no body
            assert body["content"] == {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{route.request}"}}
            }
            assert body["required"] is route.request_required

    # And every request and answer model of otp_core.models is described, request models closed to unknown fields
    for name in models.__all__:
        model = getattr(models, name)
        if name in {"RequestModel", "ResponseModel"}:
            continue
        assert name in schemas, name
        if issubclass(model, models.RequestModel):
            assert schemas[name]["additionalProperties"] is False, name
    assert schemas["CreateChallengeRequest"]["required"] == ["action"]
    assert schemas["ChallengeView"]["properties"]["userId"]["anyOf"] == [{"type": "string"}, {"type": "null"}]


def test_path_parameters_are_declared_for_every_placeholder(spec: dict[str, Any]) -> None:
    for (method, path), operation in operations(spec).items():
        placeholders = re.findall(r"\{([^}]+)\}", path)
        declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert declared == placeholders, (method, path)
        assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")
    create = operations(spec)[("POST", "/v1/challenges")]
    assert [p["name"] for p in create["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]


@pytest.mark.parametrize(
    ("schema", "answer"),
    [
        (
            "ChallengeSent",
            models.ChallengeSent(
                challenge_id="c",
                phone_mask="2671",
                expires_at="2026-11-21T22:10:00Z",
                resend_available_at="2026-11-21T22:01:00Z",
                attempts_remaining=5,
            ).to_json(),
        ),
        (
            "VerifyResult",
            models.VerifyResult(
                is_verified=False, failure_reason="CODE_INVALID_OR_EXPIRED", attempts_remaining=4
            ).to_json(),
        ),
        ("KeyList", models.KeyList(keys=[models.KeyView(key_id="k", description=None, created_at="t")]).to_json()),
        ("Health", {"status": "ok", "version": "0.1.0"}),
        (
            "Problem",
            {
                "type": "about:blank",
                "title": "Invalid request",
                "status": 400,
                "detail": "the request body is invalid",
                "code": "INVALID_REQUEST",
                "errors": [{"field": "phoneNumber", "message": "required"}],
            },
        ),
    ],
)
def test_answers_as_the_handlers_write_them_fit_their_schemas(
    spec: dict[str, Any], schema: str, answer: dict[str, Any]
) -> None:
    # Given the document's schemas as one JSON Schema (references resolve inside it)
    root = {**spec, "$ref": f"#/components/schemas/{schema}"}

    # Then the JSON a handler writes validates against its schema
    OAS31Validator(root).validate(answer)


# ------------------------------------------------------------------------------------------ the function


def _context() -> LambdaContext:
    return LambdaContext(
        function_name="openapi",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:openapi",
        aws_request_id="r-1",
    )


def test_the_function_answers_the_document_cacheable_for_five_minutes(spec: dict[str, Any]) -> None:
    # Given the route's event
    event = json.loads((ROOT / "events" / "openapi.json").read_text(encoding="utf-8"))

    # When it is invoked twice
    first = openapi_function.lambda_handler(event, _context())
    second = openapi_function.lambda_handler(event, _context())

    # Then it answers the document as JSON, built once per instance, which caches may keep five minutes
    assert first["statusCode"] == 200
    assert first["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert first["multiValueHeaders"]["Cache-Control"] == ["public, max-age=300"]
    assert json.loads(first["body"]) == spec
    assert second["body"] == first["body"]
    assert openapi_function.document_text.cache_info().hits >= 1


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_openapi_function_loads_the_document_and_only_on_a_request() -> None:
    # Given every module of the functions and the core
    sources = [*(ROOT / "functions").rglob("*.py"), *(ROOT / "layers" / "otp_core" / "otp_core").rglob("*.py")]

    # Then none but functions/openapi imports otp_core.openapi, so no other cold start pays for it
    importers = {path.relative_to(ROOT).as_posix() for path in sources if "otp_core.openapi" in _imports(path)}
    assert importers == {"functions/openapi/app.py"}

    # And that function imports it inside the request's code path, not when its module loads
    tree = ast.parse((ROOT / "functions" / "openapi" / "app.py").read_text(encoding="utf-8"))
    top_level = {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module is not None}
    assert "otp_core.openapi" not in top_level
