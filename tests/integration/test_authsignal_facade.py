"""The Authsignal facade on DynamoDB Local, with the template's IAM enforced: one verified code proves one sign-in,
however its tokens were obtained (a verify's, simultaneous claims), as the native rules say."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import threading
import uuid
from pathlib import Path
from typing import Any

from local.gateway import LambdaContext
from tests.integration.conftest import API_KEY, Stack, invoke_function

ROOT = Path(__file__).resolve().parents[2]
BASIC = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()


def server(method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One request to the facade's server function, as API Gateway passes it."""
    event = copy.deepcopy(json.loads((ROOT / "events" / "authsignal_server.json").read_text()))
    event["httpMethod"], event["path"], event["body"] = method, f"/authsignal/v1{path}", json.dumps(body)
    event["headers"]["Authorization"] = BASIC
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    module = importlib.import_module("functions.authsignal_server.app")
    context = LambdaContext(
        function_name="authsignal_server",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:authsignal_server",
        aws_request_id=str(uuid.uuid4()),
    )
    answer = module.lambda_handler(event, context)
    found: dict[str, Any] = json.loads(answer["body"])
    return answer["statusCode"], found


def verified_challenge(phone: str, sms: Any) -> str:
    status, started = server("POST", "/challenge", {"phoneNumber": phone, "action": "signIn"})
    assert status == 200, started
    code = sms(phone)[-1].split()[0]
    status, checked = server("POST", "/verify", {"challengeId": started["challengeId"], "verificationCode": code})
    assert status == 200 and checked["isVerified"] is True, checked
    challenge: str = started["challengeId"]
    return challenge


def valid(token: str) -> bool:
    status, answer = server("POST", "/validate", {"token": token})
    assert status == 200, answer
    return bool(answer["isValid"])


def test_simultaneous_claims_of_one_challenge_validate_once(stack: Stack, phone: str, sms: Any) -> None:
    # Given a verified challenge, claimed by the same user from several requests at once
    challenge = verified_challenge(phone, sms)
    tokens: list[str] = []

    def claim() -> None:
        status, answer = server("POST", "/claim", {"challengeId": challenge, "userId": "u-race"})
        if status == 200:
            tokens.append(answer["token"])

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then however many tokens were issued, exactly one of them validates
    assert tokens
    assert sum(valid(token) for token in tokens) == 1


def test_a_natively_verified_challenge_claimed_through_the_facade_validates_once(
    stack: Stack, phone: str, sms: Any
) -> None:
    # Given a challenge verified by the native route (which answers its token)
    created = invoke_function("create_challenge", body={"phoneNumber": phone, "action": "signIn"})
    assert created.status == 201, created.body
    challenge = created.body["challengeId"]
    code = sms(phone)[-1].split()[0]
    verified = invoke_function("verify_challenge", body={"code": code}, challenge_id=challenge)
    assert verified.status == 200 and verified.body["isVerified"] is True

    # When the facade claims it for a user (a second token of the same challenge)
    status, claimed = server("POST", "/claim", {"challengeId": challenge, "userId": "u-1"})
    assert status == 200, claimed

    # Then only one of the two tokens proves the sign-in
    assert valid(verified.body["token"]) is True
    assert valid(claimed["token"]) is False
