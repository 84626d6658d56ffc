"""End User Messaging's delivery events on DynamoDB Local: SNS notifications signed with a local signing
certificate (served on 127.0.0.1), replayed into the delivery-status folder's SNS entry point, as SNS invokes
DeliveryEventsFunction. Signed events are recorded once per send and counted; unsigned, tampered, foreign-topic
and replayed ones are refused and change nothing."""

from __future__ import annotations

import importlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from local.gateway import LambdaContext
from local.sns_signing import LocalSnsSigner, eum_event, lambda_event, sns_timestamp, topic_arn
from otp_core import runtime
from tests.integration.conftest import Stack
from tests.integration.test_sms_delivery import delivery_of, put_challenge, undelivered

TOPIC = topic_arn("otp-sms-events")


@pytest.fixture
def signer(stack: Stack, policy: Callable[..., None]) -> Iterator[LocalSnsSigner]:
    """A local SNS signer trusted by the runtime (as the local stack sets it up), and the stack's topic."""
    with LocalSnsSigner() as started:
        policy(eum_events_topic_arn=TOPIC)
        runtime.use_local_sns_certificates(started.trusted_cert_url)
        yield started
    runtime.use_local_sns_certificates(None)


def deliver(event: dict[str, Any]) -> dict[str, int]:
    module = importlib.import_module("functions.delivery_status.app")
    context = LambdaContext(
        function_name="delivery_events",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:delivery_events",
        aws_request_id=str(uuid.uuid4()),
    )
    counts: dict[str, int] = module.sns_handler(event, context)
    return counts


@pytest.fixture
def dynamodb(stack: Stack) -> Any:
    return boto3.client("dynamodb")


def test_a_signed_event_records_its_send_s_outcome_once(signer: LocalSnsSigner, dynamodb: Any, stack: Stack) -> None:
    # Given a challenge whose SMS End User Messaging reports as blocked by the carrier
    challenge = put_challenge(dynamodb, stack.table)
    record = signer.sign_notification(eum_event(challenge, 0, "TEXT_CARRIER_BLOCKED", "m-1"), TOPIC)

    # When SNS delivers the signed event, then it is recorded and counted undelivered
    assert deliver(lambda_event(record))["recorded"] == 1
    assert delivery_of(dynamodb, stack.table, challenge) == {
        "provider": "eum",
        "messageId": "m-1",
        "status": "failed",
        "send": "0",
        "updatedAt": delivery_of(dynamodb, stack.table, challenge)["updatedAt"],  # type: ignore[index]
    }
    assert undelivered(dynamodb, stack.table, challenge) == 4

    # And the same notification delivered again (SNS and Lambda retry) changes nothing, counts nothing
    assert deliver(lambda_event(record)) == {"recorded": 0, "ignored": 1, "refused": 0, "malformed": 0}
    assert undelivered(dynamodb, stack.table, challenge) == 4


def test_progress_events_and_v1_signatures(signer: LocalSnsSigner, dynamodb: Any, stack: Stack) -> None:
    challenge = put_challenge(dynamodb, stack.table)
    queued = signer.sign_notification(eum_event(challenge, 0, "TEXT_QUEUED", "m-2", is_final=False), TOPIC)
    delivered = signer.sign_notification(eum_event(challenge, 0, "TEXT_DELIVERED", "m-2"), TOPIC, version="1")
    assert deliver(lambda_event(queued, delivered)) == {"recorded": 1, "ignored": 1, "refused": 0, "malformed": 0}
    found = delivery_of(dynamodb, stack.table, challenge)
    assert found is not None and found["status"] == "delivered"


def _tampered_message(record: dict[str, Any]) -> None:
    record["Message"] = record["Message"].replace("TEXT_DELIVERED", "TEXT_BLOCKED")


def _unsigned(record: dict[str, Any]) -> None:
    record.pop("Signature")


def _other_challenge(record: dict[str, Any]) -> None:
    document = json.loads(record["Message"])
    document["context"]["challengeId"] = str(uuid.uuid4())
    record["Message"] = json.dumps(document)


@pytest.mark.parametrize(
    "tamper", [_tampered_message, _unsigned, _other_challenge], ids=["body", "unsigned", "challenge"]
)
def test_a_tampered_or_unsigned_event_is_refused_and_changes_nothing(
    tamper: Callable[[dict[str, Any]], None], signer: LocalSnsSigner, dynamodb: Any, stack: Stack
) -> None:
    challenge = put_challenge(dynamodb, stack.table)
    record = signer.sign_notification(eum_event(challenge, 0, "TEXT_DELIVERED", "m-3"), TOPIC)
    tamper(record)
    assert deliver(lambda_event(record))["refused"] == 1
    assert delivery_of(dynamodb, stack.table, challenge) is None


def test_an_event_of_another_topic_or_signer_or_an_old_one_is_refused(
    signer: LocalSnsSigner, dynamodb: Any, stack: Stack
) -> None:
    challenge = put_challenge(dynamodb, stack.table)
    message = eum_event(challenge, 0, "TEXT_BLOCKED", "m-4")
    foreign = signer.sign_notification(message, topic_arn("someone-elses-topic"))
    replayed = signer.sign_notification(message, TOPIC, timestamp=sns_timestamp(time.time() - 2 * 3600))
    with LocalSnsSigner() as stranger:  # a key the runtime does not trust: its certificate is on another port
        forged = stranger.sign_notification(message, TOPIC)
    assert deliver(lambda_event(foreign, replayed, forged)) == {
        "recorded": 0,
        "ignored": 0,
        "refused": 3,
        "malformed": 0,
    }
    assert delivery_of(dynamodb, stack.table, challenge) is None


def test_a_signed_but_malformed_event_is_dropped_and_an_api_event_is_no_sns_event(
    signer: LocalSnsSigner, dynamodb: Any, stack: Stack
) -> None:
    record = signer.sign_notification('{"eventType": "TEXT_DELIVERED"}', TOPIC)
    assert deliver(lambda_event(record))["malformed"] == 1
    assert deliver({"httpMethod": "POST", "path": "/v1/delivery-status/eum"}) == {"refused": 1}


def test_an_event_of_an_earlier_send_changes_nothing(signer: LocalSnsSigner, dynamodb: Any, stack: Stack) -> None:
    challenge = put_challenge(dynamodb, stack.table, resends=1)
    late = signer.sign_notification(eum_event(challenge, 0, "TEXT_BLOCKED", "m-5"), TOPIC)
    assert deliver(lambda_event(late))["ignored"] == 1
    assert delivery_of(dynamodb, stack.table, challenge) is None


# ---------------------------------------------------------------------------------------------- the whole chain


@pytest.fixture
def eum(signer: LocalSnsSigner, policy: Callable[..., None]) -> Iterator[Any]:
    """The stack sending through End User Messaging (its local fake, spoken to by real botocore)."""
    from pytest_socket import enable_socket, socket_allow_hosts

    from local.services import LOCAL_CREDENTIALS
    from local.vendors.eum import running_eum

    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    # The fake checks each request's SigV4 signature under the credentials the stack's clients have.
    credentials = {LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]: LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    with running_eum(credentials=credentials) as fake:
        policy(
            eum_events_topic_arn=TOPIC,
            sms_providers="eum",
            sms_provider_endpoints=f"eum={fake.url}",
            eum_configuration_set="sms-otp-local-otp",
            eum_origination_identities="*=pool-0123abcd",
        )
        runtime.use_local_sns_certificates(signer.trusted_cert_url)
        yield fake


def test_create_sends_one_message_and_writes_once_then_the_receipt_and_the_verify_feed_back(
    eum: Any, signer: LocalSnsSigner, dynamodb: Any, stack: Stack, phone: str
) -> None:
    from tests.integration.conftest import invoke_function

    # When a challenge is created, End User Messaging receives exactly the documented request
    created = invoke_function("create_challenge", body={"phoneNumber": phone, "action": "signIn"})
    assert created.status == 201, created.body
    challenge = created.body["challengeId"]
    (sent,) = eum.sends
    assert sent["DestinationPhoneNumber"] == phone
    assert sent["OriginationIdentity"] == "pool-0123abcd"
    assert sent["ConfigurationSetName"] == "sms-otp-local-otp"
    assert sent["MessageType"] == "TRANSACTIONAL"
    assert sent["Context"] == {"challengeId": challenge, "send": "0"}
    assert 0 < sent["TimeToLive"] <= 600
    # And nothing was recorded after the send: the challenge has no delivery record until a receipt arrives
    assert delivery_of(dynamodb, stack.table, challenge) is None

    # When the service's delivery event for that message arrives through SNS
    (message_id,) = eum.messages
    event = signer.sign_notification(eum_event(challenge, 0, "TEXT_DELIVERED", message_id, country="US"), TOPIC)
    assert deliver(lambda_event(event))["recorded"] == 1

    # Then the verify reports the message converted
    code = sent["MessageBody"].split()[0]
    verified = invoke_function("verify_challenge", body={"code": code}, challenge_id=challenge)
    assert verified.status == 200 and verified.body["isVerified"] is True
    assert eum.feedback == {message_id: "RECEIVED"}
    assert eum.problems == []
