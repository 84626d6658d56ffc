"""Handlers driven by API Gateway events against DynamoDB Local (the table) and moto (SNS, KMS, Secrets).

The resources come from template.yaml, so a schema change that the code does not follow fails here. Every
handler runs under its function's IAM policy from the template (``local.iam``), however a test calls
it, and a call that policy does not allow fails the test even when the handler turned it into a 503.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.gateway import LambdaContext
from local.iam import IAM, enforced_handlers, install_iam_hook
from local.services import (
    java_missing_warning,
    patched_environ,
    provision_stack,
    start_dynamodb_local,
    start_moto_server,
)
from local.template import Template
from otp_core import runtime
from tests.numbers import fresh_numbers

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "integration-test-key"


@dataclass
class Stack:
    environment: dict[str, str]
    template: Template

    @property
    def table(self) -> str:
        return self.environment["TABLE_NAME"]


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    template = Template.load(ROOT / "template.yaml")
    dynamodb = start_dynamodb_local()
    moto = start_moto_server()
    if dynamodb is None:
        if os.environ.get("CI"):
            pytest.fail("Java 17 is required for DynamoDB Local in CI")
        print(java_missing_warning())
    try:
        provisioned = provision_stack(
            template,
            dynamodb_endpoint=dynamodb.endpoint if dynamodb else moto.endpoint,
            aws_endpoint=moto.endpoint,
            api_key=API_KEY,
            environ={},
        )
        IAM.configure(template, provisioned.resolver)
        # Before the runtime builds its clients: a client copies its session's hooks when it is created.
        install_iam_hook(IAM)
        with patched_environ(provisioned.environment), enforced_handlers(template, IAM):
            runtime.reset()
            yield Stack(provisioned.environment, template)
    finally:
        IAM.clear()
        runtime.reset()
        moto.stop()
        if dynamodb:
            dynamodb.stop()


@pytest.fixture(autouse=True)
def _no_access_denied() -> Iterator[None]:
    """Fail the test when a handler made a call its function's template policy does not allow."""
    seen = len(IAM.denials())
    yield
    denied = IAM.denials()[seen:]
    if denied:
        pytest.fail("\n".join(denial.report() for denial in denied), pytrace=False)


@pytest.fixture
def policy(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Change policy settings for one test (the runtime is rebuilt from the environment)."""

    def apply(**settings: object) -> None:
        for name, value in settings.items():
            monkeypatch.setenv(name.upper(), str(value))
        runtime.reset()

    yield apply
    monkeypatch.undo()
    runtime.reset()


# Exchanges 200-599 (e2e tests use 600-999), one thousand-number block per number.
_numbers = fresh_numbers(range(200, 600))


@pytest.fixture
def phone() -> str:
    """A fresh valid US mobile-or-landline number per test, so counters of other tests never interfere."""
    return next(_numbers)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


NO_BODY = {
    "resend_challenge",
    "get_challenge",
    "jwks",
    "health",
    "client_challenge",
    "list_authenticators",
    "delete_authenticator",
}


def _load_event(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / f"{name}.json").read_text())


def invoke_function(
    name: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    challenge_id: str | None = None,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    source_ip: str | None = None,
    app: str | None = None,
) -> Reply:
    """Run ``functions/<name>/app.py`` with its events/ file, changed where the test says (``app``: the app the
    key authorizer's context names, as it does for a key of that app)."""
    import importlib

    event = copy.deepcopy(_load_event(name))
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    elif name in NO_BODY:
        event["body"] = None
    if challenge_id is not None:
        path_parameters = {"challengeId": challenge_id}
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
        event["path"] = event["resource"]
        for key, value in path_parameters.items():
            event["path"] = event["path"].replace("{" + key + "}", value)
    if headers:
        event["headers"] = {**(event.get("headers") or {}), **headers}
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if source_ip is not None:
        event["requestContext"]["identity"]["sourceIp"] = source_ip
    if app is not None:
        event["requestContext"]["authorizer"]["appId"] = app
    module = importlib.import_module(f"functions.{name}.app")
    context = LambdaContext(
        function_name=name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        aws_request_id=str(uuid.uuid4()),
    )
    result = module.lambda_handler(event, context)
    headers_out = {k: v[0] for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers_out.update(result.get("headers") or {})
    text = result.get("body")
    return Reply(result["statusCode"], headers_out, json.loads(text) if text else None)


@pytest.fixture
def invoke(stack: Stack) -> Callable[..., Reply]:
    return invoke_function


@pytest.fixture
def sms(stack: Stack) -> Callable[[str], list[str]]:
    """Bodies of the SMS moto's SNS received for a number, oldest first."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    def bodies(number: str) -> list[str]:
        messages = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values()
        return [message for to, message, *_ in messages if to == number]

    return bodies


@pytest.fixture
def table(stack: Stack) -> Any:
    return boto3.client("dynamodb")
