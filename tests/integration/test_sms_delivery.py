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
from otp_core.adapters.dynamodb import from_item, to_item
from otp_core.adapters.fraud_items import creation_slots
from otp_core.errors import DependencyError
from otp_core.records import Challenge, ChallengeState, Delivery
from otp_core.sms.breaker import CircuitBreaker, CircuitStatus
from otp_core.sms.circuit_store import DynamoCircuitStore, circuit_key
from otp_core.sms.delivery import DeliveryRecorder
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


def put_challenge(dynamodb: Any, table: str, *, resends: int = 0, state: str = "PENDING", **fields: Any) -> str:
    """A stored challenge item as the repository writes it, counted in the fraud buckets of an app of its own (so
    no other test's counts share its buckets)."""
    challenge = Challenge(
        challenge_id=str(uuid.uuid4()),
        phone_number="+64211234567",
        action="signIn",
        user_id=None,
        scope=None,
        code_hash="h",
        code_mask="m" * 6,
        number_key="n",
        ip_key=None,
        message=None,
        sender_id=None,
        locale=None,
        created_at=int(time.time()),
        expires_at=int(time.time()) + 600,
        max_attempts=3,
        resends=resends,
        state=ChallengeState(state),
        region="NZ",
        fraud_app=f"t{uuid.uuid4().hex[:12]}",
        **fields,
    )
    dynamodb.put_item(TableName=table, Item=to_item(challenge, challenge.expires_at))
    return challenge.challenge_id


@pytest.fixture
def challenge_id(stack: Stack, dynamodb: Any) -> str:
    """A stored challenge whose SMS went out (nothing is recorded at send: the message carries the challenge)."""
    return put_challenge(dynamodb, stack.table)


def delivery_of(dynamodb: Any, table: str, challenge: str) -> dict[str, str] | None:
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"CHL#{challenge}"}, "sk": {"S": "CHL"}})["Item"]
    if "delivery" not in item:
        return None
    return {name: next(iter(value.values())) for name, value in item["delivery"]["M"].items()}


def undelivered(dynamodb: Any, table: str, challenge: str) -> int:
    """The ``u`` counts of the challenge's creation slots, over its buckets (hour and day items)."""
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"CHL#{challenge}"}, "sk": {"S": "CHL"}})["Item"]
    found = from_item(item)
    assert found.region is not None and found.fraud_app is not None
    total = 0
    for key, slot, _ in creation_slots(
        found.fraud_app, found.phone_number, found.region, found.challenge_id, found.created_at, int(time.time())
    ):
        counts = dynamodb.get_item(TableName=table, Key=key).get("Item", {})
        total += int(counts.get(f"u{slot}", {"N": "0"})["N"])
    return total


def test_a_receipt_is_recorded_on_its_send_without_body_or_code(dynamodb: Any, stack: Stack, challenge_id: str) -> None:
    recorder = DeliveryRecorder(dynamodb, stack.table)
    recorded = recorder.record_outcome(challenge_id, "twilio", "SM1", "delivered", 0, 1_800_000_000)
    assert recorded is not None and recorded.delivery == Delivery("delivered", "twilio", "SM1", 0)
    assert delivery_of(dynamodb, stack.table, challenge_id) == {
        "provider": "twilio",
        "messageId": "SM1",
        "status": "delivered",
        "send": "0",
        "updatedAt": "1800000000",
    }
    # Delivered: nothing is counted against the buckets
    assert undelivered(dynamodb, stack.table, challenge_id) == 0


def test_only_the_latest_send_s_receipt_is_recorded_and_only_once(dynamodb: Any, stack: Stack) -> None:
    # Given a challenge resent once
    table = stack.table
    challenge = put_challenge(dynamodb, table, resends=1)
    recorder = DeliveryRecorder(dynamodb, table)

    # A late receipt of the first send changes nothing
    assert recorder.record_outcome(challenge, "twilio", "SM1", "delivered", 0, 3) is None
    assert delivery_of(dynamodb, table, challenge) is None
    # The latest send's is recorded, and counted undelivered in the challenge's buckets (country and block), once
    assert recorder.record_outcome(challenge, "vonage", "V2", "failed", 1, 4) is not None
    for replay in range(3):
        assert recorder.record_outcome(challenge, "vonage", "V2", "failed", 1, 5 + replay) is None
    assert recorder.record_outcome(challenge, "vonage", "V2", "delivered", 1, 9) is None
    assert delivery_of(dynamodb, table, challenge) == {
        "provider": "vonage",
        "messageId": "V2",
        "status": "failed",
        "send": "1",
        "updatedAt": "4",
    }
    # One in the hour item and one in the day item of each of its two buckets (the country and the block)
    assert undelivered(dynamodb, table, challenge) == 4


def test_a_later_send_delivered_takes_the_undelivered_count_back(dynamodb: Any, stack: Stack) -> None:
    table = stack.table
    challenge = put_challenge(dynamodb, table)
    recorder = DeliveryRecorder(dynamodb, table)
    assert recorder.record_outcome(challenge, "twilio", "SM1", "failed", 0, 1) is not None
    counted = undelivered(dynamodb, table, challenge)
    assert counted > 0
    # The user asks for a new code, and this one arrives
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"CHL#{challenge}"}, "sk": {"S": "CHL"}},
        UpdateExpression="SET resends = :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    assert recorder.record_outcome(challenge, "twilio", "SM2", "delivered", 1, 2) is not None
    assert undelivered(dynamodb, table, challenge) == 0


def test_concurrent_receipts_of_one_send_are_recorded_and_counted_once(dynamodb: Any, stack: Stack) -> None:
    table = stack.table
    challenge = put_challenge(dynamodb, table)
    recorders = [DeliveryRecorder(boto3.client("dynamodb"), table) for _ in range(8)]
    results: list[object] = []

    def receive(recorder: DeliveryRecorder) -> None:
        results.append(recorder.record_outcome(challenge, "eum", "m-1", "failed", 0, 7))

    threads = [threading.Thread(target=receive, args=(recorder,)) for recorder in recorders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) == 1
    assert undelivered(dynamodb, table, challenge) == 4


def test_a_test_number_s_or_an_uncounted_challenge_s_failure_counts_in_no_bucket(dynamodb: Any, stack: Stack) -> None:
    table = stack.table
    challenge = put_challenge(dynamodb, table, test=True)
    assert DeliveryRecorder(dynamodb, table).record_outcome(challenge, "webhook", None, "failed", 0, 1) is not None
    assert undelivered(dynamodb, table, challenge) == 0


def test_an_unknown_challenge_gets_no_record(dynamodb: Any, stack: Stack) -> None:
    unknown = str(uuid.uuid4())
    assert DeliveryRecorder(dynamodb, stack.table).record_outcome(unknown, "twilio", "SM1", "delivered", 0, 1) is None
    assert "Item" not in dynamodb.get_item(
        TableName=stack.table, Key={"pk": {"S": f"CHL#{unknown}"}, "sk": {"S": "CHL"}}
    )


def test_unknown_statuses_are_refused(dynamodb: Any, stack: Stack, challenge_id: str) -> None:
    with pytest.raises(ValueError):
        DeliveryRecorder(dynamodb, stack.table).record_outcome(challenge_id, "twilio", "SM1", "queued", 0, 1)


def test_a_store_that_fails_is_a_dependency_error(dynamodb: Any, challenge_id: str) -> None:
    with pytest.raises(DependencyError):
        DeliveryRecorder(dynamodb, "no-such-table").record_outcome(challenge_id, "twilio", "SM1", "delivered", 0, 1)


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
        url = twilio_callback_url(f"https://{HOST}/api", challenge, 0)
        event["headers"]["X-Twilio-Signature"] = twilio_signature(token, url, params)
        event["queryStringParameters"] = {"challengeId": challenge, "send": "0"}
        event["multiValueQueryStringParameters"] = {"challengeId": [challenge], "send": ["0"]}
        event["body"] = urlencode(params)

    return change


def test_a_signed_twilio_callback_records_the_outcome(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "undelivered"))

    assert status == 204
    delivery = delivery_of(dynamodb, stack.table, challenge_id)
    assert delivery is not None and delivery["status"] == "failed"


def test_a_replayed_twilio_callback_changes_nothing(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    invoke("delivery_status_twilio", twilio_event(challenge_id, "delivered"))
    first = delivery_of(dynamodb, stack.table, challenge_id)

    # A replay of the same signed callback, even one that says otherwise, changes nothing
    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "delivered"))
    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id) == first
    # And after a resend (a new message, send 1), the first send's callback replayed cannot touch the challenge
    dynamodb.update_item(
        TableName=stack.table,
        Key={"pk": {"S": f"CHL#{challenge_id}"}, "sk": {"S": "CHL"}},
        UpdateExpression="SET resends = :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "undelivered"))
    assert status == 204
    assert first is not None and first["status"] == "delivered"
    assert delivery_of(dynamodb, stack.table, challenge_id) == first


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
    sign = twilio_event(challenge_id, "undelivered")

    status, body = invoke("delivery_status_twilio", chain(sign, tamper))

    assert status == 401
    assert body["code"] == "UNAUTHORIZED"
    assert delivery_of(dynamodb, stack.table, challenge_id) is None


def test_a_twilio_callback_signed_with_another_token_is_unauthorized(callbacks: None, challenge_id: str) -> None:
    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "delivered", token="not-the-token"))
    assert status == 401


def test_twilio_progress_reports_are_acknowledged_and_ignored(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    status, _ = invoke("delivery_status_twilio", twilio_event(challenge_id, "queued"))
    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id) is None


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
    report = {"challengeId": challenge_id, "send": 0, "messageId": "wh-1", "status": "delivered"}

    status, _ = invoke("delivery_status_webhook", webhook_event(report))

    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id) == {
        "provider": "webhook",
        "messageId": "wh-1",
        "status": "delivered",
        "send": "0",
        "updatedAt": delivery_of(dynamodb, stack.table, challenge_id)["updatedAt"],  # type: ignore[index]
    }


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
    sign = webhook_event({"challengeId": challenge_id, "messageId": "wh-1", "status": "delivered"})

    status, _ = invoke(
        "delivery_status_webhook", chain(sign, lambda event: event.update(body=event["body"].replace("deliv", "fail")))
    )

    assert status == 401
    assert delivery_of(dynamodb, stack.table, challenge_id) is None


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
    params = [("MessageSid", "SM1"), ("MessageStatus", "delivered")]
    url = twilio_callback_url("https://otp.example.com", challenge_id, 0)

    def signed_for_custom_domain(event: dict[str, Any]) -> None:
        twilio_event(challenge_id, "delivered")(event)
        event["body"] = urlencode(params)
        event["headers"]["X-Twilio-Signature"] = twilio_signature(TWILIO_TOKEN, url, params)

    status, _ = invoke("delivery_status_twilio", signed_for_custom_domain)

    assert status == 204
    delivery = delivery_of(dynamodb, stack.table, challenge_id)
    assert delivery is not None and delivery["status"] == "delivered"


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
    sign = webhook_event({"challengeId": challenge_id, "messageId": "wh-1", "status": "delivered"})

    # When a header or the body is replaced by something no provider sends
    status, body = invoke("delivery_status_webhook", sign, raw=hostile)

    # Then the request is unauthorized (never a 500), and the record is unchanged
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    assert delivery_of(dynamodb, stack.table, challenge_id) is None


def _query(value: Any) -> Change:
    def change(event: dict[str, Any]) -> None:
        event["queryStringParameters"] = {"challengeId": value, "send": "0"}
        event["multiValueQueryStringParameters"] = {"challengeId": [value], "send": ["0"]}

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
    "send not a number": lambda event: event["multiValueQueryStringParameters"].update(send=["\u0661"]),
    "send repeated": lambda event: event["multiValueQueryStringParameters"].update(send=["0", "0"]),
    "another parameter": lambda event: event["multiValueQueryStringParameters"].update(other=["x"]),
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
    sign = twilio_event(challenge_id, "undelivered")

    # When a header, the query or the body is replaced by something Twilio never sends
    status, body = invoke("delivery_status_twilio", sign, raw=hostile)

    # Then the request is unauthorized (never a 500), and the record is unchanged
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    assert delivery_of(dynamodb, stack.table, challenge_id) is None


def test_a_signed_base64_webhook_report_is_verified_over_its_bytes(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    # Given a correctly signed report delivered base64-encoded (a binary media type on the API)
    sign = webhook_event({"challengeId": challenge_id, "messageId": "wh-1", "status": "failed"})

    def as_base64(event: dict[str, Any]) -> None:
        event["body"] = base64.b64encode(event["body"].encode()).decode()
        event["isBase64Encoded"] = True

    # When it is received, then it is recorded
    status, _ = invoke("delivery_status_webhook", sign, raw=as_base64)
    assert status == 204
    delivery = delivery_of(dynamodb, stack.table, challenge_id)
    assert delivery is not None and delivery["status"] == "failed"


def test_a_signed_twilio_callback_with_a_repeated_status_changes_nothing(
    callbacks: None, dynamodb: Any, stack: Stack, challenge_id: str
) -> None:
    # Given a callback signed over two MessageStatus values (Twilio sends one; which would be meant?)
    params = [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("MessageStatus", "undelivered")]
    url = twilio_callback_url(f"https://{HOST}/api", challenge_id, 0)

    def signed_twice(event: dict[str, Any]) -> None:
        twilio_event(challenge_id, "delivered")(event)
        event["body"] = urlencode(params)
        event["headers"]["X-Twilio-Signature"] = twilio_signature(TWILIO_TOKEN, url, params)

    # When it is received, then it is acknowledged and ignored
    status, _ = invoke("delivery_status_twilio", signed_twice)
    assert status == 204
    assert delivery_of(dynamodb, stack.table, challenge_id) is None


def test_a_failure_recorded_before_receipts_named_their_send_takes_no_count_back(dynamodb: Any, stack: Stack) -> None:
    # Given a challenge whose record an older version wrote (failed, no send number, nothing counted), resent since
    table = stack.table
    challenge = put_challenge(dynamodb, table, resends=1)
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": f"CHL#{challenge}"}, "sk": {"S": "CHL"}},
        UpdateExpression="SET delivery = :old",
        ExpressionAttributeValues={
            ":old": {"M": {"provider": {"S": "twilio"}, "status": {"S": "failed"}, "updatedAt": {"N": "1"}}}
        },
    )
    # When the new send is delivered, it is recorded and no bucket goes below zero
    assert DeliveryRecorder(dynamodb, table).record_outcome(challenge, "twilio", "SM2", "delivered", 1, 2) is not None
    assert undelivered(dynamodb, table, challenge) == 0
