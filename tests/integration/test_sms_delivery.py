"""SMS state on DynamoDB Local: the shared circuit breaker, delivery records and the status callbacks.

The table comes from template.yaml through the ``stack`` fixture; the provider secret lives in moto.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from local.gateway import LambdaContext
from otp_core.records import SentSms
from otp_core.sms.breaker import CircuitBreaker, CircuitStatus
from otp_core.sms.circuit_store import DynamoCircuitStore, circuit_key
from otp_core.sms.delivery import DeliveryRecorder, record_delivery
from otp_core.sms.vendors.twilio import twilio_callback_url, twilio_signature
from otp_core.sms.vendors.webhook import webhook_signature
from tests.fakes import FakeClock
from tests.integration.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
TWILIO_TOKEN = "integration-twilio-token"
WEBHOOK_SECRET = "integration-webhook-secret"
HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"


@pytest.fixture
def dynamodb(stack: Stack) -> Any:
    return boto3.client("dynamodb")


@pytest.fixture
def store(stack: Stack, dynamodb: Any) -> DynamoCircuitStore:
    return DynamoCircuitStore(dynamodb, stack.table)


@pytest.fixture
def provider() -> str:
    """A provider name of its own per test, so circuit items never collide."""
    return f"p{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------------------------- circuit store


def test_an_unknown_provider_is_closed(store: DynamoCircuitStore, provider: str) -> None:
    state = store.read(provider)
    assert state.status is CircuitStatus.CLOSED
    assert state.failures == 0


def test_failures_count_per_window(store: DynamoCircuitStore, provider: str, dynamodb: Any, stack: Stack) -> None:
    # When two failures land in window 10 and one in window 11
    assert store.count_failure(provider, 10, ttl=2_000_000_000) == 1
    assert store.count_failure(provider, 10, ttl=2_000_000_000) == 2
    assert store.count_failure(provider, 11, ttl=2_000_000_000) == 1

    # Then the new window restarted the count, and an older window cannot reset it
    assert store.count_failure(provider, 10, ttl=2_000_000_000) == 0
    item = dynamodb.get_item(TableName=stack.table, Key=circuit_key(provider))["Item"]
    assert item["pk"] == {"S": f"CIRCUIT#{provider}"}
    assert item["sk"] == {"S": "CIRCUIT"}
    assert item["failures"] == {"N": "1"}
    assert item["ttl"] == {"N": "2000000000"}


def test_concurrent_failures_are_all_counted(store: DynamoCircuitStore, provider: str) -> None:
    # Given 12 instances failing at once, half of them racing to start the window
    counts: list[int] = []

    def fail() -> None:
        counts.append(store.count_failure(provider, 42, ttl=2_000_000_000))

    threads = [threading.Thread(target=fail) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every failure was counted exactly once
    assert sorted(counts) == list(range(1, 13))
    assert store.read(provider).failures == 12


def test_the_circuit_opens_only_from_closed_at_the_threshold(store: DynamoCircuitStore, provider: str) -> None:
    store.count_failure(provider, 1, ttl=2_000_000_000)
    assert not store.open(provider, expected=CircuitStatus.CLOSED, open_until=100, threshold=2, ttl=2_000_000_000)
    store.count_failure(provider, 1, ttl=2_000_000_000)
    assert store.open(provider, expected=CircuitStatus.CLOSED, open_until=100, threshold=2, ttl=2_000_000_000)
    # A second instance reaching the threshold finds it open already: one state change only
    assert not store.open(provider, expected=CircuitStatus.CLOSED, open_until=200, threshold=2, ttl=2_000_000_000)
    state = store.read(provider)
    assert (state.status, state.open_until) == (CircuitStatus.OPEN, 100)


def test_one_instance_wins_the_probe_and_closes(store: DynamoCircuitStore, provider: str) -> None:
    # Given an open circuit whose cool-down ends at 100
    for _ in range(2):
        store.count_failure(provider, 1, ttl=2_000_000_000)
    store.open(provider, expected=CircuitStatus.CLOSED, open_until=100, threshold=2, ttl=2_000_000_000)

    # Before the end nobody probes; at the end, of eight racing instances exactly one does
    assert not store.start_probe(provider, now=99, probe_until=130, ttl=2_000_000_000)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.start_probe(provider, now=100, probe_until=130, ttl=1)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert store.read(provider).status is CircuitStatus.HALF_OPEN

    # And the probe's success closes it and forgets the failures
    assert store.close(provider, ttl=2_000_000_000)
    assert not store.close(provider, ttl=2_000_000_000)
    state = store.read(provider)
    assert (state.status, state.failures) == (CircuitStatus.CLOSED, 0)


def test_the_breaker_opens_and_closes_on_the_table(store: DynamoCircuitStore, provider: str) -> None:
    # Given two breakers (two Lambda instances) sharing the table, opening after 3 failures for 30 s
    clock = FakeClock(1_800_000_000)
    one, two = (CircuitBreaker(store, clock, threshold=3, window_seconds=60, cooldown_seconds=30) for _ in range(2))

    # When the instances see three failures between them
    for breaker in (one, two, one):
        permit = breaker.acquire(provider)
        assert permit is not None
        breaker.failed(permit)

    # Then both skip the provider during the cool-down
    assert one.acquire(provider) is None
    assert two.acquire(provider) is None

    # And after it exactly one probes; its success closes the circuit for both
    clock.advance(30)
    probe = two.acquire(provider)
    assert probe is not None and probe.probe
    assert one.acquire(provider) is None
    two.succeeded(probe)
    assert one.acquire(provider) is not None
    assert store.read(provider).status is CircuitStatus.CLOSED


# ---------------------------------------------------------------------------------------------- delivery records


@pytest.fixture
def challenge_id(stack: Stack, dynamodb: Any) -> str:
    """A stored challenge item (only its key matters to delivery records)."""
    challenge = str(uuid.uuid4())
    dynamodb.put_item(
        TableName=stack.table,
        Item={"pk": {"S": f"CHL#{challenge}"}, "sk": {"S": "CHL"}, "challengeId": {"S": challenge}},
    )
    return challenge


def delivery_of(dynamodb: Any, table: str, challenge: str) -> dict[str, str]:
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"CHL#{challenge}"}, "sk": {"S": "CHL"}})["Item"]
    return {name: next(iter(value.values())) for name, value in item["delivery"]["M"].items()}


def test_a_send_is_recorded_without_body_or_code(dynamodb: Any, stack: Stack, challenge_id: str) -> None:
    assert record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "sent", 1_800_000_000)
    assert delivery_of(dynamodb, stack.table, challenge_id) == {
        "provider": "twilio",
        "messageId": "SM1",
        "status": "sent",
        "updatedAt": "1800000000",
    }


def test_a_callback_updates_only_its_own_message(dynamodb: Any, stack: Stack, challenge_id: str) -> None:
    table = stack.table
    record_delivery(dynamodb, table, challenge_id, "twilio", "SM1", "sent", 1)
    # A resend through another provider replaces the record
    record_delivery(dynamodb, table, challenge_id, "vonage", "V2", "sent", 2)

    # A late callback about the first message changes nothing; one about the current message is recorded
    assert not record_delivery(dynamodb, table, challenge_id, "twilio", "SM1", "delivered", 3, callback=True)
    assert record_delivery(dynamodb, table, challenge_id, "vonage", "V2", "failed", 4, callback=True)
    assert delivery_of(dynamodb, table, challenge_id) == {
        "provider": "vonage",
        "messageId": "V2",
        "status": "failed",
        "updatedAt": "4",
    }


def test_a_late_send_record_never_hides_the_outcome(dynamodb: Any, stack: Stack, challenge_id: str) -> None:
    table = stack.table
    record_delivery(dynamodb, table, challenge_id, "twilio", "SM1", "sent", 1)
    record_delivery(dynamodb, table, challenge_id, "twilio", "SM1", "delivered", 2, callback=True)
    assert not record_delivery(dynamodb, table, challenge_id, "twilio", "SM1", "sent", 3)
    assert delivery_of(dynamodb, table, challenge_id)["status"] == "delivered"


def test_an_unknown_challenge_gets_no_record(dynamodb: Any, stack: Stack) -> None:
    unknown = str(uuid.uuid4())
    assert not record_delivery(dynamodb, stack.table, unknown, "twilio", "SM1", "sent", 1)
    assert not record_delivery(dynamodb, stack.table, unknown, "twilio", "SM1", "delivered", 1, callback=True)
    assert "Item" not in dynamodb.get_item(
        TableName=stack.table, Key={"pk": {"S": f"CHL#{unknown}"}, "sk": {"S": "CHL"}}
    )


def test_the_recorder_records_a_send_and_never_raises(dynamodb: Any, stack: Stack, challenge_id: str) -> None:
    DeliveryRecorder(dynamodb, stack.table).record_sent(challenge_id, SentSms("sns", "m-1"), 7)
    assert delivery_of(dynamodb, stack.table, challenge_id)["messageId"] == "m-1"

    # A table that does not exist: logged, not raised (the SMS is already out)
    DeliveryRecorder(dynamodb, "no-such-table").record_sent(challenge_id, SentSms("sns", "m-2"), 8)
    assert delivery_of(dynamodb, stack.table, challenge_id)["messageId"] == "m-1"


def test_unknown_statuses_are_refused(dynamodb: Any, stack: Stack, challenge_id: str) -> None:
    with pytest.raises(ValueError):
        record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "queued", 1)


# ---------------------------------------------------------------------------------------------- callbacks


@pytest.fixture
def callbacks(stack: Stack, policy: Callable[..., None]) -> None:
    """A provider secret in moto, named by SMS_PROVIDER_SECRET_ID."""
    name = f"sms-providers-{uuid.uuid4().hex[:8]}"
    secret = {"twilio": {"authToken": TWILIO_TOKEN}, "webhook": {"url": "https://hooks.test", "secret": WEBHOOK_SECRET}}
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(secret))
    policy(sms_provider_secret_id=name)


Change = Callable[[dict[str, Any]], object]


def chain(*changes: Change) -> Change:
    def change(event: dict[str, Any]) -> None:
        for each in changes:
            each(event)

    return change


def invoke(event_name: str, change: Change, *, raw: Change | None = None) -> tuple[int, Any]:
    """Run the function on ``event_name`` changed by ``change``; ``raw`` then edits the final event as is
    (repeated headers, base64 bodies), after ``multiValueHeaders`` is derived from ``headers``."""
    event = copy.deepcopy(json.loads((ROOT / "events" / f"{event_name}.json").read_text()))
    change(event)
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    if raw is not None:
        raw(event)
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    module = importlib.import_module("functions.delivery_status.app")
    context = LambdaContext(
        function_name="delivery_status",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:delivery_status",
        aws_request_id=str(uuid.uuid4()),
    )
    result = module.lambda_handler(event, context)
    body = result.get("body")
    return result["statusCode"], json.loads(body) if body else None


def twilio_event(challenge: str, status: str, *, token: str = TWILIO_TOKEN, sid: str = "SM1") -> Callable[..., None]:
    params = [("MessageSid", sid), ("MessageStatus", status), ("SmsSid", sid), ("To", "+64211234567")]

    def change(event: dict[str, Any]) -> None:
        url = twilio_callback_url(f"https://{HOST}/api", challenge)
        event["headers"]["X-Twilio-Signature"] = twilio_signature(token, url, params)
        event["queryStringParameters"] = {"challengeId": challenge}
        event["multiValueQueryStringParameters"] = {"challengeId": [challenge]}
        event["body"] = urlencode(params)

    return change


def test_a_signed_twilio_callback_records_the_outcome(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "sent", 1)

    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "undelivered"))

    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "failed"


def test_a_replayed_twilio_callback_changes_nothing(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "sent", 1)
    invoke("delivery_status_twilio", twilio_event(challenge_id, "delivered"))
    first = delivery_of(dynamodb, stack.table, challenge_id)
    # A resend through Twilio makes a new message; the old message's callback, replayed, cannot touch it
    record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM2", "sent", 5)

    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "delivered"))

    assert status == 204
    assert first["status"] == "delivered"
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "sent"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda event: event.update(body=event["body"].replace("undelivered", "delivered")),
        lambda event: event["headers"].update({"X-Twilio-Signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}),
        lambda event: event["headers"].pop("X-Twilio-Signature"),
        lambda event: event.update(
            queryStringParameters={"challengeId": "00000000-0000-4000-8000-000000000000"},
            multiValueQueryStringParameters={"challengeId": ["00000000-0000-4000-8000-000000000000"]},
        ),
    ],
    ids=["body", "signature", "no-signature", "other-challenge"],
)
def test_a_tampered_twilio_callback_is_unauthorized(
    tamper: Change, callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "sent", 1)
    sign = twilio_event(challenge_id, "undelivered")

    status, body = invoke("delivery_status_twilio", chain(sign, tamper))

    assert status == 401
    assert body["code"] == "UNAUTHORIZED"
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "sent"


def test_a_twilio_callback_signed_with_another_token_is_unauthorized(callbacks: None, challenge_id: str) -> None:
    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "delivered", token="not-the-token"))
    assert status == 401


def test_twilio_progress_reports_are_acknowledged_and_ignored(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "sent", 1)
    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "queued"))
    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id)["updatedAt"] == "1"


def webhook_event(document: dict[str, Any], *, at: int | None = None, secret: str = WEBHOOK_SECRET) -> Any:
    def change(event: dict[str, Any]) -> None:
        body = json.dumps(document)
        timestamp = str(int(time.time()) if at is None else at)
        event["headers"]["X-Otp-Timestamp"] = timestamp
        event["headers"]["X-Otp-Signature"] = webhook_signature(secret, timestamp, body.encode())
        event["body"] = body

    return change


def test_a_signed_webhook_callback_records_the_outcome(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    record_delivery(dynamodb, stack.table, challenge_id, "webhook", "wh-1", "sent", 1)
    report = {"challengeId": challenge_id, "messageId": "wh-1", "status": "delivered"}

    status, _ = invoke("delivery_status_webhook", webhook_event(report))

    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "delivered"


@pytest.mark.parametrize(
    "change",
    [
        webhook_event({"challengeId": "x", "status": "delivered"}, at=int(time.time()) - 3600),
        webhook_event({"challengeId": "x", "status": "delivered"}, secret="wrong-secret"),
    ],
    ids=["replayed", "wrong-secret"],
)
def test_an_old_or_forged_webhook_callback_is_unauthorized(change: Any, callbacks: None) -> None:
    status, body = invoke("delivery_status_webhook", change)
    assert status == 401
    assert body["code"] == "UNAUTHORIZED"


def test_a_tampered_webhook_body_is_unauthorized(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    record_delivery(dynamodb, stack.table, challenge_id, "webhook", "wh-1", "sent", 1)
    sign = webhook_event({"challengeId": challenge_id, "messageId": "wh-1", "status": "delivered"})

    status, _ = invoke(
        "delivery_status_webhook", chain(sign, lambda event: event.update(body=event["body"].replace("deliv", "fail")))
    )

    assert status == 401
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "sent"


def test_a_signed_but_malformed_webhook_report_is_invalid(callbacks: None) -> None:
    status, body = invoke("delivery_status_webhook", webhook_event({"challengeId": "nope", "status": "lost"}))
    assert status == 400
    assert body["code"] == "INVALID_REQUEST"


def test_an_unknown_provider_is_not_found(callbacks: None) -> None:
    def other(event: dict[str, Any]) -> None:
        event["path"] = "/v1/delivery-status/pigeon"
        event["pathParameters"] = {"provider": "pigeon"}

    status, body = invoke("delivery_status_webhook", other)
    assert status == 404
    assert body["code"] == "NOT_FOUND"


def test_callbacks_are_not_found_without_a_provider_secret(stack: Stack, challenge_id: str) -> None:
    status, body = invoke("delivery_status_twilio", twilio_event(challenge_id, "delivered"))
    assert status == 404
    assert body["code"] == "NOT_FOUND"


def test_twilio_is_verified_against_the_configured_public_url(
    callbacks: None, policy: Callable[..., None], dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    # Given a custom domain in front of the API, configured as the callback base URL
    policy(delivery_callback_base_url="https://otp.example.com")
    record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "sent", 1)
    params = [("MessageSid", "SM1"), ("MessageStatus", "delivered")]
    url = twilio_callback_url("https://otp.example.com", challenge_id)

    def signed_for_custom_domain(event: dict[str, Any]) -> None:
        twilio_event(challenge_id, "delivered")(event)
        event["body"] = urlencode(params)
        event["headers"]["X-Twilio-Signature"] = twilio_signature(TWILIO_TOKEN, url, params)

    status, _ = invoke("delivery_status_twilio", signed_for_custom_domain)

    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "delivered"


# ---------------------------------------------------------------------------------------------- hostile input


def _header(name: str, value: str) -> Change:
    """Set one header to ``value`` in both ``headers`` and ``multiValueHeaders``, as API Gateway would."""

    def change(event: dict[str, Any]) -> None:
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]

    return change


def _repeated(name: str, junk: str = "0" * 64) -> Change:
    """Send header ``name`` twice: API Gateway keeps the last in ``headers``, both in ``multiValueHeaders``.

    The valid value stays the one in ``headers``, so a handler reading only that map would accept the request.
    """

    def change(event: dict[str, Any]) -> None:
        valid = event["headers"][name]
        event["multiValueHeaders"][name] = [junk, valid]

    return change


def _body(value: str, *, base64_encoded: bool = False) -> Change:
    def change(event: dict[str, Any]) -> None:
        event["body"] = value
        event["isBase64Encoded"] = base64_encoded

    return change


def _arabic_indic(text: str) -> str:
    return "".join(chr(0x0660 + int(char)) for char in text)


def _now_in_arabic_indic(event: dict[str, Any]) -> None:
    # int() reads these digits as the current time: the old check let them through to an ASCII encode
    _header("X-Otp-Timestamp", _arabic_indic(event["headers"]["X-Otp-Timestamp"]))(event)


HOSTILE_WEBHOOK: dict[str, Change] = {
    "timestamp superscript two": _header("X-Otp-Timestamp", "\u00b2"),
    "timestamp arabic-indic digits": _now_in_arabic_indic,
    "timestamp fullwidth digits": _header("X-Otp-Timestamp", "\uff11\uff17\uff19\uff15"),
    "timestamp overlong": _header("X-Otp-Timestamp", "9" * 5000),
    "signature non-ascii": _header("X-Otp-Signature", "\u00e9" * 64),
    "signature lone surrogate": _header("X-Otp-Signature", "\ud800" * 64),
    "signature overlong": _header("X-Otp-Signature", "a" * 100_000),
    "signature repeated": _repeated("X-Otp-Signature"),
    "timestamp repeated": _repeated("X-Otp-Timestamp", "1"),
    "body not base64": _body("!!not-base64!!", base64_encoded=True),
    "body lone surrogate": _body('{"challengeId": "\ud800"}'),
}


@pytest.mark.parametrize("hostile", list(HOSTILE_WEBHOOK.values()), ids=list(HOSTILE_WEBHOOK))
def test_hostile_webhook_headers_and_bodies_are_401_and_record_nothing(
    hostile: Change, callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    # Given a sent message and a correctly signed report about it
    record_delivery(dynamodb, stack.table, challenge_id, "webhook", "wh-1", "sent", 1)
    sign = webhook_event({"challengeId": challenge_id, "messageId": "wh-1", "status": "delivered"})

    # When a header or the body is replaced by something no provider sends
    status, body = invoke("delivery_status_webhook", sign, raw=hostile)

    # Then the request is unauthorized (never a 500), and the record is unchanged
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "sent"


def _query(value: Any) -> Change:
    def change(event: dict[str, Any]) -> None:
        event["queryStringParameters"] = {"challengeId": value}
        event["multiValueQueryStringParameters"] = {"challengeId": [value]}

    return change


HOSTILE_TWILIO: dict[str, Change] = {
    "signature non-ascii": _header("X-Twilio-Signature", "\u00e9" * 28),
    "signature lone surrogate": _header("X-Twilio-Signature", "\udc80" * 28),
    "signature overlong": _header("X-Twilio-Signature", "A" * 100_000),
    "signature repeated": _repeated("X-Twilio-Signature", "A" * 27 + "="),
    "host lone surrogate": _header("Host", "\udc80.example"),
    "challenge lone surrogate": _query("\ud800"),
    "challenge non-ascii": _query("\u00e9" * 36),
    "challenge not a string": _query(None),
    "body lone surrogate": _body("MessageStatus=delivered&MessageSid=\ud800"),
    "body not base64": _body("%%%", base64_encoded=True),
    "body not utf-8": _body(base64.b64encode(b"MessageStatus=delivered&x=\xff").decode(), base64_encoded=True),
    "body too many fields": _body("&".join(f"f{index}=x" for index in range(500))),
}


@pytest.mark.parametrize("hostile", list(HOSTILE_TWILIO.values()), ids=list(HOSTILE_TWILIO))
def test_hostile_twilio_headers_queries_and_bodies_are_401_and_record_nothing(
    hostile: Change, callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    # Given a sent message and a correctly signed Twilio callback about it
    record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "sent", 1)
    sign = twilio_event(challenge_id, "undelivered")

    # When a header, the query or the body is replaced by something Twilio never sends
    status, body = invoke("delivery_status_twilio", sign, raw=hostile)

    # Then the request is unauthorized (never a 500), and the record is unchanged
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "sent"


def test_a_signed_base64_webhook_report_is_verified_over_its_bytes(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    # Given a correctly signed report delivered base64-encoded (a binary media type on the API)
    record_delivery(dynamodb, stack.table, challenge_id, "webhook", "wh-1", "sent", 1)
    sign = webhook_event({"challengeId": challenge_id, "messageId": "wh-1", "status": "failed"})

    def as_base64(event: dict[str, Any]) -> None:
        event["body"] = base64.b64encode(event["body"].encode()).decode()
        event["isBase64Encoded"] = True

    # When it is received, then it is recorded
    status, _ = invoke("delivery_status_webhook", sign, raw=as_base64)
    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "failed"


def test_a_signed_twilio_callback_with_a_repeated_status_changes_nothing(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    # Given a callback signed over two MessageStatus values (Twilio sends one; which would be meant?)
    record_delivery(dynamodb, stack.table, challenge_id, "twilio", "SM1", "sent", 1)
    params = [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("MessageStatus", "undelivered")]
    url = twilio_callback_url(f"https://{HOST}/api", challenge_id)

    def signed_twice(event: dict[str, Any]) -> None:
        twilio_event(challenge_id, "delivered")(event)
        event["body"] = urlencode(params)
        event["headers"]["X-Twilio-Signature"] = twilio_signature(TWILIO_TOKEN, url, params)

    # When it is received, then it is acknowledged and ignored
    status, _ = invoke("delivery_status_twilio", signed_twice)
    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id)["status"] == "sent"
