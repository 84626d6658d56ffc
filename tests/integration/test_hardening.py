"""Hostile request bodies through real handlers on DynamoDB Local: refused as 400, nothing written."""

from __future__ import annotations

import base64
import copy
import importlib
import json
import uuid
from typing import Any

import pytest

from local.gateway import LambdaContext
from tests.integration.conftest import ROOT, Reply, Stack, invoke_function


def items_of(table: Any, stack: Stack, user: str) -> list[dict[str, Any]]:
    """Every item of the table that names ``user`` (a tracked attempt, a known device...)."""
    found: list[dict[str, Any]] = []
    pages = table.get_paginator("scan").paginate(
        TableName=stack.table,
        FilterExpression="userId = :user",
        ExpressionAttributeValues={":user": {"S": user}},
    )
    for page in pages:
        found.extend(page["Items"])
    return found


def track_raw(user: str, custom: str) -> Reply:
    body = f'{{"userId": "{user}", "action": "signIn", "attributes": {{"custom": {custom}}}}}'
    return invoke_function("track", raw_body=body)


@pytest.mark.parametrize(
    "custom",
    ['{"amount": NaN}', '{"amount": Infinity}', '{"amount": -Infinity}', '{"amount": 1e400}', '{"risk": [1, NaN]}'],
    ids=["nan", "infinity", "-infinity", "overflow", "nan-in-list"],
)
def test_track_with_a_non_finite_number_is_400_and_writes_nothing(stack: Stack, table: Any, custom: str) -> None:
    # Given a user the table has never seen
    user = f"nan-{uuid.uuid4().hex[:12]}"

    # When their action is tracked with a custom attribute that is not a finite number (a rule comparing it
    # with "gt" would be skipped, since NaN compares false with everything)
    reply = track_raw(user, custom)

    # Then the request is invalid, no token is issued, and no attempt is stored
    assert reply.status == 400
    assert reply.body["code"] == "INVALID_REQUEST"
    assert "token" not in reply.body
    assert items_of(table, stack, user) == []


def test_track_with_finite_numbers_still_works(stack: Stack, table: Any) -> None:
    # Given the same request with an ordinary number
    user = f"num-{uuid.uuid4().hex[:12]}"

    # When tracked, then it is decided and stored as before
    reply = track_raw(user, '{"amount": 12.5}')
    assert reply.status == 200
    assert reply.body["state"] in {"ALLOW", "CHALLENGE_REQUIRED", "BLOCK"}
    assert len(items_of(table, stack, user)) == 1


def test_track_with_an_unpaired_surrogate_is_400_and_writes_nothing(stack: Stack, table: Any) -> None:
    user = f"sur-{uuid.uuid4().hex[:12]}"
    reply = track_raw(user, '{"note": "\\ud800"}')
    assert (reply.status, reply.body["code"]) == (400, "INVALID_REQUEST")
    assert items_of(table, stack, user) == []


def test_track_with_an_undecodable_base64_body_is_400(stack: Stack) -> None:
    # Given a body flagged base64 whose bytes are not UTF-8
    event = copy.deepcopy(json.loads((ROOT / "events" / "track.json").read_text()))
    event["body"] = base64.b64encode(b'{"userId": "\xff"}').decode()
    event["isBase64Encoded"] = True
    context = LambdaContext(
        function_name="track",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:track",
        aws_request_id=str(uuid.uuid4()),
    )

    # When the track function receives it
    result = importlib.import_module("functions.track.app").lambda_handler(event, context)

    # Then it is a 400, not a 500
    assert result["statusCode"] == 400
    assert json.loads(result["body"])["code"] == "INVALID_REQUEST"
