"""Expiry is enforced in code: an expired challenge that the table still stores is refused.

DynamoDB Local removes expired items within seconds, so the table of these tests lives on moto's DynamoDB,
which never applies TTL: the item is still there when the code is submitted after ``expiresAt``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local.services import table_request
from local.template import Template
from otp_core import runtime
from tests.fakes import FakeClock
from tests.integration.conftest import invoke_function

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def moto_stack(stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """The session's services, but with the table on moto's DynamoDB and a clock the test moves."""
    moto_endpoint = stack.environment["AWS_ENDPOINT_URL"]
    template = Template.load(ROOT / "template.yaml")
    table = next(r for r in template.resources.values() if r["Type"] == "AWS::DynamoDB::Table")
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    if "expiry-test" not in client.list_tables()["TableNames"]:
        client.create_table(**table_request("expiry-test", table["Properties"]))
    monkeypatch.setenv("TABLE_NAME", "expiry-test")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint)
    runtime.reset()
    clock = FakeClock()
    monkeypatch.setattr(runtime, "clock", lambda: clock)
    yield clock
    monkeypatch.undo()
    runtime.reset()


def test_expired_but_still_stored_challenge_is_refused(moto_stack: FakeClock) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    # Given a challenge whose lifetime has passed while its item is still in the table
    created = invoke_function("create_challenge", body={"phoneNumber": "+16502530000", "action": "signIn"})
    challenge_id = created.body["challengeId"]
    code = list(sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values())[-1][1].split()[0]
    moto_stack.advance(600)
    stored = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).get_item(
        TableName="expiry-test", Key={"pk": {"S": f"CHL#{challenge_id}"}, "sk": {"S": "CHL"}}
    )
    assert "Item" in stored

    # When the right code arrives, or a resend is asked for
    verified = invoke_function("verify_challenge", challenge_id=challenge_id, body={"code": code})
    resent = invoke_function("resend_challenge", challenge_id=challenge_id)
    view = invoke_function("get_challenge", challenge_id=challenge_id)

    # Then the challenge is expired for every endpoint
    assert verified.body == {"isVerified": False, "failureReason": "CODE_INVALID_OR_EXPIRED", "attemptsRemaining": 0}
    assert resent.status == 409
    assert view.body["state"] == "EXPIRED" and view.body["attemptsRemaining"] == 0
    assert json.loads(json.dumps(view.body))["expiresAt"].endswith("Z")


def test_one_second_before_expiry_the_code_still_works(moto_stack: FakeClock) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    created = invoke_function("create_challenge", body={"phoneNumber": "+16502530001", "action": "signIn"})
    code = list(sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages.values())[-1][1].split()[0]
    moto_stack.advance(599)

    verified = invoke_function("verify_challenge", challenge_id=created.body["challengeId"], body={"code": code})

    assert verified.body["isVerified"] is True
