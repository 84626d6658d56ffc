"""Delivery-status callbacks in the core: the request as received, the provider secret, the use case over fakes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from otp_core.errors import DependencyError, InvalidRequestError, NotFoundError, UnauthorizedError
from otp_core.records import SentSms
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


def sent_by(provider: str, message_id: str) -> FakeDeliveryLog:
    log = FakeDeliveryLog()
    log.record_sent(CHALLENGE_ID, SentSms(provider, message_id), 1)
    return log


def twilio_request(status: str, *, sid: str = "SM1", token: str = TOKEN) -> CallbackRequest:
    params = [("MessageSid", sid), ("MessageStatus", status)]
    signature = twilio_signature(token, twilio_callback_url(BASE, CHALLENGE_ID), params)
    event = {
        "headers": {"X-Twilio-Signature": signature},
        "multiValueQueryStringParameters": {"challengeId": [CHALLENGE_ID]},
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

    # Then the failure is recorded on that send, at the service's time
    assert report == DeliveryReport(CHALLENGE_ID, "SM1", "failed")
    assert log.outcomes == [(CHALLENGE_ID, "twilio", "SM1", "failed", 500)]


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
        ("vonage", SECRET, SECRET_ID),  # a provider without callbacks
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
    assert request.only_query_value("challengeId") is None


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


def test_the_only_query_value_must_be_alone_and_single() -> None:
    def query(values: Any) -> str | None:
        return CallbackRequest.from_event({"multiValueQueryStringParameters": values}).only_query_value("challengeId")

    assert query({"challengeId": ["a"]}) == "a"
    assert query({"challengeId": ["a", "b"]}) is None
    assert query({"challengeId": ["a"], "other": ["x"]}) is None
    assert query({"challengeId": [None]}) is None
