"""Delivery-status callbacks in the core: the request as received, the provider secret, the use case over fakes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from otp_core.errors import DependencyError, InvalidRequestError, NotFoundError, UnauthorizedError
from otp_core.records import Challenge, ChallengeState
from otp_core.sms.callbacks import CallbackRequest, DeliveryReport
from otp_core.sms.reports import DeliveryReports
from otp_core.sms.secret import ProviderSecret
from otp_core.sms.vendors.twilio import twilio_callback_url, twilio_signature
from otp_core.sms.vendors.webhook import webhook_signature
from tests.fakes import FakeClock, FakeDeliveryLog

CHALLENGE_ID = "3f2b8c1e-7d4a-4e6b-9a0c-5b1d2e3f4a5b"
BASE = "https://otp.example.com"
TOKEN = "twilio-token"
SECRET_ID = "sms-providers"
SECRET = {"twilio": {"authToken": TOKEN}, "webhook": {"secret": "webhook-secret"}}


def reports(
    log: FakeDeliveryLog, secret: Any = SECRET, *, secret_id: str = SECRET_ID, clock: FakeClock | None = None
) -> DeliveryReports:
    text = secret if isinstance(secret, str) else json.dumps(secret)
    return DeliveryReports(
        ProviderSecret(secret_id, lambda _: text), log, clock or FakeClock(), base_url=BASE, tolerance_seconds=300
    )


def challenge(resends: int = 0, state: ChallengeState = ChallengeState.PENDING) -> Challenge:
    return Challenge(
        challenge_id=CHALLENGE_ID,
        phone_number="+14155552671",
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
        created_at=1,
        expires_at=601,
        max_attempts=3,
        resends=resends,
        state=state,
        region="US",
    )


def sent_by(provider: str, message_id: str, **fields: Any) -> FakeDeliveryLog:
    """A challenge whose SMS went out (nothing is recorded at send: the message carries its challenge)."""
    return FakeDeliveryLog(challenge(**fields))


def twilio_request(status: str, *, sid: str = "SM1", token: str = TOKEN, send: int | None = 0) -> CallbackRequest:
    params = [("MessageSid", sid), ("MessageStatus", status)]
    signature = twilio_signature(token, twilio_callback_url(BASE, CHALLENGE_ID, send), params)
    query = {"challengeId": [CHALLENGE_ID]} if send is None else {"challengeId": [CHALLENGE_ID], "send": [str(send)]}
    event = {
        "headers": {"X-Twilio-Signature": signature},
        "multiValueQueryStringParameters": query,
        "body": urlencode(params),
    }
    return CallbackRequest.from_event(event)


def webhook_request(document: dict[str, Any], at: int) -> CallbackRequest:
    body = json.dumps(document)
    headers = {
        "X-Otp-Timestamp": str(at),
        "X-Otp-Signature": webhook_signature("webhook-secret", str(at), body.encode()),
    }
    return CallbackRequest.from_event({"headers": headers, "body": body})


# ---------------------------------------------------------------------------------------------- the use case


def test_a_signed_twilio_outcome_is_recorded_on_its_send() -> None:
    # Given a message Twilio accepted
    log = sent_by("twilio", "SM1")

    # When its signed "undelivered" callback arrives
    report = reports(log, clock=FakeClock(500)).receive("twilio", twilio_request("undelivered"))

    # Then the failure is recorded on that send, at the service's time, and counted as undelivered
    assert report == DeliveryReport(CHALLENGE_ID, "SM1", "failed", 0)
    assert log.outcomes == [(CHALLENGE_ID, "twilio", "SM1", "failed", 0, 500)]
    assert log.undelivered[CHALLENGE_ID] == 1


def test_a_replayed_receipt_or_one_of_an_earlier_send_records_nothing() -> None:
    # Given a challenge resent once
    log = sent_by("twilio", "SM2", resends=1)
    # When the first send's receipt arrives late, it changes nothing
    reports(log).receive("twilio", twilio_request("delivered", sid="SM1", send=0))
    assert log.outcomes == []
    # And the latest send's receipt is recorded once, however often it is posted
    for _ in range(3):
        reports(log).receive("twilio", twilio_request("undelivered", sid="SM2", send=1))
    assert [outcome[3:5] for outcome in log.outcomes] == [("failed", 1)]
    assert log.undelivered[CHALLENGE_ID] == 1


class Feedback:
    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def converted(self, provider: str, message_id: str) -> None:
        self.told.append((provider, message_id))


def test_a_delivered_receipt_after_the_verify_gives_the_conversion_feedback() -> None:
    # Given a challenge verified before its receipt arrived, and one still pending
    told = Feedback()
    for state, expected in ((ChallengeState.VERIFIED, [("twilio", "SM1")]), (ChallengeState.PENDING, [])):
        log = sent_by("twilio", "SM1", state=state)
        receiver = DeliveryReports(
            ProviderSecret(SECRET_ID, lambda _: json.dumps(SECRET)),
            log,
            FakeClock(),
            base_url=BASE,
            tolerance_seconds=300,
            feedback=told,  # type: ignore[arg-type]
        )
        told.told.clear()
        receiver.receive("twilio", twilio_request("delivered"))
        # Then only the verified one's provider hears that its message converted
        assert told.told == expected


def test_a_progress_report_changes_nothing() -> None:
    log = sent_by("twilio", "SM1")
    assert reports(log).receive("twilio", twilio_request("sending")) is None
    assert log.outcomes == []


def test_a_callback_signed_with_another_token_is_unauthorized() -> None:
    log = sent_by("twilio", "SM1")
    with pytest.raises(UnauthorizedError):
        reports(log).receive("twilio", twilio_request("delivered", token="not-the-token"))
    assert log.outcomes == []


def test_a_signed_webhook_report_is_recorded_and_a_malformed_one_is_invalid() -> None:
    clock = FakeClock()
    log = sent_by("webhook", "wh-1")
    good = {"challengeId": CHALLENGE_ID, "messageId": "wh-1", "status": "delivered"}

    assert reports(log, clock=clock).receive("webhook", webhook_request(good, clock.now())) is not None
    assert log.outcomes[-1][3] == "delivered"

    # Signed, but not a report: 400 naming the fields, and nothing recorded
    with pytest.raises(InvalidRequestError) as caught:
        reports(log, clock=clock).receive("webhook", webhook_request({"challengeId": "nope"}, clock.now()))
    assert {error.field for error in caught.value.errors} == {"challengeId", "status"}
    assert len(log.outcomes) == 1


@pytest.mark.parametrize(
    ("provider", "secret", "secret_id"),
    [
        ("pigeon", SECRET, SECRET_ID),  # no such provider
        ("bird", SECRET, SECRET_ID),  # a provider without callbacks
        ("twilio", SECRET, ""),  # no provider secret in this stack
        ("twilio", {"webhook": {"secret": "s"}}, SECRET_ID),  # no credential for this provider
        ("twilio", {"twilio": {"authToken": ""}}, SECRET_ID),
    ],
    ids=["unknown", "no-callbacks", "no-secret", "no-section", "empty-token"],
)
def test_callbacks_without_a_reader_or_a_credential_are_not_found(provider: str, secret: Any, secret_id: str) -> None:
    with pytest.raises(NotFoundError):
        reports(FakeDeliveryLog(), secret, secret_id=secret_id).receive(provider, twilio_request("delivered"))


@pytest.mark.parametrize("secret", ["not json", "[1, 2]"])
def test_an_unusable_secret_is_unavailable_without_saying_why(secret: str) -> None:
    with pytest.raises(DependencyError) as caught:
        reports(FakeDeliveryLog(), secret).receive("twilio", twilio_request("delivered"))
    assert caught.value.detail == "delivery status is unavailable; retry later"


# ---------------------------------------------------------------------------------------------- the request


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"headers": None, "multiValueHeaders": None, "body": None, "requestContext": None},
        {"headers": ["x"], "multiValueHeaders": "x", "body": 12, "multiValueQueryStringParameters": []},
        {"body": "!!", "isBase64Encoded": True},
        {"body": "\ud800"},
        {"multiValueHeaders": {1: ["x"], "Host": "not-a-list"}, "path": 7},
    ],
    ids=["empty", "nulls", "wrong-types", "bad-base64", "lone-surrogate", "odd-keys"],
)
def test_reading_any_event_never_raises(event: dict[str, Any]) -> None:
    request = CallbackRequest.from_event(event)
    assert request.header("X-Twilio-Signature") is None
    assert request.query_values("challengeId") is None


def test_a_repeated_header_has_no_value_and_an_undecodable_body_is_unauthorized() -> None:
    request = CallbackRequest.from_event(
        {
            "headers": {"X-Otp-Signature": "b"},
            "multiValueHeaders": {"X-Otp-Signature": ["a", "b"], "host": ["api.example.com"]},
            "body": "%%%",
            "isBase64Encoded": True,
            "requestContext": {"path": "/prod/v1/delivery-status/twilio"},
        }
    )
    assert request.header("x-otp-signature") is None
    assert request.url() == "https://api.example.com/prod/v1/delivery-status/twilio"
    with pytest.raises(UnauthorizedError):
        request.signed_body()


def test_the_signed_query_must_hold_only_the_expected_values_each_once() -> None:
    def query(values: Any) -> dict[str, str] | None:
        request = CallbackRequest.from_event({"multiValueQueryStringParameters": values})
        return request.query_values("challengeId", optional=("send",))

    assert query({"challengeId": ["a"]}) == {"challengeId": "a"}
    assert query({"challengeId": ["a"], "send": ["2"]}) == {"challengeId": "a", "send": "2"}
    assert query({"challengeId": ["a", "b"]}) is None
    assert query({"challengeId": ["a"], "other": ["x"]}) is None
    assert query({"send": ["1"]}) is None
    assert query({"challengeId": [None]}) is None


# ---------------------------------------------------------------------------------------------- conversion feedback


def test_a_verify_after_the_delivered_receipt_tells_the_provider_once(world: Any) -> None:
    import dataclasses

    from otp_core.records import Delivery
    from otp_core.service import CodeChecker

    # Given a challenge whose receipt (with the provider's message ID) arrived before the code
    challenge = world.starter.create(world.policy, action="signIn", phone_number="+14155552671")
    code = world.sender.last_code()
    delivered = Delivery("delivered", "eum", "m-123", challenge.resends)
    world.repository.challenges[challenge.challenge_id] = dataclasses.replace(challenge, delivery=delivered)
    told = Feedback()
    checker = CodeChecker(world.repository, world.identities, world.clock, world.codes, told)  # type: ignore[arg-type]

    # When a wrong code, then the right one, are entered
    assert not checker.check_code(
        challenge.challenge_id, "000000" if code != "000000" else "111111", world.policy
    ).verified
    assert told.told == []
    assert checker.check_code(challenge.challenge_id, code, world.policy).verified

    # Then the provider hears that its message converted, once
    assert told.told == [("eum", "m-123")]


def test_no_feedback_for_an_undelivered_or_an_earlier_send_s_receipt(world: Any) -> None:
    import dataclasses

    from otp_core.records import Delivery
    from otp_core.service import CodeChecker

    for delivery in (Delivery("failed", "eum", "m-1", 0), Delivery("delivered", "eum", "m-1", 5), None):
        challenge = world.starter.create(world.policy, action="signIn", phone_number="+14155552672")
        code = world.sender.last_code()
        world.repository.challenges[challenge.challenge_id] = dataclasses.replace(challenge, delivery=delivery)
        told = Feedback()
        checker = CodeChecker(world.repository, world.identities, world.clock, world.codes, told)  # type: ignore[arg-type]
        assert checker.check_code(challenge.challenge_id, code, world.policy).verified
        assert told.told == [], delivery
        world.clock.advance(3600)


def test_feedback_that_fails_never_fails_the_verify() -> None:
    from otp_core.sms.feedback import ProviderFeedback

    def broken() -> Any:
        def call(message_id: str) -> bool:
            raise TimeoutError("the provider did not answer")

        return call

    built: list[str] = []

    def counting() -> Any:
        built.append("eum")
        return lambda message_id: True

    feedback = ProviderFeedback({"twilio": broken, "eum": counting})
    feedback.converted("twilio", "SM1")  # swallowed, logged
    feedback.converted("eum", "m-1")
    feedback.converted("eum", "m-2")
    feedback.converted("vonage", "v-1")  # a provider without feedback: nothing
    assert built == ["eum"]  # each provider's call is built once, on its first feedback
