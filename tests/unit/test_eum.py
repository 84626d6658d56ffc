"""The End User Messaging SMS adapter, driven through real botocore against the local fake on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pytest_socket import enable_socket, socket_allow_hosts

from local.vendors.eum import FEEDBACK, SEND, FakeEum, running_eum, validate
from otp_core.errors import InvalidPhoneNumberError
from otp_core.records import OutgoingSms
from otp_core.settings import Settings
from otp_core.sms.vendor import REJECTED_CONTENT, REJECTED_DESTINATION, ProviderError
from otp_core.sms.vendors import KNOWN_PROVIDERS, callback_class
from otp_core.sms.vendors.eum import (
    MAX_TTL_SECONDS,
    EumConfig,
    EumSmsSender,
    eum_client_config,
    parse_origination_identities,
)
from tests.fakes import EPOCH, FakeClock

CHALLENGE_ID = "3f2b8c1e-7d4a-4e6b-9a0c-5b1d2e3f4a5b"
GB = "+447700900123"
US = "+14155552671"
CODE = "493817"
BODY = f"{CODE} is your SMS OTP code. It expires in 10 minutes."
POOL_ARN = "arn:aws:sms-voice:us-east-1:111122223333:pool/pool-1"
IDENTITIES = {"US": POOL_ARN, "GB": "MyBrand", "*": "pool-2"}


@pytest.fixture(autouse=True)
def _loopback_only(_no_network: None) -> None:
    # The fake listens on 127.0.0.1; every other address stays blocked (pytest-socket resets this afterwards).
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEum]:
    with running_eum(region="us-east-1") as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeEum) -> Iterator[None]:
    fake.reset()
    yield
    # Whatever a test asked of the service, botocore must have spoken its protocol exactly.
    assert fake.problems == []


def make_client(fake: FakeEum, *, timeout: float = 2, url: str | None = None, secret_key: str | None = None) -> Any:
    return boto3.client(
        "pinpoint-sms-voice-v2",
        region_name="us-east-1",
        endpoint_url=url or fake.url,
        aws_access_key_id="testing",
        aws_secret_access_key=secret_key or "testing",
        config=eum_client_config(timeout),
    )


@pytest.fixture(scope="module")
def client(fake: FakeEum) -> Any:
    return make_client(fake)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def sender(client: Any, clock: FakeClock, **config: Any) -> EumSmsSender:
    return EumSmsSender(client, EumConfig(clock=clock, **config))


def sms(
    to: str = GB,
    *,
    region: str | None = "GB",
    sender_id: str | None = None,
    send: int = 0,
    expires_at: int | None = None,
    body: str = BODY,
) -> OutgoingSms:
    return OutgoingSms(
        to=to,
        body=body,
        sender_id=sender_id,
        challenge_id=CHALLENGE_ID,
        send=send,
        expires_at=expires_at,
        region=region,
    )


def assert_no_secrets(exc: BaseException, *secrets: str) -> None:
    """Nothing Python would print for ``exc`` (its message and those of the causes a traceback shows, not the
    source lines) quotes the number or the body."""
    printed = ""
    current: BaseException | None = exc
    while current is not None:
        printed += "".join(traceback.format_exception_only(current)) + repr(current) + repr(current.args)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    for secret in (GB, GB.lstrip("+"), US, BODY, CODE, *secrets):
        assert secret not in printed


# -- the request --------------------------------------------------------------------------------------------


def test_a_send_is_one_signed_json_request_with_every_configured_member(fake: FakeEum, client: Any, clock) -> None:
    adapter = sender(
        client,
        clock,
        origination_identities=IDENTITIES,
        configuration_set="otp-events",
        protect_configuration_id="protect-0123456789abcdef",
        max_price="0.05",
    )

    sent = adapter.send(sms(send=2, expires_at=EPOCH + 600))

    request = fake.last
    assert (request.method, request.path, request.operation) == ("POST", "/", SEND)
    assert request.headers["x-amz-target"] == "PinpointSMSVoiceV2.SendTextMessage"
    assert request.headers["content-type"] == "application/x-amz-json-1.0"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/sms-voice/aws4_request, SignedHeaders=" in request.headers["authorization"]
    assert request.json() == {
        "DestinationPhoneNumber": GB,
        "MessageBody": BODY,
        "MessageType": "TRANSACTIONAL",
        "OriginationIdentity": "MyBrand",
        "ConfigurationSetName": "otp-events",
        "ProtectConfigurationId": "protect-0123456789abcdef",
        "MaxPrice": "0.05",
        "TimeToLive": 600,
        "Context": {"challengeId": CHALLENGE_ID, "send": "2"},
        "MessageFeedbackEnabled": True,
    }
    assert sent.provider == "eum"
    assert sent.message_id in fake.messages
    assert len(fake.requests) == 1


def test_unset_options_are_left_out_of_the_request(fake: FakeEum, client: Any, clock) -> None:
    sender(client, clock, feedback=False).send(sms(US, region="US"))

    assert fake.last.json() == {
        "DestinationPhoneNumber": US,
        "MessageBody": BODY,
        "MessageType": "TRANSACTIONAL",
        "Context": {"challengeId": CHALLENGE_ID, "send": "0"},
    }


@pytest.mark.parametrize(
    ("to", "region", "sender_id", "identities", "expected"),
    [
        pytest.param(GB, "GB", None, IDENTITIES, "MyBrand", id="the-country's-identity"),
        pytest.param(US, "US", None, IDENTITIES, POOL_ARN, id="an-ARN"),
        pytest.param("+33612345678", "FR", None, IDENTITIES, "pool-2", id="star-for-other-countries"),
        pytest.param(GB, None, None, IDENTITIES, "pool-2", id="star-without-a-region"),
        pytest.param(GB, "GB", "Acme", IDENTITIES, "MyBrand", id="configured-before-the-sender-ID"),
        pytest.param(GB, "GB", "Acme", {"US": POOL_ARN}, "Acme", id="the-request's-sender-ID"),
        pytest.param(US, "US", "Acme", {"GB": "MyBrand"}, None, id="no-alphanumeric-towards-+1"),
        pytest.param(GB, "GB", None, {}, None, id="none-lets-the-service-pick"),
    ],
)
def test_the_origination_identity_is_the_countrys_then_star_then_the_sender_id(
    fake: FakeEum, client: Any, clock, to, region, sender_id, identities, expected
) -> None:
    sender(client, clock, origination_identities=identities).send(sms(to, region=region, sender_id=sender_id))

    assert fake.last.json().get("OriginationIdentity") == expected


def test_a_sender_id_that_cannot_be_an_identity_is_refused_without_a_request(fake: FakeEum, client: Any, clock) -> None:
    with pytest.raises(ProviderError) as raised:
        sender(client, clock).send(sms(sender_id="My Shop"))

    assert raised.value.reason == REJECTED_CONTENT
    assert not raised.value.counts_against_circuit
    assert fake.requests == []


@pytest.mark.parametrize(
    ("remaining", "ttl"),
    [(600, 600), (5, 5), (4, 5), (0, 5), (-300, 5), (MAX_TTL_SECONDS, MAX_TTL_SECONDS), (10 * 86_400, 259_200)],
)
def test_the_time_to_live_is_the_codes_remaining_lifetime_within_the_services_bounds(
    fake: FakeEum, client: Any, clock, remaining, ttl
) -> None:
    clock.advance(120)
    sender(client, clock).send(sms(expires_at=clock.now() + remaining))

    assert fake.last.json()["TimeToLive"] == ttl


def test_a_dry_run_asks_the_service_not_to_send(fake: FakeEum, client: Any, clock) -> None:
    sent = sender(client, clock, dry_run=True).send(sms())

    assert fake.last.json()["DryRun"] is True
    assert sent.message_id is not None
    assert fake.messages == {}


def test_dry_run_is_not_sent_unless_set(fake: FakeEum, client: Any, clock) -> None:
    sender(client, clock).send(sms())

    assert "DryRun" not in fake.last.json()
    assert len(fake.messages) == 1


# -- the replies --------------------------------------------------------------------------------------------

FAILOVERS = [
    ("throttled", "throttled"),
    ("quota", "throttled"),
    ("spend_limit", "spend_limit"),
    ("internal", "http_5xx"),
    ("unavailable", "http_5xx"),
    ("access_denied", "auth"),
    ("account_disabled", "auth"),
    ("not_found", "config"),
    ("country_blocked", REJECTED_DESTINATION),
    ("country_not_enabled", REJECTED_DESTINATION),
    ("identity_country", REJECTED_DESTINATION),
    ("international", REJECTED_DESTINATION),
    ("price", REJECTED_DESTINATION),
    ("no_identity", REJECTED_DESTINATION),
    ("not_verified", REJECTED_DESTINATION),
    ("bad_body", REJECTED_CONTENT),
    ("conflict", "rejected"),
    ("validation", "rejected"),
]


@pytest.mark.parametrize(("mode", "reason"), FAILOVERS)
def test_documented_errors_fail_over_with_their_reason(fake: FakeEum, client: Any, clock, mode, reason) -> None:
    fake.mode = mode

    with pytest.raises(ProviderError) as raised:
        sender(client, clock, origination_identities=IDENTITIES).send(sms())

    error = raised.value
    assert (error.provider, error.reason, error.ambiguous) == ("eum", reason, False)
    assert error.counts_against_circuit is (reason not in (REJECTED_CONTENT, REJECTED_DESTINATION))
    assert len(fake.calls(SEND)) == 1
    assert_no_secrets(error, "MyBrand")


@pytest.mark.parametrize(
    "mode", ["opted_out", "protect_blocked", "number_override_blocked", "bad_number", "cannot_parse"]
)
def test_refusals_of_the_number_are_a_bad_number(fake: FakeEum, client: Any, clock, mode) -> None:
    fake.mode = mode

    with pytest.raises(InvalidPhoneNumberError) as raised:
        sender(client, clock).send(sms())

    assert not isinstance(raised.value, ProviderError)
    assert len(fake.calls(SEND)) == 1
    assert_no_secrets(raised.value)


@pytest.mark.parametrize(
    "mode", ["sender_not_registered", "sender_not_supported", "sender_requires_registration", "bad_identity"]
)
def test_a_refused_sender_is_the_requests_when_it_was_its_own_sender_id(
    fake: FakeEum, client: Any, clock, mode
) -> None:
    fake.mode = mode

    with pytest.raises(ProviderError) as own:
        sender(client, clock).send(sms(sender_id="Acme"))
    with pytest.raises(ProviderError) as configured:
        sender(client, clock, origination_identities=IDENTITIES).send(sms(sender_id="Acme"))

    assert own.value.reason == REJECTED_CONTENT
    assert not own.value.counts_against_circuit
    assert configured.value.reason == "config"
    assert configured.value.counts_against_circuit
    assert_no_secrets(own.value, "Acme")
    assert_no_secrets(configured.value, "MyBrand")


def test_a_body_over_the_services_limit_is_refused_by_its_validation(fake: FakeEum, client: Any, clock) -> None:
    long_body = CODE + " " + "x" * 1600

    with pytest.raises(ProviderError) as raised:
        sender(client, clock).send(sms(body=long_body))

    assert raised.value.reason == REJECTED_CONTENT
    assert fake.last.json()["MessageBody"] == long_body
    assert_no_secrets(raised.value, long_body)


def test_bad_credentials_are_an_auth_failure(fake: FakeEum, clock) -> None:
    with pytest.raises(ProviderError) as raised:
        sender(make_client(fake, secret_key="not-the-secret"), clock).send(sms())

    assert raised.value.reason == "auth"
    assert fake.problems == ["signature does not verify"]
    fake.problems.clear()


def test_a_dropped_connection_is_ambiguous(fake: FakeEum, client: Any, clock) -> None:
    fake.mode = "drop"

    with pytest.raises(ProviderError) as raised:
        sender(client, clock).send(sms())

    assert (raised.value.reason, raised.value.ambiguous) == ("dropped", True)
    assert len(fake.calls(SEND)) == 1
    assert_no_secrets(raised.value)


def test_a_read_timeout_is_ambiguous(fake: FakeEum, clock) -> None:
    fake.mode, fake.delay = "slow", 1.0

    with pytest.raises(ProviderError) as raised:
        sender(make_client(fake, timeout=0.3), clock).send(sms())

    assert (raised.value.reason, raised.value.ambiguous) == ("timeout", True)
    assert len(fake.calls(SEND)) == 1
    # The service took it: that is why a timeout is ambiguous.
    assert len(fake.messages) == 1
    assert_no_secrets(raised.value)


def test_a_refused_connection_is_not_ambiguous(fake: FakeEum, clock) -> None:
    with pytest.raises(ProviderError) as raised:
        sender(make_client(fake, url=closed_port_url()), clock).send(sms())

    assert (raised.value.reason, raised.value.ambiguous) == ("connect", False)


@pytest.mark.parametrize("mode", ["throttled", "internal", "unavailable", "drop"])
def test_botocore_makes_exactly_one_attempt(fake: FakeEum, client: Any, clock, mode) -> None:
    # botocore retries throttling, 5xx and dropped connections by default; the failover sender moves on instead.
    fake.mode = mode

    with pytest.raises(ProviderError):
        sender(client, clock).send(sms())

    assert len(fake.requests) == 1
    assert fake.last.headers["amz-sdk-request"] == "attempt=1; max=1"


def test_the_client_config_has_one_attempt_and_the_timeout() -> None:
    config = eum_client_config(2.5)

    assert (config.connect_timeout, config.read_timeout) == (2.5, 2.5)
    assert config.retries == {"total_max_attempts": 1}


# -- feedback -----------------------------------------------------------------------------------------------


def test_feedback_reports_the_message_received(fake: FakeEum, client: Any, clock) -> None:
    adapter = sender(client, clock)
    sent = adapter.send(sms())
    assert sent.message_id is not None

    assert adapter.feedback(sent.message_id) is True

    request = fake.last
    assert request.operation == FEEDBACK
    assert request.headers["x-amz-target"] == "PinpointSMSVoiceV2.PutMessageFeedback"
    assert request.json() == {"MessageId": sent.message_id, "MessageFeedbackStatus": "RECEIVED"}
    assert fake.feedback == {sent.message_id: "RECEIVED"}


def test_feedback_for_an_unknown_message_is_false(fake: FakeEum, client: Any, clock, caplog) -> None:
    assert sender(client, clock).feedback("4f1d0d1e-0000-4000-8000-000000000000") is False

    assert [(record.levelname, record.getMessage(), record.error_code) for record in caplog.records] == [
        ("WARNING", "message feedback failed", "ResourceNotFoundException")
    ]


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("throttled", "ThrottlingException"),
        ("internal", "InternalServerException"),
        ("access_denied", "AccessDeniedException"),
        ("drop", "ConnectionClosedError"),
    ],
)
def test_feedback_failures_are_false_and_never_raise(fake: FakeEum, client: Any, clock, caplog, mode, code) -> None:
    adapter = sender(client, clock)
    sent = adapter.send(sms())
    assert sent.message_id is not None
    fake.feedback_mode = mode

    assert adapter.feedback(sent.message_id) is False

    assert len(fake.calls(FEEDBACK)) == 1
    assert fake.feedback == {}
    assert [(record.levelname, record.error_code) for record in caplog.records] == [("WARNING", code)]
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    for secret in (GB, BODY, CODE):
        assert secret not in logged


def test_feedback_without_a_connection_is_false(fake: FakeEum, clock) -> None:
    assert sender(make_client(fake, url=closed_port_url()), clock).feedback("msg-1") is False


def test_feedback_past_the_timeout_is_false(fake: FakeEum, clock) -> None:
    adapter = sender(make_client(fake, timeout=0.3), clock)
    sent = adapter.send(sms())
    assert sent.message_id is not None
    fake.feedback_mode, fake.delay = "slow", 1.0

    assert adapter.feedback(sent.message_id) is False


# -- configuration ------------------------------------------------------------------------------------------


def test_the_config_comes_from_the_settings(clock) -> None:
    settings = Settings(
        eum_origination_identities=f"US={POOL_ARN};GB=MyBrand;*=pool-2",
        eum_configuration_set="otp-events",
        eum_protect_configuration_id="protect-0123456789abcdef",
        eum_max_price="0.05",
        eum_dry_run=True,
    )

    config = EumConfig.from_settings(settings, clock)

    assert config == EumConfig(
        origination_identities=IDENTITIES,
        configuration_set="otp-events",
        protect_configuration_id="protect-0123456789abcdef",
        max_price="0.05",
        dry_run=True,
        feedback=True,
        clock=clock,
    )


def test_empty_settings_leave_everything_unset(clock) -> None:
    config = EumConfig.from_settings(Settings(), clock)

    assert dict(config.origination_identities) == {}
    assert (config.configuration_set, config.protect_configuration_id, config.max_price) == (None, None, None)
    assert (config.dry_run, config.feedback, config.clock) == (False, True, clock)


def test_parse_origination_identities() -> None:
    assert parse_origination_identities("") == {}
    assert parse_origination_identities(" GB = MyBrand ; *=pool-2;") == {"GB": "MyBrand", "*": "pool-2"}
    assert parse_origination_identities("GB=a;GB=b") == {"GB": "b"}


@pytest.mark.parametrize("value", ["GB", "gb=MyBrand", "GBR=MyBrand", "GB=", "GB=My Brand", "=pool-2", "**=pool"])
def test_parse_origination_identities_rejects_malformed_entries(value: str) -> None:
    with pytest.raises(ValueError, match="KEY=identity"):
        parse_origination_identities(value)


def test_eum_is_a_known_provider_without_callbacks() -> None:
    assert "eum" in KNOWN_PROVIDERS
    assert callback_class("eum") is None
    assert EumSmsSender.name == "eum"


# -- the fake itself ----------------------------------------------------------------------------------------

VALID = {"DestinationPhoneNumber": GB, "MessageBody": BODY}


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("DestinationPhoneNumber", "07700900123"),
        ("DestinationPhoneNumber", "+4477009001234567890123"),
        ("MessageBody", "x" * 1601),
        ("MessageBody", " \n "),
        ("MessageType", "OTP"),
        ("OriginationIdentity", "My Brand"),
        ("OriginationIdentity", "x" * 257),
        ("ConfigurationSetName", "otp events"),
        ("MaxPrice", "123.0"),
        ("MaxPrice", "0.123456"),
        ("TimeToLive", 4),
        ("TimeToLive", 259_201),
        ("Context", {str(index): "v" for index in range(6)}),
        ("Context", {"has space": "v"}),
        ("Context", {"k": "trailing "}),
        ("Context", {"k": "v" * 801}),
        ("Context", {"k" * 101: "v"}),
        ("ProtectConfigurationId", "protect 1"),
        ("DestinationCountryParameters", {"IN_OTHER": "1"}),
    ],
)
def test_the_fake_enforces_the_models_constraints(member: str, value: Any) -> None:
    reply = validate(SEND, {**VALID, member: value})

    assert reply is not None
    assert reply.status == 400
    assert reply.body is not None
    assert reply.body["__type"].endswith("#ValidationException")
    assert reply.body["Reason"] == "FIELD_VALIDATION_FAILED"
    assert [field["Name"] for field in reply.body["Fields"]] == [member]


def test_the_fake_accepts_the_models_extremes() -> None:
    extremes = {
        **VALID,
        "MessageBody": "x" * 1600,
        "OriginationIdentity": "+447700900001",
        "MaxPrice": "99.12345",
        "TimeToLive": 259_200,
        "Context": {str(index): "v" * 800 for index in range(5)},
        "DryRun": False,
        "MessageFeedbackEnabled": True,
    }

    assert validate(SEND, extremes) is None


def test_the_fake_refuses_unknown_and_missing_members_and_wrong_types() -> None:
    unknown = validate(SEND, {**VALID, "Foo": 1})
    missing = validate(SEND, {"MessageBody": BODY})
    wrong_type = validate(SEND, {**VALID, "TimeToLive": "600"})
    feedback = validate(FEEDBACK, {"MessageId": "m-1", "MessageFeedbackStatus": "READ"})

    assert unknown is not None and unknown.body is not None
    assert (unknown.body["Reason"], unknown.body["Fields"][0]["Name"]) == ("UNSPECIFIED_PARAMETER_NOT_SUPPORTED", "Foo")
    assert missing is not None and missing.body is not None
    assert (missing.body["Reason"], missing.body["Fields"][0]["Name"]) == (
        "MISSING_PARAMETER",
        "DestinationPhoneNumber",
    )
    assert wrong_type is not None and wrong_type.body is not None
    assert wrong_type.body["__type"].endswith("#SerializationException")
    assert feedback is not None and feedback.body is not None
    assert feedback.body["Fields"][0]["Name"] == "MessageFeedbackStatus"


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"Content-Type": "application/x-amz-json-1.0"}, "X-Amz-Target names no operation of this fake"),
        (
            {"Content-Type": "application/json", "X-Amz-Target": "PinpointSMSVoiceV2.SendTextMessage"},
            "Content-Type 'application/json'",
        ),
        (
            {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "PinpointSMSVoiceV2.SendTextMessage"},
            "no Authorization header",
        ),
        (
            {
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "PinpointSMSVoiceV2.SendTextMessage",
                "X-Amz-Date": "20260101T000000Z",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sns/aws4_request, "
                "SignedHeaders=host, Signature=" + "0" * 64,
            },
            "malformed SigV4 Authorization or X-Amz-Date",
        ),
    ],
)
def test_the_fake_refuses_requests_off_the_protocol(fake: FakeEum, headers: dict[str, str], problem: str) -> None:
    body = json.dumps(VALID).encode()
    request = urllib.request.Request(fake.url + "/", data=body, headers=headers, method="POST")  # noqa: S310

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=2)  # noqa: S310 - the fake on 127.0.0.1

    assert raised.value.code in (400, 403, 404)
    assert fake.problems == [problem]
    fake.problems.clear()


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_the_runtime_s_clients_withhold_aws_error_messages_from_traces_and_errors(fake: FakeEum) -> None:
    """AWS validation messages quote the request's values, and X-Ray's botocore patch records each exception's
    text: the clients the runtime builds replace the message before the ClientError is made from it."""
    from botocore.exceptions import ClientError

    from otp_core.observability import REDACTED_AWS_MESSAGE, redact_aws_errors

    fake.mode = "bad_number"
    plain, redacted = make_client(fake), redact_aws_errors(make_client(fake))
    request = {"DestinationPhoneNumber": GB, "MessageBody": BODY, "MessageType": "TRANSACTIONAL"}
    with pytest.raises(ClientError) as quoted:
        plain.send_text_message(**request)
    with pytest.raises(ClientError) as withheld:
        redacted.send_text_message(**request)
    # The fake quotes the value as the service does; the runtime's client keeps the code and reason only
    assert GB in str(quoted.value)
    assert GB not in str(withheld.value)
    assert REDACTED_AWS_MESSAGE in str(withheld.value)
    assert withheld.value.response["Error"]["Code"] == "ValidationException"
    assert withheld.value.response.get("Reason") == quoted.value.response.get("Reason")
