"""The whole provider path offline: secret in moto, circuit state in DynamoDB Local, vendors faked on 127.0.0.1."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.vendors.servers import FakeVendor, endpoints, running
from otp_core import runtime
from otp_core.errors import DeliveryFailedError, InvalidPhoneNumberError
from otp_core.records import OutgoingSms
from otp_core.settings import Settings
from otp_core.sms.circuit_store import DynamoCircuitStore, circuit_key
from otp_core.sms.factory import build_sender
from otp_core.sms.secret import ProviderSecret
from tests.fakes import FakeClock
from tests.integration.conftest import Stack

SECRET = {
    "twilio": {"accountSid": "AC" + "0" * 32, "authToken": "twilio-token", "from": "+15017122661"},
    "vonage": {"apiKey": "vonage-key", "apiSecret": "vonage-secret", "from": "MyBrand"},
    "tnz": {"authToken": "tnz-token"},
    "webhook": {"url": "https://hooks.example.com/sms", "secret": "webhook-secret"},
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeVendor]]:
    with running("twilio", "vonage", "tnz", "webhook") as servers:
        yield servers


@pytest.fixture(autouse=True)
def _fresh(fakes: dict[str, FakeVendor]) -> None:
    for fake in fakes.values():
        fake.reset()


@pytest.fixture(autouse=True)
def _closed_circuits(stack: Stack) -> None:
    # The table lives for the whole session: start every test from closed circuits.
    table = boto3.client("dynamodb")
    for name in SECRET:
        table.delete_item(TableName=stack.table, Key=circuit_key(name))


@pytest.fixture
def secret_id(stack: Stack) -> str:
    name = f"sms-providers-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(SECRET))
    return name


def sender_for(stack: Stack, fakes: dict[str, FakeVendor], secret_id: str, clock: FakeClock, **settings: Any) -> Any:
    config = Settings.model_validate(
        {
            "table_name": stack.table,
            "sms_provider_secret_id": secret_id,
            "sms_provider_endpoints": endpoints(fakes),
            "sms_provider_timeout_seconds": 1,
            **settings,
        }
    )
    return build_sender(
        config,
        load_credentials=ProviderSecret(secret_id, runtime.secret).document,
        sns_client=lambda: boto3.client("sns"),
        circuit_store=lambda: DynamoCircuitStore(boto3.client("dynamodb"), stack.table),
        clock=clock,
    )


def sms(to: str = "+64211234567") -> OutgoingSms:
    return OutgoingSms(to=to, body="123456 is your code", sender_id=None, challenge_id=str(uuid.uuid4()))


def test_failover_and_the_shared_circuit_on_the_table(
    stack: Stack, fakes: dict[str, FakeVendor], secret_id: str
) -> None:
    # Given Twilio down, Vonage healthy, and a circuit opening after 2 failures
    fakes["twilio"].mode = "fail"
    clock = FakeClock(1_900_000_000 + uuid.uuid4().int % 1_000_000)
    sender = sender_for(stack, fakes, secret_id, clock, sms_providers="twilio,vonage", sms_circuit_failure_threshold=2)
    table = boto3.client("dynamodb")

    # When three codes go out
    results = [sender.send(sms()) for _ in range(3)]

    # Then Vonage sent all three, Twilio was tried twice and then skipped, and the table holds the open circuit
    assert [sent.provider for sent in results] == ["vonage"] * 3
    assert len(fakes["twilio"].requests) == 2
    assert len(fakes["vonage"].requests) == 3
    item = table.get_item(TableName=stack.table, Key=circuit_key("twilio"), ConsistentRead=True)["Item"]
    assert item["status"] == {"S": "OPEN"}

    # And after the cool-down a healthy Twilio is probed and takes over again
    fakes["twilio"].mode = "ok"
    clock.advance(30)
    assert sender.send(sms()).provider == "twilio"
    assert sender.send(sms()).provider == "twilio"
    item = table.get_item(TableName=stack.table, Key=circuit_key("twilio"), ConsistentRead=True)["Item"]
    assert item["status"] == {"S": "CLOSED"}


def test_country_routes(stack: Stack, fakes: dict[str, FakeVendor], secret_id: str) -> None:
    clock = FakeClock()
    sender = sender_for(stack, fakes, secret_id, clock, sms_providers="webhook", sms_country_routes="NZ:tnz")

    sent = sender.send(sms("+64211234567"))

    # The NZ number goes the country's route, never the default, and the vendor's message ID comes back
    assert sent.provider == "tnz"
    assert sent.message_id == "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"
    assert fakes["webhook"].requests == []


def test_all_down_and_bad_numbers(stack: Stack, fakes: dict[str, FakeVendor], secret_id: str) -> None:
    sender = sender_for(stack, fakes, secret_id, FakeClock(), sms_providers="webhook,vonage")

    fakes["webhook"].mode, fakes["vonage"].mode = "fail", "fail"
    with pytest.raises(DeliveryFailedError):
        sender.send(sms())

    fakes["webhook"].mode = "bad_number"
    with pytest.raises(InvalidPhoneNumberError):
        sender.send(sms())
    assert len(fakes["vonage"].requests) == 1
