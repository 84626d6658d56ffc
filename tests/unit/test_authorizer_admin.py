"""The key authorizer on admin and server routes: which key opens which routes, and what the gateway answers.

The authorizer reads the stack's keys through ``runtime.secret`` (replaced here by a dictionary) and app keys
from the app store (in memory here), and is driven with TOKEN events; the last tests run it behind the local
gateway with the real template.yaml, so the policies it returns meet the template's authorizers and gateway
responses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions.authorizer import app as authorizer
from local.gateway import FunctionRunner, Gateway, HttpRequest, LambdaContext, policy_allows
from local.outbox import Outbox
from local.template import Function, Template
from otp_core import runtime
from otp_core.apps import key_digest, stack_key
from otp_core.settings import Settings
from tests.fakes import InMemoryAppStore

API_KEY = "app-key-0123456789"
ADMIN_KEY = "admin-key-9876543210"
SECRETS = {"stack/api-key": API_KEY, "stack/admin-key": ADMIN_KEY}
STAGE = "arn:aws:execute-api:us-east-1:123456789012:abc123/api"
ADMIN_ARN = f"{STAGE}/GET/v1/admin/fraud/blocks"
SERVER_ARN = f"{STAGE}/POST/v1/challenges"
STACK_KEY_ID = stack_key(key_digest(API_KEY), 0).key_id
DEFAULT_CONTEXT = {"appId": "default", "keyId": STACK_KEY_ID}


@pytest.fixture
def secrets_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The stack's two keys, and the secret IDs the authorizer read, in order."""
    read: list[str] = []

    def secret(secret_id: str) -> str:
        read.append(secret_id)
        return SECRETS[secret_id]

    settings = Settings(api_key_secret_id="stack/api-key", admin_key_secret_id="stack/admin-key")
    store = InMemoryAppStore()
    runtime.reset()
    monkeypatch.setattr(runtime, "settings", lambda: settings)
    monkeypatch.setattr(runtime, "secret", secret)
    monkeypatch.setattr(runtime, "app_store", lambda: store)
    yield read
    runtime.reset()


def _context() -> LambdaContext:
    return LambdaContext(
        function_name="authorizer",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:authorizer",
        aws_request_id="r-1",
    )


def _authorize(key: str, method_arn: str) -> dict[str, Any]:
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {key}", "methodArn": method_arn}
    answer: dict[str, Any] = authorizer.lambda_handler(event, _context())
    return answer


def _effects(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["Effect"], s["Resource"]) for s in answer["policyDocument"]["Statement"]]


# ------------------------------------------------------------------------------------ the decision


def test_the_admin_key_opens_only_the_admin_routes(secrets_read: list[str]) -> None:
    # When the admin key asks for an admin route
    answer = _authorize(ADMIN_KEY, ADMIN_ARN)

    # Then the cached policy allows every admin route of the stage and nothing else
    assert _effects(answer) == [("Allow", f"{STAGE}/*/v1/admin/*")]
    assert answer["context"] == {"keyId": "admin"}
    assert answer["principalId"] == authorizer.ADMIN_PRINCIPAL
    assert policy_allows(answer["policyDocument"], f"{STAGE}/DELETE/v1/admin/fraud/blocks/country:GB")
    assert not policy_allows(answer["policyDocument"], SERVER_ARN)


def test_an_app_key_is_denied_on_admin_routes(secrets_read: list[str]) -> None:
    # When the app's API key asks for an admin route
    answer = _authorize(API_KEY, ADMIN_ARN)

    # Then the answer is an explicit Deny (API Gateway's 403 ACCESS_DENIED), cached for every admin route
    assert _effects(answer) == [("Deny", f"{STAGE}/*/v1/admin/*")]
    assert answer["context"] == DEFAULT_CONTEXT
    assert not policy_allows(answer["policyDocument"], f"{STAGE}/PUT/v1/admin/fraud/safe-list")


def test_an_app_key_opens_the_stage_except_the_admin_routes(secrets_read: list[str]) -> None:
    # When the app's API key asks for a server route
    answer = _authorize(API_KEY, SERVER_ARN)

    # Then the policy allows the stage, and its explicit Deny keeps the admin routes out of the cached policy
    assert _effects(answer) == [("Allow", f"{STAGE}/*"), ("Deny", f"{STAGE}/*/v1/admin/*")]
    assert answer["context"] == DEFAULT_CONTEXT
    assert answer["principalId"] == authorizer.PRINCIPAL
    assert policy_allows(answer["policyDocument"], f"{STAGE}/GET/v1/users/u-1/authenticators")
    assert not policy_allows(answer["policyDocument"], ADMIN_ARN)
    assert not policy_allows(answer["policyDocument"], f"{STAGE}/POST/v1/admin/fraud/blocks")


def test_the_admin_key_is_no_credential_on_server_routes(secrets_read: list[str]) -> None:
    # When the admin key asks for a server route, Then it is refused like an unknown key (401)
    with pytest.raises(Exception, match="^Unauthorized$"):
        _authorize(ADMIN_KEY, SERVER_ARN)


@pytest.mark.parametrize("method_arn", [ADMIN_ARN, SERVER_ARN], ids=["admin-route", "server-route"])
@pytest.mark.parametrize(
    "token",
    ["", "Bearer", "Bearer ", f"Basic {ADMIN_KEY}", f"Bearer {ADMIN_KEY}x", f"Bearer {API_KEY[:-1]}", "Bearer wrong"],
)
def test_anything_else_is_unauthorized(secrets_read: list[str], token: str, method_arn: str) -> None:
    event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
    with pytest.raises(Exception, match="^Unauthorized$"):
        authorizer.lambda_handler(event, _context())


@pytest.mark.parametrize(
    ("key", "method_arn"),
    [(ADMIN_KEY, ADMIN_ARN), (API_KEY, ADMIN_ARN), (API_KEY, SERVER_ARN), ("wrong", SERVER_ARN)],
    ids=["admin-on-admin", "app-on-admin", "app-on-server", "unknown"],
)
def test_the_admin_key_is_compared_in_constant_time_on_every_call(
    secrets_read: list[str], monkeypatch: pytest.MonkeyPatch, key: str, method_arn: str
) -> None:
    # Given a count of the constant-time comparisons
    from otp_core import app_admin

    compared: list[tuple[str, str]] = []
    real = app_admin.hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(app_admin.hmac, "compare_digest", counting)

    # When any key is checked on any route (the unknown one is refused)
    if key == "wrong":
        with pytest.raises(Exception, match="^Unauthorized$"):
            _authorize(key, method_arn)
    else:
        _authorize(key, method_arn)

    # Then the admin key's digest was compared first, whatever the key, and only digests were compared
    assert "stack/admin-key" in secrets_read
    assert compared[0][1] == key_digest(ADMIN_KEY)
    assert all(len(a) == len(b) == 64 for a, b in compared)


@pytest.mark.parametrize(
    ("method_arn", "admin"),
    [
        (f"{STAGE}/GET/v1/admin/fraud/blocks", True),
        (f"{STAGE}/DELETE/v1/admin/fraud/blocks/prefix:447700900", True),
        (f"{STAGE}/GET/v1/admin", True),
        (f"{STAGE}/GET/v1/administrators", False),
        (f"{STAGE}/GET/v1/users/admin/authenticators", False),
        (f"{STAGE}/POST/v1/challenges", False),
        (f"{STAGE}/GET/.well-known/jwks.json", False),
    ],
)
def test_admin_routes_are_told_by_the_path_after_stage_and_method(method_arn: str, admin: bool) -> None:
    assert authorizer.is_admin_route(method_arn) is admin


# ------------------------------------------------------------------------ behind the local gateway


class _Handlers:
    """The real authorizer; every route's function answers 200 with the authorizer context it received."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def load(self, function: Function) -> Any:
        if function.logical_id == "ApiKeyAuthorizerFunction":
            return authorizer.lambda_handler

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.called.append(function.logical_id)
            body = {"authorizer": event["requestContext"].get("authorizer")}
            return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}

        return handler


@pytest.fixture
def handlers() -> _Handlers:
    return _Handlers()


@pytest.fixture
def gateway(secrets_read: list[str], handlers: _Handlers) -> Gateway:
    return Gateway(Template.load(), stage="api", runner=FunctionRunner(loader=handlers.load), outbox=Outbox(echo=None))


def _call(gateway: Gateway, method: str, path: str, key: str) -> tuple[int, Any]:
    response = gateway.handle(HttpRequest(method, path, [("Authorization", f"Bearer {key}")]))
    return response.status, response.json()


def test_the_gateway_routes_admin_calls_through_the_admin_authorizer(gateway: Gateway, handlers: _Handlers) -> None:
    # When the admin key calls an admin route
    status, body = _call(gateway, "GET", "/v1/admin/fraud/blocks?appId=default", ADMIN_KEY)

    # Then the admin function runs with the admin context
    assert status == 200
    assert body["authorizer"]["keyId"] == "admin"
    assert handlers.called == ["AdminListBlocksFunction"]


def test_an_app_key_on_an_admin_route_answers_the_templates_403_forbidden(
    gateway: Gateway, handlers: _Handlers
) -> None:
    # When an app key calls admin routes (the second answer comes from the authorizer's cache)
    first = gateway.handle(HttpRequest("POST", "/v1/admin/fraud/blocks", [("Authorization", f"Bearer {API_KEY}")]))
    second = gateway.handle(HttpRequest("PUT", "/v1/admin/fraud/safe-list", [("Authorization", f"Bearer {API_KEY}")]))

    # Then both are the template's ACCESS_DENIED response: 403 FORBIDDEN, problem+json, no function ran
    for response in (first, second):
        assert response.status == 403
        assert response.header("Content-Type") == "application/problem+json"
        body = response.json()
        assert (body["status"], body["code"]) == (403, "FORBIDDEN")
    assert handlers.called == []


def test_the_admin_key_on_a_server_route_answers_401(gateway: Gateway, handlers: _Handlers) -> None:
    status, body = _call(gateway, "GET", "/v1/challenges/c-1", ADMIN_KEY)
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    assert handlers.called == []


def test_an_app_key_that_reached_a_server_route_still_cannot_reach_admin(gateway: Gateway, handlers: _Handlers) -> None:
    # Given an app key whose server-route policy is cached
    assert _call(gateway, "GET", "/v1/challenges/c-1", API_KEY)[0] == 200

    # When it calls an admin route, Then it is refused with 403, and only the server function ran
    status, body = _call(gateway, "DELETE", "/v1/admin/fraud/blocks/country:GB", API_KEY)
    assert (status, body["code"]) == (403, "FORBIDDEN")
    assert handlers.called == ["GetChallengeFunction"]
